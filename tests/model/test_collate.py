import numpy as np
import pytest
import torch

from nabra.corpus.manifest import Utterance
from nabra.errors import NabraError
from nabra.model.collate import IGNORE_INDEX, Collator, audio_token_count
from nabra.model.config import CollatorConfig
from nabra.model.reference import AudioOnlyOmniProcessor, reference_batch
from nabra.tasks import SYSTEM_PROMPT, make_example
from nabra.testing import tone


def _ex(uid, task="asr", seconds=2.0, transcript="الجو جميل اليوم", summary="طقس", **kw):
    utt = Utterance(id=uid, audio="/x.wav", transcript=transcript, summary=summary, dialect="EGY", emotion="sad",
                    duration=seconds, **kw)
    return make_example(utt, task)


@pytest.fixture
def collator(bundle):
    return Collator(bundle.tokenizer, bundle.feature_extractor)


def test_labels_mask_everything_but_the_answer(bundle, collator):
    examples = [_ex("a", "asr", 2.0), _ex("b", "did", 3.3), _ex("c", "tsum")]
    samples = [(examples[0], tone(2.0)), (examples[1], tone(3.3, freq=300)), (examples[2], None)]
    batch = collator(samples)
    tok, audio_id = bundle.tokenizer, bundle.audio_token_id
    for row, ex in enumerate(examples):
        ids, labels, attn = batch["input_ids"][row], batch["labels"][row], batch["attention_mask"][row]
        learned = labels != IGNORE_INDEX
        # Token by token: the learned positions are exactly the answer + <|im_end|>, at the end of the sequence.
        answer = tok(ex.target + "<|im_end|>", add_special_tokens=False)["input_ids"]
        n = int(attn.sum())
        assert learned.nonzero().flatten().tolist() == list(range(n - len(answer), n))
        assert labels[learned].tolist() == answer == ids[learned].tolist()
        assert tok.decode(labels[learned]) == ex.target + "<|im_end|>"
        assert not learned[ids == audio_id].any()  # audio placeholders are never learned
        assert not learned[attn == 0].any()  # nor padding
        assert (ids[attn == 0] == tok.pad_token_id).all()
    assert batch["input_features"].shape[0] == 2  # the text-only example has no audio row
    assert (batch["input_ids"][2] == audio_id).sum() == 0


def test_placeholder_counts_come_from_the_fed_mask(bundle, collator):
    examples = [_ex(f"u{i}", seconds=s) for i, s in enumerate((1.0, 2.37, 4.01))]
    batch = collator([(ex, tone(ex.duration, freq=200 + 50 * i)) for i, ex in enumerate(examples)])
    counts = audio_token_count(batch["feature_attention_mask"].sum(-1))
    per_row = (batch["input_ids"] == bundle.audio_token_id).sum(-1)
    assert per_row.tolist() == counts.tolist()
    # Padded to the longest clip (4.01 s + the STFT margin), not to 30 s.
    assert batch["input_features"].shape[-1] < 500


def test_long_audio_follows_the_checkpoints_window(bundle, collator):
    # The real Qwen2.5-Omni preprocessor (written by init-tiny): one audio run up to 300 s.
    assert bundle.feature_extractor.n_samples == 4_800_000 and collator.window_seconds == 300
    batch = collator([(_ex("long", "ssum", 70.0), tone(70.0))])
    bos = bundle.tokenizer.convert_tokens_to_ids("<|audio_bos|>")
    assert (batch["input_ids"][0] == bos).sum() == 1 and batch["feature_attention_mask"].sum() == 7000
    with torch.no_grad():
        out = bundle.model(**{k: v for k, v in batch.items() if isinstance(v, torch.Tensor)})
    assert torch.isfinite(out.loss)
    # A 20-minute MGB-2 episode still splits: 4 runs of 300 s.
    episode = [collator.segments(np.zeros(1200 * 16000, np.float32))][0]
    assert [len(s) for s in episode] == [300 * 16000] * 4 and collator.audio_tokens(1200.0) == 4 * 7500 + 8
    with pytest.raises(NabraError, match="longer than the checkpoint's audio window"):
        Collator(bundle.tokenizer, bundle.feature_extractor, CollatorConfig(max_segment_seconds=301))


@pytest.fixture
def collator30(bundle):
    """A collator over a 30-s Whisper-style window (Whisper's and Qwen2-Audio's extractors)."""
    from nabra.model.tiny import feature_extractor

    return Collator(bundle.tokenizer, feature_extractor(chunk_length=30))


def test_long_audio_is_split_into_segments_not_truncated(bundle, collator30):
    collator = collator30
    ex = _ex("long", "ssum", 70.0)
    batch = collator([(ex, tone(70.0)), (_ex("short", seconds=1.0), tone(1.0))])
    ids = batch["input_ids"][0]
    bos = bundle.tokenizer.convert_tokens_to_ids("<|audio_bos|>")
    eos = bundle.tokenizer.convert_tokens_to_ids("<|audio_eos|>")
    assert (ids == bos).sum() == 3 and (ids == eos).sum() == 3  # 70 s -> 3 runs of <= 30 s
    mask = batch["feature_attention_mask"]
    assert mask.shape[0] == 4  # 3 segments + the short clip, in prompt order
    frames = mask.sum(-1)
    assert frames[:3].sum() == 7000 and (frames[:3] <= 3000).all()  # every sample of the 70 s is there
    starts = (ids == bos).nonzero().flatten().tolist()
    ends = (ids == eos).nonzero().flatten().tolist()
    assert [e - s - 1 for s, e in zip(starts, ends, strict=True)] == audio_token_count(frames[:3]).tolist()
    with torch.no_grad():
        out = bundle.model(**{k: v for k, v in batch.items() if isinstance(v, torch.Tensor)})
    assert torch.isfinite(out.loss)


