"""The Qwen3-Omni family on its tiny model: on-disk layouts, the collator against transformers'
own processor, LoRA's targets, training, and the adapter round trip."""

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors import safe_open

from nabra.errors import NabraError
from nabra.model import load
from nabra.model.collate import Collator
from nabra.model.config import LoraConfig
from nabra.model.families import detect, family
from nabra.model.families.qwen3_omni import QWEN3_OMNI, audio_token_count
from nabra.model.lora import load_adapter, save_adapter, trainable, trainable_parameter_names
from nabra.model.tiny import TinyConfig, init_tiny
from nabra.testing import audio_example, check_collator_equals_processor, lora_steps, write_qwen3_omni_release


@pytest.fixture(scope="module")
def qwen3_dir(tmp_path_factory, corpus):
    return init_tiny(tmp_path_factory.mktemp("qwen3") / "tiny", corpus, TinyConfig(vocab_size=512), QWEN3_OMNI)


@pytest.fixture(scope="module")
def qwen3(qwen3_dir):
    return load(qwen3_dir)



def test_layouts_and_token_count_follow_the_release():
    # Qwen3-Omni-30B-A3B-Thinking's config.json: model_type qwen3_omni_moe with a thinker_config.
    assert detect({"model_type": "qwen3_omni_moe", "thinker_config": {}}) == (QWEN3_OMNI, "release")
    assert detect({"model_type": "qwen3_omni_moe_thinker"}) == (QWEN3_OMNI, "thinker")
    assert family("qwen3_omni") is QWEN3_OMNI
    # transformers' _get_feat_extract_output_lengths (n_window 50), counted in the research notes
    frames = np.array([50, 100, 137, 200, 305, 500, 1000, 3000])
    assert audio_token_count(frames).tolist() == [7, 13, 18, 26, 40, 65, 130, 390]
    from transformers.models.qwen3_omni_moe.processing_qwen3_omni_moe import _get_feat_extract_output_lengths

    lengths = torch.arange(1, 4001)
    assert torch.equal(audio_token_count(lengths), _get_feat_extract_output_lengths(lengths, 50))


def test_tiny_model_is_saved_in_the_real_layout(qwen3_dir, qwen3, tmp_path):
    config = json.loads((qwen3_dir / "config.json").read_text())
    assert config["model_type"] == "qwen3_omni_moe_thinker"
    assert config["audio_config"]["n_window"] == 50 and config["position_id_per_seconds"] == 13
    with safe_open(qwen3_dir / "model.safetensors", "pt") as f:
        keys = set(f.keys())
    # transformers writes the v4 names a release has: experts one by one, not fused
    assert "model.layers.0.mlp.experts.0.gate_proj.weight" in keys and "audio_tower.proj2.weight" in keys
    assert qwen3.family is QWEN3_OMNI and qwen3.layout == "thinker"
    assert sum(p.numel() for p in qwen3.model.parameters()) < 5_000_000
    assert qwen3.tokenizer.convert_tokens_to_ids("<|audio_pad|>") == qwen3.model.config.audio_token_id
    # The thinker-only release (-Thinking, -Captioner): thinker.* keys, the same weights once loaded
    release = load(write_qwen3_omni_release(qwen3_dir, tmp_path / "release"))
    assert release.layout == "release"
    a, b = qwen3.model.state_dict(), release.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_instruct_release_loads_its_thinker_and_leaves_the_talker_unread(qwen3_dir, qwen3, tmp_path):
    from transformers import Qwen3OmniMoeForConditionalGeneration

    folder = write_qwen3_omni_release(qwen3_dir, tmp_path / "instruct", talker=True)
    with safe_open(folder / "model.safetensors", "pt") as f:
        keys = f.keys()  # a safe_open handle is not iterable
    prefixes = {k.split(".")[0] for k in keys}
    assert prefixes == {"thinker", "talker", "code2wav"}  # what an -Instruct release holds
    full = Qwen3OmniMoeForConditionalGeneration.from_pretrained(folder)  # the stock class reads all of it
    assert full.has_talker and sum(p.numel() for p in full.talker.parameters()) > 0
    release = load(folder)
    assert release.layout == "release" and type(release.model).__name__ == "Qwen3OmniMoeThinkerForConditionalGeneration"
    a, b = qwen3.model.state_dict(), release.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not [n for n, _ in release.model.named_parameters() if "talker" in n or "code2wav" in n]


