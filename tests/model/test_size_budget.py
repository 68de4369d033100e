"""`nabra model size --gpu-memory`: the token budget from the stated memory model, on Qwen2.5-Omni-7B's
published sizes (its config.json's text, audio and vision widths; built on the meta device)."""

import pytest

from nabra.cli import main
from nabra.errors import NabraError
from nabra.model.size import lm_shape, model_size, parse_gib, token_budget


@pytest.fixture(scope="module")
def omni7b(tmp_path_factory):
    from transformers import Qwen2_5OmniThinkerConfig

    config = Qwen2_5OmniThinkerConfig(
        text_config={"hidden_size": 3584, "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4,
                     "intermediate_size": 18944, "vocab_size": 152064},
        audio_config={"d_model": 1280, "encoder_layers": 32, "encoder_attention_heads": 20, "encoder_ffn_dim": 5120,
                      "output_dim": 3584},
        vision_config={"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
                       "out_hidden_size": 3584})
    folder = tmp_path_factory.mktemp("omni7b")
    config.save_pretrained(folder)
    return folder


def test_the_7b_budget_follows_the_memory_model(omni7b):
    size = model_size(omni7b)
    assert size["shape"] == {"hidden": 3584, "kv": 512, "mlp": 18944, "layers": 28, "vocab": 152064}
    ckpt = token_budget(size, size["shape"], 80)
    plain = token_budget(size, size["shape"], 80, gradient_checkpointing=False)
    # Per token: 2·(13h + 2k + 5i) bytes a layer; checkpointing keeps 2h a layer + one layer's recompute.
    layer = 2 * (13 * 3584 + 2 * 512 + 5 * 18944)
    assert plain["activations_per_token"] == 28 * layer and ckpt["activations_per_token"] == 2 * 3584 * 28 + layer
    assert ckpt["budget"] > 4 * 7_800 > plain["budget"]  # a 300-s clip needs checkpointing on 80 GB
    assert token_budget(size, size["shape"], 141)["budget"] > ckpt["budget"]
    assert token_budget(size, size["shape"], 16)["budget"] == 0  # the weights alone take 16.6 GiB
    free = 80 * 2**30 - ckpt["weights"] - ckpt["lora_state"] - ckpt["reserve"]
    assert ckpt["budget"] <= free / ckpt["per_token"] < ckpt["budget"] + 256


def test_the_cli_prints_the_budget_and_its_assumptions(omni7b, capsys):
    assert main(["model", "size", str(omni7b), "--gpu-memory", "80GiB"]) == 0
    out = capsys.readouterr().out
    assert "train.micro_batch_tokens ≈" in out and "with gradient checkpointing" in out
    assert "NOT ONE" in out  # without checkpointing not one full window fits
    assert "an estimate" in out


def test_moe_layers_count_their_active_experts():
    from transformers import Qwen3OmniMoeThinkerConfig

    shape = lm_shape(Qwen3OmniMoeThinkerConfig(text_config={"hidden_size": 2048, "num_hidden_layers": 48,
                                                             "moe_intermediate_size": 768, "num_experts_per_tok": 8,
                                                             "num_attention_heads": 32, "num_key_value_heads": 4,
                                                             "head_dim": 128, "vocab_size": 151936}))
    assert shape["mlp"] == 8 * 768 and shape["kv"] == 512


def test_gpu_memory_is_parsed():
    assert parse_gib("80GiB") == parse_gib("80 GB") == parse_gib("80") == 80.0
    with pytest.raises(NabraError, match="e.g. 80GiB"):
        parse_gib("lots")