def test_clips_shorter_than_the_encoder_minimum_are_padded(bundle, collator):
    batch = collator([(_ex("tiny", seconds=0.01), tone(0.01))])
    assert batch["example_ids"] == ["tiny"] or batch["example_ids"] == ["tiny#asr"]
    assert (batch["input_ids"] == bundle.audio_token_id).sum() >= 1
    with torch.no_grad():
        assert torch.isfinite(bundle.model(**{k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}).loss)


def test_equivalent_to_transformers_processor_path(bundle, collator):
    # With the real 300-s preprocessor: short clips, and a 45-s and a 200-s one (one audio run each).
    rng = np.random.default_rng(0)
    examples = [_ex(f"e{i}", task, s) for i, (task, s) in
                enumerate([("asr", 1.3), ("did", 4.77), ("ser", 2.05), ("asr", 7.9), ("ssum", 45.0), ("asr", 200.0)])]
    waves = [(0.1 * rng.standard_normal(int(ex.duration * 16000))).astype(np.float32) for ex in examples]
    collator = Collator(bundle.tokenizer, bundle.feature_extractor, CollatorConfig(max_length=8192))
    ours = collator(list(zip(examples, waves, strict=True)))
    assert ours["feature_attention_mask"].shape[0] == len(examples)  # no clip was split
    proc = AudioOnlyOmniProcessor.from_parts(bundle.feature_extractor, bundle.tokenizer)
    ref = reference_batch(proc, SYSTEM_PROMPT, examples, waves)
    assert ref["input_features"].shape[-1] == 30000  # the stock path pads every clip to 300 s
    keys = ("input_ids", "attention_mask", "input_features", "feature_attention_mask")
    with torch.no_grad():
        a = bundle.model(**{k: ours[k] for k in keys}).logits
        b = bundle.model(**{k: ref[k] for k in keys}).logits
    for row in range(len(examples)):
        ids_a = ours["input_ids"][row][ours["attention_mask"][row].bool()]
        ids_b = ref["input_ids"][row][ref["attention_mask"][row].bool()]
        assert torch.equal(ids_a, ids_b)
        la = a[row][ours["attention_mask"][row].bool()]
        lb = b[row][ref["attention_mask"][row].bool()]
        assert (la - lb).abs().max() < 1e-5


def test_overlong_examples_are_skipped_and_counted_or_raise(bundle):
    long_text = "كلمة " * 400
    ex = _ex("big", "tsum", transcript=long_text)
    ok = _ex("ok", "tsum")
    collator = Collator(bundle.tokenizer, bundle.feature_extractor, CollatorConfig(max_length=256))
    batch = collator([(ex, None), (ok, None)])
    assert batch["example_ids"] == ["ok#tsum"] and batch["n_skipped"] == 1
    assert collator.skipped.ids == ["big#tsum"] and "max_length 256" in collator.skipped.reasons[0]
    strict = Collator(bundle.tokenizer, bundle.feature_extractor, CollatorConfig(max_length=256, overlong="error"))
    with pytest.raises(NabraError, match=r"example big#tsum: \d+ tokens .* > max_length 256"):
        strict([(ex, None)])


def test_generation_batches_are_left_padded_prompts(bundle, collator):
    batch = collator([(_ex("a", seconds=1.0), tone(1.0)), (_ex("b", "tsum"), None)], for_generation=True)
    attn = batch["attention_mask"]
    assert (attn[:, -1] == 1).all()  # left padding: every prompt ends at the last column
    assert (batch["labels"] == IGNORE_INDEX).all()
    end = bundle.tokenizer("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"]
    for row in range(2):
        assert batch["input_ids"][row, -len(end):].tolist() == end


def test_set_up_warns_of_audio_without_a_duration(bundle):
    # Such audio counts as 0 tokens in the budgets: said once at set-up, with the count and the first id.
    from nabra.data import drop_overlong

    said = []
    dated, undated = _ex("dated", seconds=2.0), _ex("undated", seconds=None)
    kept, _, totals = drop_overlong([dated, undated], Collator(bundle.tokenizer, bundle.feature_extractor), said.append)
    assert [ex.id for ex in kept] == ["dated#asr", "undated#asr"] and totals[0] > totals[1]
    warnings = [s for s in said if s.startswith("warning:")]
    assert len(warnings) == 1 and "1 example(s) with audio have no duration" in warnings[0] and "undated" in warnings[0]
    said.clear()
    drop_overlong([dated], Collator(bundle.tokenizer, bundle.feature_extractor), said.append)
    assert not any(s.startswith("warning:") for s in said)
