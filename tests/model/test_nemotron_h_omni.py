"""The Nemotron-3-Nano-Omni family (hybrid Mamba-2 + attention MoE, Parakeet audio) on its tiny
model: layouts, the collator against transformers' processor, LoRA on Mamba and attention,
training, left-padded generation and the adapter round trip."""

import json

import pytest
import torch

from nabra.model import load
from nabra.model.collate import Collator
from nabra.model.config import LoraConfig
from nabra.model.families import detect
from nabra.model.families.nemotron_h_omni import NEMOTRON_H_OMNI, audio_token_count
from nabra.model.lora import load_adapter, save_adapter, trainable, trainable_parameter_names
from nabra.model.tiny import TinyConfig, init_tiny
from nabra.testing import (
    audio_example,
    check_collator_equals_processor,
    check_left_padded_generation,
    lora_steps,
    noise_waves,
    write_nemotron_omni_release,
)


@pytest.fixture(scope="module")
def nemotron_dir(tmp_path_factory, corpus):
    return init_tiny(tmp_path_factory.mktemp("nemotron") / "tiny", corpus, TinyConfig(vocab_size=512), NEMOTRON_H_OMNI)


@pytest.fixture(scope="module")
def nemotron(nemotron_dir):
    return load(nemotron_dir)



def test_layouts_and_token_count_follow_the_processor():
    assert detect({"model_type": "nemotron_h_omni"}) == (NEMOTRON_H_OMNI, "native")
    assert detect({"model_type": "NemotronH_Nano_Omni_Reasoning_V3"}) == (NEMOTRON_H_OMNI, "release")
    from transformers.models.nemotron_h_omni.processing_nemotron_h_omni import (
        NemotronH_Omni_Reasoning_V3Processor,
    )

    class Settings:  # what _estimate_audio_num_embeddings reads of the processor
        audio_hop_length, audio_subsampling_factor = 160, 8

    for samples in (8000, 16000, 21920, 32000, 48800, 80000, 160000, 480000, 16159, 16160):
        expected = NemotronH_Omni_Reasoning_V3Processor._estimate_audio_num_embeddings(Settings(), samples)
        assert audio_token_count(samples // 160) == expected, samples  # the mask counts samples // 160 frames
    assert [audio_token_count(s * 100) for s in (1, 2, 5, 10, 30)] == [13, 26, 63, 126, 376]  # research notes


def test_tiny_model_loads_and_the_release_form_loads_to_the_same_weights(nemotron_dir, nemotron, tmp_path):
    config = json.loads((nemotron_dir / "config.json").read_text())
    assert config["model_type"] == "nemotron_h_omni"
    assert config["text_config"]["layers_block_type"] == ["linear_attention", "moe", "full_attention", "mlp"]
    assert nemotron.family is NEMOTRON_H_OMNI and nemotron.layout == "native"
    assert sum(p.numel() for p in nemotron.model.parameters()) < 5_000_000
    assert nemotron.tokenizer.convert_tokens_to_ids("<so_embedding>") == nemotron.model.config.audio_token_id
    assert nemotron.feature_extractor.feature_size == 128
    release = load(write_nemotron_omni_release(nemotron_dir, tmp_path / "release"))
    assert release.layout == "release" and release.model.config.audio_token_id == nemotron.model.config.audio_token_id
    a, b = nemotron.model.state_dict(), release.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_collator_equals_transformers_processor(nemotron):
    examples = [audio_example(f"e{i}", task, s) for i, (task, s) in
                enumerate([("asr", 1.0), ("did", 12.0), ("ssum", 45.0), ("asr", 1.37), ("ser", 3.05)])]
    waves = noise_waves(examples)
    ours = check_collator_equals_processor(nemotron, examples, waves)  # same ids, logits within 1e-5
    assert ours["input_features"].shape[-1] == 128 and "input_features_mask" in ours  # time-major Parakeet features
    audio = nemotron.model.config.audio_token_id
    assert (ours["input_ids"] == audio).sum(1).tolist() == [13, 151, 563, 18, 39]


def test_lora_covers_mamba_attention_and_mlp_inside_the_lm_only(nemotron_dir):
    from nabra.model.embeddings import aligner_parameters

    model = trainable(load(nemotron_dir).model, "lora", LoraConfig(train_aligner=True, train_label_tokens=True),
                      label_token_ids=[5, 6, 7])
    # the label rows are the LM head's (the vision tower's patch embedding is never touched)
    assert [n for n, p in model.named_parameters() if p.requires_grad and "trainable_tokens" in n] == [
        "base_model.model.language_model.lm_head.token_adapter.trainable_tokens_delta.default"]
    # ADS's aligner: the audio tower, the projector outside it, and the LM's token embedding
    assert {n.split(".")[2] for n, _ in aligner_parameters(model)} >= {"audio_tower", "embed_audio", "language_model"}
    names = trainable_parameter_names(model)
    adapters = [n for n in names if ".lora_" in n]
    assert adapters and all(".language_model.model.layers." in n and ".mixer." in n for n in adapters)
    targeted = {n.split(".mixer.")[1].rsplit(".lora_", 1)[0] for n in adapters}
    assert targeted == {"in_proj", "out_proj", "q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj",
                        "shared_experts.up_proj", "shared_experts.down_proj"}
    assert not [n for n in names if "audio_tower" in n or ".experts.up_proj" in n or ".experts.down_proj" in n]
    assert all("embed_audio" in n or "trainable_tokens" in n for n in names if ".lora_" not in n)
    with pytest.raises(Exception, match="gate_proj are not projections of the Nemotron-3-Nano-Omni"):
        LoraConfig(targets=("gate_proj",)).target_regex(NEMOTRON_H_OMNI)


def test_left_padded_generation_equals_generation_alone(nemotron):
    # Mamba carries a state: padding on the left must leave it as it is (the mask zeroes those steps).
    check_left_padded_generation(nemotron)


def test_a_few_steps_lower_the_loss_and_the_adapter_round_trips(nemotron_dir, tmp_path):
    torch.manual_seed(0)
    bundle = load(nemotron_dir)
    model = trainable(bundle.model, "lora", LoraConfig(r=8, train_aligner=True))
    examples = [audio_example(f"t{i}", task, s) for i, (task, s) in enumerate([("asr", 1.5), ("ser", 2.0), ("did", 1.0)])]
    batch = Collator.for_bundle(bundle)(list(zip(examples, noise_waves(examples, 2), strict=True)))
    inputs = {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}
    losses = lora_steps(model, inputs)
    assert losses[-1] < 0.85 * losses[0], losses
    # the frozen encoder's BatchNorms kept their statistics (the adapter could not carry new ones)
    norms = [m for n, m in model.named_modules() if n.endswith("conv.norm")]
    assert norms and all(not m.training for m in norms) and model.training
    fresh = dict(load(nemotron_dir).model.named_buffers())
    assert all(torch.equal(b, fresh[n.removeprefix("base_model.model.")]) for n, b in model.named_buffers()
               if "running_" in n)
    model.eval()
    with torch.no_grad():
        trained = model(**inputs).logits
    save_adapter(model, tmp_path / "adapter")
    again = load_adapter(load(nemotron_dir).model, tmp_path / "adapter").eval()
    with torch.no_grad():
        assert (again(**inputs).logits - trained).abs().max() < 1e-5


def test_fsdp_classes_and_full_fine_tuning_freeze_what_the_audio_path_never_uses(nemotron_dir):
    import yaml

    from nabra.config import CONFIG_DIR, load_config

    model = trainable(load(nemotron_dir).model, "full")
    assert set(NEMOTRON_H_OMNI.fsdp_layer_classes) <= {type(m).__name__ for m in model.modules()}
    shipped = yaml.safe_load((CONFIG_DIR / "accelerate" / "fsdp-nemotron-omni.yaml").read_text())
    assert tuple(shipped["fsdp_config"]["fsdp_transformer_layer_cls_to_wrap"].split(",")) == NEMOTRON_H_OMNI.fsdp_layer_classes
    assert load_config("nemotron-omni-lora-ads").model.family == "nemotron_h_omni"
    frozen = {n.split(".")[0] for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {"vision_model", "multi_modal_projector"}
