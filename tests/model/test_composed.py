"""Composed audio LLMs: `nabra model compose` takes the audio encoder of a tiny Qwen2.5-Omni (or
Nemotron-Omni) checkpoint and a tiny causal LM folder in the hub layout (Falcon-H1: hybrid Mamba-2 +
attention; Jais-2), adds a projector and the layout's tokens; the result loads, collates like its audio
family, trains (LoRA inside the LM, Mamba included, and the projector), generates left-padded as alone,
and its adapter round-trips."""

import json

import pytest
import torch

from nabra.cli import main
from nabra.errors import NabraError
from nabra.model import load
from nabra.model.collate import Collator
from nabra.model.compose import compose
from nabra.model.config import LoraConfig
from nabra.model.families import detect, family, family_of_model
from nabra.model.families.nemotron_h_omni import NEMOTRON_H_OMNI
from nabra.model.families.qwen2_5_omni import QWEN2_5_OMNI
from nabra.model.lora import load_adapter, save_adapter, trainable, trainable_parameter_names
from nabra.model.tiny import TinyConfig, init_tiny
from nabra.testing import (
    audio_example,
    check_left_padded_generation,
    lora_steps,
    noise_waves,
    write_causal_lm,
)

LMS = ("falcon_h1", "jais2")


@pytest.fixture(scope="module", params=LMS)
def lm_dir(request, tmp_path_factory):
    return write_causal_lm(tmp_path_factory.mktemp(request.param) / "lm", request.param)


