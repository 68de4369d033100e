"""Every config Nabra writes says what its weights are: ``tie_word_embeddings`` at every level a consumer reads.

Issue 29: the tiny thinker's config said ``thinker_config.tie_word_embeddings: false`` (what transformers'
thinker class reads) and ``text_config.tie_word_embeddings: true`` (what vLLM builds its language model
from: ``vllm/model_executor/models/qwen2.py`` ties ``lm_head`` to ``embed_tokens`` when it is true and skips
the checkpoint's ``lm_head.weight``); vLLM served a release export with the trained output layer dropped.
transformers 5.19's ``Qwen3OmniMoeTextConfig`` has no default for the flag at all, so a ``text_config``
without it fails in vLLM's Qwen3-Omni thinker (``self.config.tie_word_embeddings``).
"""

import json

import pytest

from nabra.model.compose import compose
from nabra.model.families import FAMILIES
from nabra.model.lora import merge
from nabra.model.ties import fix_tie_flags, set_tie_flags, tie_flags, tie_problems, tied_in
from nabra.model.tiny import TinyConfig, init_tiny
from nabra.testing import write_causal_lm, write_release_checkpoint


def test_the_weights_decide_and_every_level_is_set():
    assert tied_in(["model.embed_tokens.weight"]) is True
    assert tied_in(["model.embed_tokens.weight", "lm_head.weight"]) is False
    assert tied_in(["thinker.model.embed_tokens.weight", "thinker.lm_head.weight"]) is False
    # a talker's own head is not the language model's output layer
    assert tied_in(["thinker.model.embed_tokens.weight", "talker.lm_head.weight"]) is True
    config = {"tie_word_embeddings": True, "thinker_config": {"text_config": {"hidden_size": 8}},
              "talker_config": {"tie_word_embeddings": True}}
    set_tie_flags(config, False)
    assert tie_flags(config) == {"(root)": False, "thinker_config.": False, "thinker_config.text_config.": False}
    assert config["talker_config"]["tie_word_embeddings"] is True  # the talker's is its own model's


def test_the_old_tiny_config_is_caught_and_fixed(tiny_dir, tmp_path):
    """The config init-tiny wrote before issue 29, checked as vLLM reads it."""
    import shutil

    old = tmp_path / "old"
    shutil.copytree(tiny_dir, old)
    config = json.loads((old / "config.json").read_text())
    config["text_config"]["tie_word_embeddings"] = True
    (old / "config.json").write_text(json.dumps(config))
    assert tie_problems(old) == ["text_config.tie_word_embeddings is True, but the weights are untied "
                                 "(an lm_head tensor of its own)"]
    del config["text_config"]["tie_word_embeddings"]
    (old / "config.json").write_text(json.dumps(config))
    assert tie_problems(old) == ["text_config has no tie_word_embeddings (the weights are untied (an lm_head "
                                "tensor of its own))"]
    assert fix_tie_flags(old) and tie_problems(old) == [] and not fix_tie_flags(old)


@pytest.mark.parametrize("name", [n for n in FAMILIES if n != "composed"])
def test_every_tiny_family_config_agrees_with_its_weights(name, corpus, tmp_path):
    out = init_tiny(tmp_path / name, corpus, TinyConfig(vocab_size=512), FAMILIES[name])
    assert tie_problems(out) == []
    assert any(k.endswith("text_config.") for k in tie_flags(json.loads((out / "config.json").read_text()))), \
        "the block vLLM builds the language model from states the flag"


@pytest.mark.parametrize("lm", ["qwen3", "falcon_h1"])
def test_composed_merged_and_release_configs_agree(lm, tiny_dir, tmp_path):
    composed = compose(tiny_dir, write_causal_lm(tmp_path / "lm", lm), tmp_path / "composed", log=lambda *_: None)
    assert tie_problems(composed) == []
    release = write_release_checkpoint(tiny_dir, tmp_path / "release")
    fix_tie_flags(release)  # the fixture copies the thinker's config as it is
    assert tie_problems(release) == []
    from peft import get_peft_model

    from nabra.model import load
    from nabra.model.config import LoraConfig
    from nabra.model.lora import save_adapter

    adapter = save_adapter(get_peft_model(load(tiny_dir).model, LoraConfig(r=2).peft_config()), tmp_path / "adapter")
    assert tie_problems(merge(load(tiny_dir), adapter, tmp_path / "merged")) == []  # a bundle of its own: PEFT wraps in place
