import json

import pytest

from nabra.config import load_config
from nabra.errors import NabraError
from nabra.model import load
from nabra.model.collate import Collator
from nabra.model.config import LoraConfig
from nabra.model.families import FAMILIES, Family, check_family, detect, family, family_of_model
from nabra.model.families.qwen2_5_omni import QWEN2_5_OMNI


def test_qwen_layouts_are_detected_from_config_json():
    # The release's config.json (Qwen/Qwen2.5-Omni-7B) has model_type qwen2_5_omni with the thinker,
    # talker and token2wav parts; nabra's own folders are thinker-only.
    assert detect({"model_type": "qwen2_5_omni", "thinker_config": {}, "talker_config": {}}) == (QWEN2_5_OMNI, "release")
    assert detect({"model_type": "qwen2_5_omni_thinker"}) == (QWEN2_5_OMNI, "thinker")
    with pytest.raises(NabraError, match=r"x/config.json: model_type is 'qwen2_5_omni'; expected qwen2_5_omni: .*thinker_config"):
        detect({"model_type": "qwen2_5_omni"}, "x/config.json")  # no thinker part: not a release


def test_other_model_types_get_the_families_expected():
    with pytest.raises(NabraError, match="expected qwen2_5_omni: .*; qwen3_omni: .*qwen3_omni_moe_thinker"):
        detect({"model_type": "qwen3_omni_moe"})  # no thinker part: not a release
    with pytest.raises(NabraError, match="model_type is 'llama'; expected .*nemotron_h_omni: 'nemotron_h_omni' or"):
        detect({"model_type": "llama"})


def test_a_loaded_model_knows_its_family(tiny_dir):
    bundle = load(tiny_dir)
    assert bundle.family is QWEN2_5_OMNI and family_of_model(bundle.model) is QWEN2_5_OMNI
    collator = Collator.for_bundle(bundle)
    assert collator.family is QWEN2_5_OMNI
    assert collator.audio_tokens(1.0) == QWEN2_5_OMNI.audio_token_count(100) + 2  # 100 mel frames a second


def test_lora_targets_stay_inside_the_family_lm():
    regex = LoraConfig(targets=("q_proj", "down_proj")).target_regex(QWEN2_5_OMNI)
    assert regex == r"model\.language_model\.layers\.\d+\.(?:self_attn|mlp)\.(?:q_proj|down_proj)"
    config = LoraConfig(train_aligner=True).peft_config(family=QWEN2_5_OMNI)
    assert config.modules_to_save == list(QWEN2_5_OMNI.aligner_modules)
    assert LoraConfig(train_audio_encoder=True).peft_config().modules_to_save == [QWEN2_5_OMNI.audio_encoder]


def test_model_family_in_the_config_is_checked(tmp_path):
    with pytest.raises(NabraError, match="unknown model family 'llama'; known: qwen2_5_omni, qwen3_omni, nemotron_h_omni"):
        family("llama")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(json.dumps({"model": {"path": "m", "family": "nemotron"}}))
    with pytest.raises(NabraError, match="unknown model family 'nemotron'"):
        load_config(str(recipe))
    check_family("auto", QWEN2_5_OMNI, "m")
    check_family("qwen2_5_omni", QWEN2_5_OMNI, "m")

    class Other(Family):
        name, title = "other", "Other"

    with pytest.raises(NabraError, match="model.family is 'qwen2_5_omni' but m is a other checkpoint"):
        check_family("qwen2_5_omni", Other(), "m")
    assert set(FAMILIES) == {"qwen2_5_omni", "qwen3_omni", "nemotron_h_omni", "composed"}


def test_fsdp_wraps_the_family_layer_classes_the_model_has(tiny_dir):
    import yaml

    from nabra.config import CONFIG_DIR

    classes = {type(m).__name__ for m in load(tiny_dir).model.modules()}
    assert set(QWEN2_5_OMNI.fsdp_layer_classes) <= classes
    shipped = yaml.safe_load((CONFIG_DIR / "accelerate" / "fsdp.yaml").read_text())
    wrapped = shipped["fsdp_config"]["fsdp_transformer_layer_cls_to_wrap"].split(",")
    assert tuple(wrapped) == QWEN2_5_OMNI.fsdp_layer_classes