@pytest.fixture(scope="module")
def composed_dir(lm_dir, tiny_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("composed") / "model"
    assert main(["model", "compose", "--audio-from", str(tiny_dir), "--lm", str(lm_dir), "--out", str(out)]) == 0
    return out


def test_compose_keeps_the_tower_and_the_lm_and_adds_the_layout_tokens(composed_dir, lm_dir, tiny_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = json.loads((composed_dir / "config.json").read_text())
    assert config["model_type"] == "nabra_composed" and config["audio_family"] == "qwen2_5_omni"
    assert detect(config) == (family("composed"), "composed")
    bundle = load(composed_dir)
    fam = bundle.family
    assert fam.name == "composed" and fam.tower is QWEN2_5_OMNI and family_of_model(bundle.model) is fam
    source = load(tiny_dir).model.model.audio_tower.state_dict()
    tower = bundle.model.audio_tower.state_dict()
    assert tower.keys() == source.keys() and all(torch.equal(tower[k], source[k]) for k in tower)
    lm = AutoModelForCausalLM.from_pretrained(lm_dir)
    old = AutoTokenizer.from_pretrained(lm_dir)
    added = json.loads((composed_dir / "nabra_compose.json").read_text())["tokens_added"]
    assert added == ["<|im_start|>", "<|im_end|>", "<|audio_bos|>", "<|AUDIO|>", "<|audio_eos|>"]  # pad: its eos
    tok = bundle.tokenizer
    assert len(tok) == len(old) + 5 and tok.pad_token == "<|endoftext|>"
    assert tok.convert_tokens_to_ids("<|AUDIO|>") == bundle.audio_token_id
    emb = bundle.model.language_model.get_input_embeddings().weight
    assert emb.shape[0] == len(tok) and torch.equal(emb[: len(old)], lm.get_input_embeddings().weight)
    ids = torch.tensor([old("مرحبا بكم")["input_ids"]])
    with torch.no_grad():  # the LM is the LM: text alone gives its logits (on its own vocabulary)
        assert torch.allclose(bundle.model(input_ids=ids).logits[..., : len(old)], lm(input_ids=ids).logits, atol=1e-5)
    assert bundle.model.generation_config.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>")
    # a stock transformers Auto class loads it once Nabra's classes are registered (the import above)
    again = AutoModelForCausalLM.from_pretrained(composed_dir)
    assert type(again).__name__ == "ComposedAudioLMForCausalLM"


def test_the_collator_works_as_for_the_audio_family(composed_dir, tiny_dir):
    bundle, source = load(composed_dir), load(tiny_dir)
    examples = [audio_example(f"e{i}", t, s) for i, (t, s) in enumerate([("asr", 1.0), ("did", 12.0), ("ssum", 45.0)])]
    waves = noise_waves(examples)
    ours = Collator.for_bundle(bundle)(list(zip(examples, waves, strict=True)))
    theirs = Collator.for_bundle(source)(list(zip(examples, waves, strict=True)))
    assert torch.equal(ours["input_features"], theirs["input_features"])
    audio = bundle.audio_token_id
    counts = (ours["input_ids"] == audio).sum(1).tolist()
    assert counts == (theirs["input_ids"] == source.audio_token_id).sum(1).tolist() == [25, 300, 1125]
    inputs = {k: v for k, v in ours.items() if isinstance(v, torch.Tensor)}
    with torch.no_grad():
        out = bundle.model(**inputs)
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.loss)
    one_less = inputs["input_ids"].clone()
    one_less[0, (one_less[0] == audio).nonzero()[0]] = bundle.tokenizer.pad_token_id
    with pytest.raises(ValueError, match="1449 audio placeholder tokens but 1450 audio embeddings"):
        bundle.model(**{**inputs, "input_ids": one_less})


def test_lora_targets_the_lm_only_mamba_included_and_the_projector_trains(composed_dir):
    model = trainable(load(composed_dir).model, "lora", LoraConfig(train_aligner=True))
    names = trainable_parameter_names(model)
    adapters = [n for n in names if ".lora_" in n]
    assert adapters and all(".language_model.model.layers." in n for n in adapters)
    targeted = {n.split(".layers.0.")[1].rsplit(".lora_", 1)[0] for n in adapters if ".layers.0." in n}
    lm_type = model.base_model.model.config.text_config.model_type
    expected = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"}
    expected |= ({"mamba.in_proj", "mamba.out_proj", "feed_forward.gate_proj", "feed_forward.up_proj",
                  "feed_forward.down_proj"} if lm_type == "falcon_h1" else {"mlp.up_proj", "mlp.down_proj"})
    assert targeted == expected
    others = [n for n in names if ".lora_" not in n]
    assert others and all(".projector.modules_to_save." in n for n in others)
    assert not [n for n in names if "audio_tower" in n]


def _batch(bundle):
    examples = [audio_example(f"t{i}", task, s) for i, (task, s) in enumerate([("asr", 1.5), ("ser", 2.0), ("did", 1.0)])]
    batch = Collator.for_bundle(bundle)(list(zip(examples, noise_waves(examples, 2), strict=True)))
    return {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}


def test_a_few_full_steps_lower_the_loss(composed_dir):
    # Full fine-tuning at a µP-sized rate: a random LM under Falcon-H1's head multiplier (0.039) gives near-uniform
    # logits that rank-8 adapters barely move in a few steps (a pre-trained LM does not start there).
    torch.manual_seed(0)
    bundle = load(composed_dir)
    model = trainable(bundle.model, "full")
    losses = lora_steps(model, _batch(bundle), steps=16, lr=3e-2)
    assert losses[-1] < 0.8 * losses[0], losses


def test_the_adapter_and_the_projector_round_trip(composed_dir, tmp_path):
    torch.manual_seed(0)
    bundle = load(composed_dir)
    inputs = _batch(bundle)
    with torch.no_grad():
        before = bundle.model.eval()(**inputs).logits
    model = trainable(bundle.model, "lora", LoraConfig(r=8, train_aligner=True))
    lora_steps(model, inputs, steps=4)
    model.eval()
    with torch.no_grad():
        trained = model(**inputs).logits
    assert (trained - before).abs().max() > 1e-4
    save_adapter(model, tmp_path / "adapter")
    again = load_adapter(load(composed_dir).model, tmp_path / "adapter").eval()
    with torch.no_grad():
        assert (again(**inputs).logits - trained).abs().max() < 1e-5


def test_left_padded_generation_equals_generation_alone(composed_dir):
    check_left_padded_generation(load(composed_dir))


def test_a_nemotron_tower_composes_with_its_own_features_and_counts(tmp_path, corpus):
    tiny = init_tiny(tmp_path / "nemotron", corpus, TinyConfig(vocab_size=400), NEMOTRON_H_OMNI)
    out = compose(tiny, write_causal_lm(tmp_path / "lm", "jais2"), tmp_path / "composed", projector="linear",
                  log=lambda *_: None)
    bundle = load(out)
    assert bundle.family.tower is NEMOTRON_H_OMNI and bundle.family.feature_mask_key == "input_features_mask"
    assert set(bundle.family.audio_parts(bundle.model)) == {"audio_tower", "embed_audio"}
    examples = [audio_example("n0", "asr", 2.0), audio_example("n1", "ser", 5.0)]
    batch = Collator.for_bundle(bundle)(list(zip(examples, noise_waves(examples), strict=True)))
    assert (batch["input_ids"] == bundle.audio_token_id).sum(1).tolist() == [26, 63]  # Parakeet's 8x
    inputs = {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}
    with torch.no_grad():
        assert torch.isfinite(bundle.model(**inputs).loss)
    from nabra.model.embeddings import aligner_parameters

    model = trainable(bundle.model, "lora", LoraConfig(train_aligner=True))
    saved = {n.split(".modules_to_save.")[0].rsplit(".", 1)[-1] for n in trainable_parameter_names(model)
             if ".modules_to_save." in n}
    assert saved == {"embed_audio", "projector"}  # the tower's own projector and the new one
    assert {n.split(".")[2] for n, _ in aligner_parameters(model)} >= {"audio_tower", "embed_audio", "projector"}


def test_compose_refuses_what_it_cannot_use(tmp_path, tiny_dir, lm_dir):
    with pytest.raises(NabraError, match="is an audio LLM"):
        compose(tiny_dir, tiny_dir, tmp_path / "a", log=lambda *_: None)
    with pytest.raises(NabraError, match="no config.json: not a causal LM folder"):
        compose(tiny_dir, tmp_path, tmp_path / "b", log=lambda *_: None)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("mine")
    with pytest.raises(NabraError, match="holds x.txt, and is not an earlier composed model"):
        compose(tiny_dir, lm_dir, tmp_path / "full", log=lambda *_: None)
    with pytest.raises(NabraError, match="is inside the LM"):
        compose(tiny_dir, lm_dir, lm_dir / "composed", log=lambda *_: None)
    with pytest.raises(NabraError, match="unknown projector"):
        compose(tiny_dir, lm_dir, tmp_path / "c", projector="mlp9", log=lambda *_: None)
    with pytest.raises(NabraError, match="unknown dtype 'int8'"):
        compose(tiny_dir, lm_dir, tmp_path / "d", dtype="int8", log=lambda *_: None)
    assert not any((tmp_path / n).exists() for n in "acd")


def test_a_composed_model_lends_its_audio_encoder_to_another_lm(composed_dir, tmp_path):
    out = compose(composed_dir, write_causal_lm(tmp_path / "lm", "qwen3"), tmp_path / "again", log=lambda *_: None)
    bundle, first = load(out), load(composed_dir)
    assert bundle.family.tower is QWEN2_5_OMNI and bundle.model.config.text_config.model_type == "qwen3"
    a, b = first.model.audio_tower.state_dict(), bundle.model.audio_tower.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_compose_replaces_an_earlier_composed_model_only_when_forced(composed_dir, tiny_dir, lm_dir, capsys):
    args = ["model", "compose", "--audio-from", str(tiny_dir), "--lm", str(lm_dir), "--out", str(composed_dir)]
    assert main(args) == 2
    assert "holds an earlier composed model (its nabra_compose.json): pass --force" in capsys.readouterr().err
    assert main([*args, "--force"]) == 0
    assert load(composed_dir).family.name == "composed"