def test_an_encoder_with_another_window_is_refused(qwen3_dir, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(qwen3_dir, other)
    config = json.loads((other / "config.json").read_text())
    config["audio_config"]["n_window"] = 100
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(NabraError, match=r"config.json: audio_config.n_window is 100; every Qwen3-Omni release has 50"):
        load(other)


def test_collator_equals_transformers_processor(qwen3):
    rng = np.random.default_rng(0)
    examples = [audio_example(f"e{i}", task, s) for i, (task, s) in
                enumerate([("asr", 1.0), ("did", 12.0), ("ssum", 45.0), ("asr", 1.37), ("ser", 3.05)])]
    waves = [(0.1 * rng.standard_normal(int(ex.duration * 16000))).astype(np.float32) for ex in examples]
    ours = check_collator_equals_processor(qwen3, examples, waves)  # same ids, logits within 1e-5
    audio = qwen3.model.config.audio_token_id
    assert (ours["input_ids"] == audio).sum(1).tolist() == [13, 156, 585, 18, 40]


def test_lora_stays_in_the_lm_attention_and_the_experts_stay_frozen(qwen3_dir):
    model = trainable(load(qwen3_dir).model, "lora", LoraConfig(train_aligner=True))
    names = trainable_parameter_names(model)
    adapters = [n for n in names if ".lora_" in n]
    assert adapters and all(".language_model.layers." in n and ".self_attn." in n for n in adapters)
    assert {n.split(".self_attn.")[1].split(".")[0] for n in adapters} == {"q_proj", "k_proj", "v_proj", "o_proj"}
    full = [n for n in names if ".lora_" not in n]
    assert full and all(any(f"audio_tower.{m}." in n for m in ("proj1", "proj2", "ln_post")) for n in full)
    assert not [n for n in names if "experts" in n or ".mlp.gate" in n]  # routed experts and router


def test_a_few_steps_lower_the_loss_and_the_adapter_round_trips(qwen3_dir, tmp_path):
    torch.manual_seed(0)
    bundle = load(qwen3_dir)
    model = trainable(bundle.model, "lora", LoraConfig(r=8, train_aligner=True))
    rng = np.random.default_rng(1)
    examples = [audio_example(f"t{i}", task, s) for i, (task, s) in enumerate([("asr", 1.5), ("ser", 2.0), ("did", 1.0)])]
    waves = [(0.1 * rng.standard_normal(int(ex.duration * 16000))).astype(np.float32) for ex in examples]
    batch = Collator.for_bundle(bundle)(list(zip(examples, waves, strict=True)))
    inputs = {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}
    losses = lora_steps(model, inputs)
    assert losses[-1] < 0.85 * losses[0], losses  # 6.31 -> 5.17 measured
    model.eval()
    with torch.no_grad():
        trained = model(**inputs).logits
    save_adapter(model, tmp_path / "adapter")
    saved = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert all(".language_model.layers." in t for t in saved["target_modules"])  # names, never leaf names
    again = load_adapter(load(qwen3_dir).model, tmp_path / "adapter").eval()
    with torch.no_grad():
        assert (again(**inputs).logits - trained).abs().max() < 1e-5


@pytest.mark.parametrize("which", ["qwen3", "qwen2_5"])
def test_size_from_config_json_alone_matches_the_loaded_model(which, qwen3_dir, tiny_dir, tmp_path):
    from nabra.model.size import model_size, render

    folder = qwen3_dir if which == "qwen3" else tiny_dir
    only_config = tmp_path / "config-only"
    only_config.mkdir()
    shutil.copy(folder / "config.json", only_config / "config.json")
    settings = LoraConfig(r=4, train_aligner=True)
    size = model_size(only_config, lora=settings, dtype="float32")
    bundle = load(folder)
    assert size["parameters"] == sum(p.numel() for p in bundle.model.parameters())
    assert size["parts"] == {k: sum(p.numel() for p in m.parameters()) for k, m in bundle.family.parts(bundle.model).items()}
    assert size["weights_gib"] == pytest.approx(4 * size["parameters"] / 2**30)
    model = trainable(bundle.model, "lora", settings)
    assert size["lora_trainable"] == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert f"{size['parameters']:,} parameters" in render(size)


def test_fsdp_wraps_the_family_layer_classes_the_model_has(qwen3):
    import yaml

    from nabra.config import CONFIG_DIR

    assert set(QWEN3_OMNI.fsdp_layer_classes) <= {type(m).__name__ for m in qwen3.model.modules()}
    shipped = yaml.safe_load((CONFIG_DIR / "accelerate" / "fsdp-qwen3-omni.yaml").read_text())
    assert tuple(shipped["fsdp_config"]["fsdp_transformer_layer_cls_to_wrap"].split(",")) == QWEN3_OMNI.fsdp_layer_classes
