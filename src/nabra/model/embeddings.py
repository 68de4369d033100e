"""Aligner embeddings for the ADS schedule: one vector per utterance, in the model's own space.

For an utterance with audio: the mean over time of the audio tower's projected output (the
"aligner", i.e. what the language model receives), over all its ≤30-s segments. For text-only use
(``tsum``): the mean of the input embeddings of the transcript. Computed in batches without
gradients, cached to disk as float16 under a key made of the model's fingerprint and the
manifest's hash, and resumable: every chunk is written as it is done, and a rerun skips the chunks
already on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nabra.corpus.audio import load_audio
from nabra.corpus.manifest import Utterance, iter_manifest
from nabra.errors import NabraError
from nabra.files import atomic_path
from nabra.model.collate import Collator, audio_token_count
from nabra.progress import progress_bar

CHUNK = 256
TEXT_SUFFIX = "#text"


@dataclass
class EmbeddingTable:
    """Vectors (float16) by key: the utterance id for audio, ``<id>#text`` for text-only use."""

    keys: list[str]
    vectors: np.ndarray

    def __post_init__(self):
        self.index = {k: i for i, k in enumerate(self.keys)}

    def for_example(self, utt_id: str, task: str) -> np.ndarray:
        key = utt_id + TEXT_SUFFIX if task == "tsum" else utt_id
        return self.vectors[self.index[key]]

    def save(self, path: Path) -> None:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, keys=np.array(self.keys), vectors=self.vectors)

    @classmethod
    def read(cls, path: Path) -> EmbeddingTable:
        with np.load(path) as data:
            return cls([str(k) for k in data["keys"]], data["vectors"])


def file_hash(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes (streamed)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_fingerprint(model, source: str | os.PathLike = "") -> str:
    """Identifies the weights: where they came from, every parameter's name and shape, and the
    values of the trainable ones (LoRA, aligner), which are the ones that change in training."""
    h = hashlib.blake2b(str(source).encode(), digest_size=16)
    for name, p in model.named_parameters():
        h.update(f"{name}{tuple(p.shape)}{p.dtype}".encode())
        if p.requires_grad:
            h.update(p.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()


def embedding_key(model, source: str | os.PathLike, manifest: str | os.PathLike) -> str:
    """The cache key of a (weights, manifest) pair."""
    return f"{model_fingerprint(model, source)[:16]}-{file_hash(manifest)[:16]}"


def compute_embeddings(bundle, manifest: str | os.PathLike, cache_dir: str | os.PathLike, *, batch_size: int = 16,
                       key: str | None = None, progress: bool = True, model=None) -> EmbeddingTable:
    """Aligner embeddings of every utterance of ``manifest``, from ``cache_dir/<key>`` when present.

    ``model`` overrides ``bundle.model`` (e.g. the PEFT-wrapped model during training); ``key``
    defaults to :func:`embedding_key` of the weights and the manifest.
    """
    model = model if model is not None else bundle.model
    folder = Path(cache_dir) / (key or embedding_key(model, bundle.path, manifest))
    final = folder / "embeddings.npz"
    if final.is_file():
        return EmbeddingTable.read(final)
    folder.mkdir(parents=True, exist_ok=True)
    utts = list(iter_manifest(manifest))
    collator = Collator(bundle.tokenizer, bundle.feature_extractor)
    chunks = [utts[i : i + CHUNK] for i in range(0, len(utts), CHUNK)]
    parts = []
    for n, chunk in enumerate(_progress(chunks, progress, "aligner embeddings")):
        part = folder / f"part-{n:06d}.npz"
        if not part.is_file():
            _embed_chunk(model, collator, bundle.tokenizer, chunk, batch_size).save(part)
        parts.append(EmbeddingTable.read(part))
    table = EmbeddingTable([k for p in parts for k in p.keys],
                           np.concatenate([p.vectors for p in parts]) if parts else np.zeros((0, 0), np.float16))
    table.save(final)
    (folder / "info.json").write_text(json.dumps({"manifest": str(manifest), "utterances": len(utts),
                                                  "vectors": len(table.keys)}, indent=2))
    for part in folder.glob("part-*.npz"):
        part.unlink()
    return table


@torch.no_grad()
def _embed_chunk(model, collator: Collator, tokenizer, utts: list[Utterance], batch_size: int) -> EmbeddingTable:
    keys, vectors = [], []
    base = _thinker(model)
    audio_utts = [u for u in utts if u.audio is not None]
    for i in range(0, len(audio_utts), batch_size):
        batch = audio_utts[i : i + batch_size]
        keys += [u.id for u in batch]
        vectors.append(_audio_means(base, collator, batch))
    text_utts = [u for u in utts if "tsum" in u.tasks()]
    if text_utts:
        embed = base.get_input_embeddings()
        for u in text_utts:
            ids = torch.tensor(tokenizer(u.transcript, add_special_tokens=False)["input_ids"], device=embed.weight.device)
            keys.append(u.id + TEXT_SUFFIX)
            vectors.append(embed(ids).float().mean(0, keepdim=True).cpu().numpy())
    return EmbeddingTable(keys, np.concatenate(vectors).astype(np.float16) if vectors else np.zeros((0, 0), np.float16))


def _audio_means(base, collator: Collator, utts: list[Utterance]) -> np.ndarray:
    segs = [collator.segments(load_audio(u.audio, offset=u.offset, duration=u.duration)) for u in utts]
    features, mask = collator.log_mel([s for ss in segs for s in ss])
    device = next(base.parameters()).device
    dtype = next(base.parameters()).dtype
    out = base.get_audio_features(features.to(device, dtype), mask.to(device)).last_hidden_state.float()
    per_segment = torch.split(out, audio_token_count(mask.sum(-1)).tolist())
    means, k = [], 0
    for ss in segs:
        means.append(torch.cat(per_segment[k : k + len(ss)]).mean(0))
        k += len(ss)
    return torch.stack(means).cpu().numpy()


def example_vectors(folder: Path, examples) -> np.ndarray:
    """The cached embeddings in ``folder`` of every example, in order ([len(examples), D])."""
    path = folder / "embeddings.npz"
    if not path.is_file():
        raise NabraError(f"{path}: the aligner embeddings this run was using are gone; cannot resume exactly")
    table = EmbeddingTable.read(path)
    return np.stack([table.for_example(ex.utt_id, ex.task) for ex in examples])


def _thinker(model):
    """The plain thinker inside a PEFT wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _progress(items, enabled: bool, label: str):
    with progress_bar(label, len(items), enabled=enabled and len(items) > 1, unit="chunks") as advance:
        for item in items:
            yield item
            advance()
