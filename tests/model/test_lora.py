import re

import pytest
import torch

from nabra.corpus.audio import load_audio
from nabra.corpus.manifest import read_manifest
from nabra.errors import NabraError
from nabra.model import load
from nabra.model.collate import Collator
from nabra.model.config import LoraConfig
from nabra.model.lora import (
    apply_lora,
    load_adapter,
    merge,
    save_adapter,
    trainable_parameter_names,
)
from nabra.tasks import iter_examples

LM_LORA = re.compile(
    r"base_model\.model\.model\.language_model\.layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)"
    r"\.lora_[AB]\.default\.weight"
)


def _inputs(bundle, corpus):
    examples = list(iter_examples(read_manifest(corpus)))[:5]
    batch = Collator(bundle.tokenizer, bundle.feature_extractor)([(e, load_audio(e.audio) if e.audio else None) for e in examples])
    return {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}


def _randomize_lora(model):
    # A fresh adapter is a no-op (lora_B = 0): give it weights so the round trips prove something.
    torch.manual_seed(1)
    with torch.no_grad():
        for _name, p in model.named_parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))


def test_lora_touches_only_the_language_model(tiny_dir):
    model = apply_lora(load(tiny_dir).model, LoraConfig(r=4))
    names = trainable_parameter_names(model)
    layers = load(tiny_dir).model.config.text_config.num_hidden_layers
    assert len(names) == layers * 7 * 2  # 7 projections x (A, B) per decoder layer
    assert all(LM_LORA.fullmatch(n) for n in names), [n for n in names if not LM_LORA.fullmatch(n)]
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert any("audio_tower.layers.0.self_attn.q_proj" in n for n in frozen)
    assert not any("lora" in n for n in frozen if "audio_tower" in n or "visual" in n)
    assert not any("audio_tower" in n or "visual" in n for n, _ in model.named_modules() if n.endswith("lora_A"))


def test_aligner_and_audio_encoder_options(tiny_dir):
    names = trainable_parameter_names(apply_lora(load(tiny_dir).model, LoraConfig(train_aligner=True)))
    extra = sorted(n for n in names if not LM_LORA.fullmatch(n))
    assert extra and all(".audio_tower.proj." in n or ".audio_tower.ln_post." in n for n in extra)
    names = trainable_parameter_names(apply_lora(load(tiny_dir).model, LoraConfig(train_audio_encoder=True)))
    assert any(re.search(r"\.audio_tower\..*layers\.0\.", n) for n in names)
    assert not any("visual" in n for n in names)


def test_bad_settings_are_clear_errors():
    with pytest.raises(NabraError, match="unknown LoRA targets"):
        LoraConfig(targets=("qkv",))
    with pytest.raises(NabraError, match="r > 0"):
        LoraConfig(r=0)


def _saved_random_adapter(base, model, corpus, out):
    """``model``'s adapter given random weights and saved to ``out``; the inputs and its logits on them."""
    _randomize_lora(model)
    model.eval()
    inputs = _inputs(base, corpus)
    with torch.no_grad():
        expected = model(**inputs).logits
    return save_adapter(model, out), inputs, expected


def test_adapter_save_load_merge_round_trip(tiny_dir, corpus, tmp_path):
    base = load(tiny_dir)
    model = apply_lora(base.model, LoraConfig(r=4, train_aligner=True))
    adapter, inputs, expected = _saved_random_adapter(base, model, corpus, tmp_path / "adapter")
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()

    reloaded = load_adapter(load(tiny_dir).model, adapter).eval()
    with torch.no_grad():
        assert torch.allclose(reloaded(**inputs).logits, expected, atol=1e-5)

    merged_dir = merge(load(tiny_dir), adapter, tmp_path / "merged")
    merged = load(merged_dir)
    assert merged.layout == "thinker"
    with torch.no_grad():
        got = merged.model(**inputs).logits
        untouched = load(tiny_dir).model(**inputs).logits
    assert (got - expected).abs().max() < 1e-4
    assert (untouched - expected).abs().max() > 1e-3  # the adapter really changed the model
    with pytest.raises(NabraError, match="pass --force"):  # an earlier merge is replaced only when forced
        merge(load(tiny_dir), adapter, merged_dir)
    with pytest.raises(NabraError, match="is inside the adapter"):
        merge(load(tiny_dir), adapter, adapter / "merged", force=True)
    assert merge(load(tiny_dir), adapter, merged_dir, force=True) == merged_dir


def test_not_an_adapter_folder(tiny_dir, tmp_path):
    with pytest.raises(NabraError, match="not a PEFT adapter folder"):
        load_adapter(load(tiny_dir).model, tmp_path)


def _label_ids(bundle):
    from nabra.corpus.labels import label_sets
    from nabra.model.lora import label_token_ids

    return label_token_ids(bundle.tokenizer, label_sets(None, None))


def test_label_token_ids_spell_the_label_names(tiny_dir):
    from nabra.corpus.labels import label_sets

    bundle = load(tiny_dir)
    ids = _label_ids(bundle)
    dialects, emotions = label_sets(None, None)
    spelled = {bundle.tokenizer.decode([i]) for i in ids}
    for name in (*dialects.names, *emotions.names):
        pieces = bundle.tokenizer(name, add_special_tokens=False)["input_ids"]
        assert set(pieces) <= set(ids) and "".join(bundle.tokenizer.decode([p]) for p in pieces) == name
    assert len(ids) == len(set(ids)) and spelled


def test_label_tokens_train_only_their_output_rows_and_survive_save_load_merge(tiny_dir, corpus, tmp_path):
    base = load(tiny_dir)
    ids = _label_ids(base)
    with pytest.raises(NabraError, match="no label token ids"):
        apply_lora(load(tiny_dir).model, LoraConfig(r=4, train_label_tokens=True))
    model = apply_lora(base.model, LoraConfig(r=4, train_label_tokens=True), label_token_ids=ids)
    extra = [n for n in trainable_parameter_names(model) if not LM_LORA.fullmatch(n)]
    assert len(extra) == 1 and "lm_head" in extra[0] and "trainable_tokens" in extra[0], extra
    adapter, inputs, expected = _saved_random_adapter(base, model, corpus, tmp_path / "adapter")
    with torch.no_grad():
        assert torch.allclose(load_adapter(load(tiny_dir).model, adapter).eval()(**inputs).logits, expected, atol=1e-5)
    merged = load(merge(load(tiny_dir), adapter, tmp_path / "merged")).model
    with torch.no_grad():
        assert (merged(**inputs).logits - expected).abs().max() < 1e-4
    changed = (merged.lm_head.weight - load(tiny_dir).model.lm_head.weight).abs().sum(-1).nonzero().flatten()
    assert changed.tolist() == ids  # exactly the label tokens' output rows, no other
