"""Padding-free packing: a packed micro-batch gives every family's model the same logits and losses as
the padded one (positions restart per sequence; attention stays within each), or is refused with
its reason."""

import numpy as np
import pytest
import torch

from nabra.model import load
from nabra.model.collate import Collator
from nabra.model.compose import compose
from nabra.model.config import CollatorConfig
from nabra.model.families import family_of_model
from nabra.model.families.nemotron_h_omni import NEMOTRON_H_OMNI
from nabra.model.families.qwen3_omni import QWEN3_OMNI
from nabra.model.loss import AnswerLoss
from nabra.model.packed_attention import use_packed_sdpa
from nabra.model.tiny import TinyConfig, init_tiny
from nabra.tasks import Example
from nabra.testing import write_causal_lm

# The mix: clips of 1, 12, 45 and 200 s (the last cut into segments by a family with a
# 30-s window) beside a text-only TSUM example.
SECONDS = (1.0, 12.0, 45.0, 200.0)


def _samples():
    rng = np.random.default_rng(0)
    out = []
    for k, s in enumerate(SECONDS):
        wave = (0.1 * rng.standard_normal(int(16000 * s))).astype(np.float32)
        out.append((Example(id=f"a{k}#asr", utt_id=f"a{k}", task="asr", instruction="اكتب ما يقال",
                            target="مرحبا بكم " * (k + 1), audio=f"a{k}.wav", duration=s), wave))
    out.insert(2, (Example(id="t#tsum", utt_id="t", task="tsum", instruction="لخص: " + "نص طويل " * 30,
                           target="ملخص قصير"), None))
    return out


def _both(bundle):
    """The padded and the packed batch of the same samples."""
    padded = Collator.for_bundle(bundle, CollatorConfig(max_length=None))(_samples())
    packed = Collator.for_bundle(bundle, CollatorConfig(max_length=None, packing=True))(_samples())
    return padded, packed


def _answer_logits(model, batch):
    """The logits at the answer positions (what the loss reads), in example order."""
    loss = AnswerLoss(model)
    family = family_of_model(model)
    inputs = {k: v for k, v in batch.items() if isinstance(v, torch.Tensor) and k not in ("labels", "seq_lens")}
    if "seq_lens" in batch:
        inputs["position_ids"] = family.packed_positions(model, inputs, batch["seq_lens"])
    where = batch["labels"][:, 1:] != -100
    keep = torch.cat([where, torch.zeros_like(where[:, :1])], 1)
    return family.answer_logits(model, inputs, keep), loss(batch)


def _check_equal(bundle, per_sequence=False):
    """``per_sequence``: the language model's attention is Nabra's per-sequence SDPA (what training on
    CPU uses), else transformers' SDPA with its block-diagonal mask."""
    if per_sequence:
        use_packed_sdpa(bundle.family.parts(bundle.model)["language model"])
    padded, packed = _both(bundle)
    assert packed["input_ids"].shape[0] == 1 and "attention_mask" not in packed
    assert packed["input_ids"].shape[1] == int(padded["attention_mask"].sum()) < padded["input_ids"].numel()
    assert packed["seq_lens"].tolist() == padded["attention_mask"].sum(1).tolist()
    model = bundle.model.eval()
    with torch.no_grad():
        (a, (sa, ca)), (b, (sb, cb)) = _answer_logits(model, padded), _answer_logits(model, packed)
    assert a.shape == b.shape and a.shape[0] > 20
    assert torch.allclose(a, b, atol=1e-5, rtol=0), (a - b).abs().max()
    assert torch.equal(ca, cb)
    assert torch.allclose(sa / ca, sb / cb, atol=1e-5, rtol=0), (sa / ca, sb / cb)  # each example's mean token loss
    assert abs(float(sa.sum() / ca.sum() - sb.sum() / cb.sum())) < 1e-5  # the micro-batch's loss


@pytest.fixture(scope="module")
def qwen2_5(tiny_dir):
    return load(tiny_dir)


def test_packed_equals_padded_qwen2_5_omni(qwen2_5):
    _check_equal(qwen2_5)


def test_per_sequence_sdpa_equals_the_masked_one(tiny_dir):
    bundle = load(tiny_dir)
    _check_equal(bundle, per_sequence=True)
    lm = bundle.family.parts(bundle.model)["language model"]
    assert lm.config._attn_implementation == "nabra_packed_sdpa"
    assert bundle.model.model.audio_tower.config._attn_implementation != "nabra_packed_sdpa"  # the encoder keeps its own


def test_packing_across_sequences_would_differ(qwen2_5):
    # The check has teeth: the same packed row without its restarting positions (one long sequence,
    # attention across the examples) gives other logits.
    _, packed = _both(qwen2_5)
    model = qwen2_5.model.eval()
    with torch.no_grad():
        good, _ = _answer_logits(model, packed)
        flat = {k: v for k, v in packed.items() if k != "seq_lens"}
        flat["seq_lens"] = torch.tensor([packed["input_ids"].shape[1]])
        bad, _ = _answer_logits(model, flat)
    assert (good - bad).abs().max() > 1e-3


@pytest.mark.parametrize("per_sequence", [False, True])
def test_packed_equals_padded_qwen3_omni(tmp_path, corpus, per_sequence):
    _check_equal(load(init_tiny(tmp_path / "qwen3", corpus, TinyConfig(vocab_size=512), QWEN3_OMNI)), per_sequence)


@pytest.mark.parametrize("per_sequence", [False, True])
def test_packed_equals_padded_composed_attention_lm(tmp_path, tiny_dir, per_sequence):
    out = compose(tiny_dir, write_causal_lm(tmp_path / "lm", "jais2"), tmp_path / "composed", log=lambda *_: None)
    _check_equal(load(out), per_sequence)


def test_hybrid_mamba_families_refuse_packing(tmp_path, corpus, tiny_dir):
    nemotron = load(init_tiny(tmp_path / "nemotron", corpus, TinyConfig(vocab_size=512), NEMOTRON_H_OMNI))
    assert "Mamba-2" in nemotron.family.packing_refusal(nemotron.model)
    falcon = load(compose(tiny_dir, write_causal_lm(tmp_path / "lm", "falcon_h1"), tmp_path / "composed", log=lambda *_: None))
    assert "Mamba" in falcon.family.packing_refusal(falcon.model)
