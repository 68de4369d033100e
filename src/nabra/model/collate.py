"""The batch collator: examples (+ their waveforms) -> the thinker's inputs.

- Audio features are padded to the longest segment in the batch, not to 30 s: the 30-s padding of
  the stock processor costs ~90% of a CPU training step. The log-mel is Whisper's, computed in one
  batched STFT; every segment gets at least ``n_fft`` zeros after it so its valid frames equal those
  of the 30-s path exactly (the STFT's reflect padding never reaches them).
- Audio longer than 30 s is split into equal segments of at most 30 s, each its own
  ``<|audio_bos|><|AUDIO|>…<|audio_eos|>`` run: nothing is truncated.
- The number of ``<|AUDIO|>`` placeholders of a segment comes from the same frame mask that is fed.
- Labels are -100 everywhere but on the answer and its end token: the system/user prompt and the
  audio placeholders are inputs, not something the model should learn to write.
- With ``collate.packing`` a training batch is one row: the sequences end to end, no padding, no
  ``attention_mask``, and ``seq_lens`` (each sequence's length) from which the family derives the
  positions that restart per sequence and confine attention to it (:class:`~nabra.model.loss.AnswerLoss`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from nabra.corpus.audio import SAMPLE_RATE
from nabra.errors import NabraError
from nabra.model.config import CollatorConfig
from nabra.model.families import Family
from nabra.model.families.qwen2_5_omni import QWEN2_5_OMNI, audio_token_count
from nabra.tasks import Example

IGNORE_INDEX = -100
__all__ = ["IGNORE_INDEX", "Collator", "Skipped", "audio_token_count", "to_device"]


@dataclass
class Skipped:
    """Examples left out of batches, with the reason; nothing is dropped without being counted."""

    ids: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def add(self, example_id: str, reason: str) -> None:
        self.ids.append(example_id)
        self.reasons.append(reason)

    def __len__(self) -> int:
        return len(self.ids)


class Collator:
    """Callable turning ``[(Example, waveform or None), ...]`` into a batch of tensors."""

    def __init__(self, tokenizer, feature_extractor, cfg: CollatorConfig | None = None, *,
                 family: Family | None = None):
        self.tokenizer = tokenizer
        self.cfg = cfg or CollatorConfig()
        self.family = family or QWEN2_5_OMNI
        """The model family: its features, and how many placeholders a clip's frames become."""
        self.feature_extractor = feature_extractor
        self.n_fft = feature_extractor.n_fft
        self.hop = feature_extractor.hop_length
        self.mel_filters = torch.from_numpy(np.asarray(feature_extractor.mel_filters, dtype=np.float32)).T.contiguous()
        self.window = torch.hann_window(self.n_fft)
        self.pad_id = tokenizer.pad_token_id
        self.audio_id = tokenizer.convert_tokens_to_ids(self.family.audio_token)
        self.sampling_rate = feature_extractor.sampling_rate
        if self.sampling_rate != SAMPLE_RATE:
            raise NabraError(f"the feature extractor expects {self.sampling_rate} Hz audio; the audio loader "
                             f"gives {SAMPLE_RATE} Hz")
        self.window_seconds = self.family.window_seconds or feature_extractor.n_samples / self.sampling_rate
        """The audio one run of the encoder takes (the family's, or the feature extractor's window)."""
        if self.cfg.max_segment_seconds and self.cfg.max_segment_seconds > self.window_seconds + 1e-9:
            raise NabraError(f"collate.max_segment_seconds {self.cfg.max_segment_seconds} is longer than the "
                             f"checkpoint's audio window ({self.window_seconds:g} s, its preprocessor_config.json)")
        self.segment_seconds = self.cfg.max_segment_seconds or self.window_seconds
        self.segment_samples = int(self.segment_seconds * self.sampling_rate)
        self.min_samples = int(math.ceil(self.cfg.min_audio_seconds * self.sampling_rate))
        self.max_length: int | None = self.cfg.max_length if isinstance(self.cfg.max_length, int) else None
        """The longest sequence kept (``None``: no limit; ``max_length: window`` is resolved by
        :meth:`window_limit` at set-up)."""
        self.skipped = Skipped()

    @classmethod
    def for_bundle(cls, bundle, cfg: CollatorConfig | None = None) -> Collator:
        """The collator of a loaded model bundle (its tokenizer, feature extractor and family)."""
        return cls(bundle.tokenizer, bundle.feature_extractor, cfg, family=bundle.family)

    # -- audio -------------------------------------------------------------------------------
    def audio_tokens(self, duration: float | None) -> int:
        """Placeholder tokens (``<|AUDIO|>`` runs with their bos/eos) of ``duration`` seconds of audio,
        estimated before it is loaded (from the manifest's durations)."""
        if not duration:
            return 0
        segments = max(1, math.ceil(duration / self.segment_seconds))
        frames = math.ceil(duration * self.sampling_rate / self.hop)
        return int(self.family.audio_token_count(frames)) + self.family.audio_run_overhead * segments

    def window_limit(self, prompt_tokens: int, answer_tokens: int) -> int:
        """``max_length: window``: the placeholders of a clip of the whole audio window, with the
        longest prompt and the longest answer given (set as :attr:`max_length`)."""
        self.max_length = self.audio_tokens(self.window_seconds) + prompt_tokens + answer_tokens
        return self.max_length

    def segments(self, waveform: np.ndarray) -> list[np.ndarray]:
        """Equal segments of at most the window (``segment_seconds``); short clips zero-padded to the minimum."""
        n = max(1, math.ceil(waveform.size / self.segment_samples))
        while True:
            # Cut on hop boundaries, so the segments' frames add up to the whole clip's.
            bounds = (np.linspace(0, waveform.size, n + 1) / self.hop).round().astype(int) * self.hop
            bounds[-1] = waveform.size
            if np.diff(bounds).max() <= self.segment_samples:
                break
            n += 1
        out = []
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            seg = waveform[a:b]
            if seg.size < self.min_samples:
                seg = np.pad(seg, (0, self.min_samples - seg.size))
            out.append(seg)
        return out

    def log_mel(self, segments: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """Whisper log-mel features ``[S, 128, T]`` padded to the longest segment, and their frame mask.

        All segments go through one STFT, laid end to end: each is preceded by Whisper's reflect
        padding and followed by zeros, at offsets on the hop grid, so frame k of a segment is exactly
        the frame k Whisper computes for it alone — and no FFT is spent on batch padding.
        """
        half, hop = self.n_fft // 2, self.hop
        frames = [math.ceil(s.size / hop) for s in segments]
        # Enough frames per segment to reach past its end into pure zeros, as the 30-s path sees.
        spans = [f + math.ceil(self.n_fft / hop) for f in frames]
        region = [int(math.ceil(((k - 1) * hop + self.n_fft) / hop) * hop) for k in spans]
        signal = np.zeros(sum(region), dtype=np.float32)
        starts, pos = [], 0
        for seg, size in zip(segments, region, strict=True):
            signal[pos : pos + half] = seg[half:0:-1]  # torch.stft's center=True reflect padding
            signal[pos + half : pos + half + seg.size] = seg
            starts.append(pos // hop)
            pos += size
        stft = torch.stft(torch.from_numpy(signal), self.n_fft, hop, window=self.window, center=False,
                          return_complex=True)
        # |z|^2 as re*re + im*im: several times faster on CPU than abs()**2 (no hypot).
        parts = torch.view_as_real(stft)
        power = (parts[..., 0] * parts[..., 0]).addcmul_(parts[..., 1], parts[..., 1])
        log_spec = torch.clamp(self.mel_filters @ power, min=1e-10).log10()
        features = torch.zeros(len(segments), log_spec.shape[0], max(frames))
        for i, (start, span, n) in enumerate(zip(starts, spans, frames, strict=True)):
            seg_spec = log_spec[:, start : start + span]
            features[i, :, :n] = (torch.maximum(seg_spec[:, :n], seg_spec.max() - 8.0) + 4.0) / 4.0
        mask = (torch.arange(features.shape[-1])[None, :] < torch.tensor(frames)[:, None]).long()
        return features, mask

    # -- text --------------------------------------------------------------------------------
    def __call__(self, samples: list[tuple[Example, np.ndarray | None]], *, for_generation: bool = False) -> dict:
        """Collate ``samples``. With ``for_generation`` the answer is left out and padding is on the left;
        otherwise with ``packing`` the sequences are laid end to end in one row.
        An audio example without its waveform is left out (counted in :attr:`skipped`), never trained on text alone."""
        n_in = len(samples)
        if any(ex.audio and w is None for ex, w in samples):
            for ex, _ in (s for s in samples if s[0].audio and s[1] is None):
                self.skipped.add(ex.id, "its audio could not be loaded")
            samples = [(ex, w) for ex, w in samples if not (ex.audio and w is None)]
        if not samples:
            return {"example_ids": [], "tasks": [], "n_skipped": n_in}
        examples = [ex for ex, _ in samples]
        seg_lists = [self.segments(w) if w is not None else [] for _, w in samples]
        flat = [s for segs in seg_lists for s in segs]
        features = mask = None
        counts: list[int] = []
        if flat:
            features, mask = self.family.features(self, flat)
            counts = self.family.audio_token_count(mask.sum(-1)).tolist()
        prompt_ids, answer_ids = self._tokenize(examples, seg_lists, counts, for_generation)
        keep = self._keep(examples, prompt_ids, answer_ids)
        if not keep:
            return {"example_ids": [], "tasks": [], "n_skipped": n_in}
        prompts, answers = [prompt_ids[i] for i in keep], [answer_ids[i] for i in keep]
        if self.cfg.packing and not for_generation:
            batch = self._pack_flat(prompts, answers)
        else:
            batch = self._pack(prompts, answers, left=for_generation)
        batch["example_ids"] = [examples[i].id for i in keep]
        batch["tasks"] = [examples[i].task for i in keep]
        batch["n_skipped"] = n_in - len(keep)
        if flat:
            rows = [j for i in keep for j in self._segment_rows(seg_lists, i)]
            key = self.family.feature_mask_key
            if len(rows) == len(flat):
                batch["input_features"], batch[key] = features, mask
            elif rows:
                batch["input_features"], batch[key] = features[rows], mask[rows]
        return batch

    def _tokenize(self, examples, seg_lists, counts, for_generation):
        """Prompt and answer token ids. Prompts are tokenized with one placeholder per segment, which
        is then repeated in id space: the placeholder is a special token, so this equals tokenizing the
        expanded text, at a fraction of the cost."""
        prompts = [self.family.prompt_text(self.cfg.system_prompt, ex.instruction, [1] * len(segs))
                   for ex, segs in zip(examples, seg_lists, strict=True)]
        answers = [] if for_generation else [self.family.answer_text(ex.target) for ex in examples]
        ids = self.tokenizer(prompts + answers, add_special_tokens=False)["input_ids"]
        it = iter(counts)
        prompt_ids = [self._expand(p, it) for p in ids[: len(prompts)]]
        answer_ids = ids[len(prompts):] if answers else [[] for _ in examples]
        return prompt_ids, answer_ids

    def _expand(self, ids: list[int], counts) -> list[int]:
        out = []
        for t in ids:
            if t == self.audio_id:
                out.extend([t] * next(counts))
            else:
                out.append(t)
        return out

    @staticmethod
    def _segment_rows(seg_lists: list[list], i: int) -> range:
        start = sum(len(s) for s in seg_lists[:i])
        return range(start, start + len(seg_lists[i]))

    def _keep(self, examples, prompt_ids, answer_ids) -> list[int]:
        keep = []
        for i, ex in enumerate(examples):
            n = len(prompt_ids[i]) + len(answer_ids[i])
            if self.max_length is None or n <= self.max_length:
                keep.append(i)
                continue
            reason = f"{n} tokens (prompt {len(prompt_ids[i])} + answer {len(answer_ids[i])}) > max_length {self.max_length}"
            if self.cfg.overlong == "error":
                raise NabraError(f"example {ex.id}: {reason}; raise max_length or set overlong: skip")
            self.skipped.add(ex.id, reason)
        return keep

    def _pack(self, prompts: list[list[int]], answers: list[list[int]], *, left: bool) -> dict:
        width = max(len(p) + len(a) for p, a in zip(prompts, answers, strict=True))
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        labels = torch.full_like(ids, IGNORE_INDEX)
        attn = torch.zeros_like(ids)
        for row, (p, a) in enumerate(zip(prompts, answers, strict=True)):
            seq = p + a
            start = width - len(seq) if left else 0
            ids[row, start : start + len(seq)] = torch.tensor(seq)
            attn[row, start : start + len(seq)] = 1
            if a:
                labels[row, start + len(p) : start + len(seq)] = torch.tensor(a)
        return {"input_ids": ids, "attention_mask": attn, "labels": labels}

    def _pack_flat(self, prompts: list[list[int]], answers: list[list[int]]) -> dict:
        """One row: every sequence end to end, no padding; labels as in :meth:`_pack` (a sequence's first
        token is its prompt's, never a label: no position learns to predict the next sequence)."""
        ids: list[int] = []
        labels: list[int] = []
        for p, a in zip(prompts, answers, strict=True):
            ids += p + a
            labels += [IGNORE_INDEX] * len(p) + a
        return {"input_ids": torch.tensor([ids]), "labels": torch.tensor([labels]),
                "seq_lens": torch.tensor([len(p) + len(a) for p, a in zip(prompts, answers, strict=True)])}


def to_device(batch: dict, device) -> dict:
    """``batch`` with its tensors moved to ``device``."""
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
