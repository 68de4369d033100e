"""`nabra export`: what it writes loads with the stock classes and answers as the run does."""

import json

import pytest
import torch

from nabra.cli import main
from nabra.evaluate.runner import load_for_eval
from nabra.model import load
from nabra.model.ties import tie_problems
from nabra.testing import write_release_checkpoint


def greedy(model, bundle, ids):
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=6, do_sample=False,
                             eos_token_id=None, pad_token_id=bundle.tokenizer.pad_token_id)
    return out[0, ids.shape[1]:].tolist()


def prompt(bundle):
    text = "<|im_start|>user\nما لهجة هذا الكلام؟<|im_end|>\n<|im_start|>assistant\n"
    return torch.tensor([bundle.tokenizer(text)["input_ids"]])


def test_adapter_export_loads_with_peft_on_the_stock_thinker(lora_run, tiny, tmp_path):
    from peft import PeftModel
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration

    out = tmp_path / "adapter"
    assert main(["export", str(lora_run), "--out", str(out)]) == 0
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md"} <= {p.name for p in out.iterdir()}
    card = (out / "README.md").read_text()
    assert "library_name: peft" in card and "schedule: **uniform**" in card and "Intended use and limits" in card
    assert "utterances" in card  # the data summary
    # The export carries its run's config: moved elsewhere, it still knows its tasks, labels and settings.
    from nabra.run.folder import config_of

    moved = tmp_path / "elsewhere"
    out.rename(moved)
    assert config_of(moved) == config_of(lora_run) and config_of(moved).model.lora.r == 4  # not the defaults' 16
    moved.rename(out)
    model, bundle = load_for_eval(lora_run, device="cpu")
    stock = PeftModel.from_pretrained(Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(tiny), out).eval()
    ids = prompt(bundle)
    assert greedy(stock, bundle, ids) == greedy(model, bundle, ids)


def test_merged_export_of_a_thinker_only_base_is_the_release_layout(lora_run, tmp_path):
    """Issue 29 #2: a thinker-only config is in no serving engine's registry; the merge writes the release
    layout (without a talker) whatever the base, which transformers' full class loads."""
    from transformers import Qwen2_5OmniForConditionalGeneration

    out = tmp_path / "merged"
    assert main(["export", str(lora_run), "--out", str(out), "--merge", "--dtype", "float32"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "qwen2_5_omni" and config["architectures"] == ["Qwen2_5OmniForConditionalGeneration"]
    assert config["enable_audio_output"] is False
    assert tie_problems(out) == []
    index = json.loads((out / "model.safetensors.index.json").read_text())["weight_map"]
    assert all(k.startswith("thinker.") for k in index) and "thinker.lm_head.weight" in index
    shards = sorted(p.name for p in out.glob("*.safetensors"))
    assert shards == sorted(set(index.values())) and all(n.endswith(f"-of-{len(shards):05d}.safetensors") for n in shards)
    preprocessor = json.loads((out / "preprocessor_config.json").read_text())
    assert preprocessor["processor_class"] == "Qwen2_5OmniProcessor" and preprocessor["chunk_length"] == 300
    stock = Qwen2_5OmniForConditionalGeneration.from_pretrained(out).eval()
    assert not stock.has_talker
    model, bundle = load_for_eval(lora_run, device="cpu")
    ids = prompt(bundle)
    assert greedy(stock.thinker, bundle, ids) == greedy(model, bundle, ids)
    assert greedy(load(bundle.path).model, bundle, ids) != greedy(
        stock.thinker, bundle, ids)  # the run did change the model: the comparison above can fail
    assert load(out).layout == "release"
    assert main(["export", str(lora_run), "--out", str(tmp_path / "bf16"), "--merge"]) == 0  # bfloat16 by default
    assert load(tmp_path / "bf16", dtype="auto").model.dtype == torch.bfloat16
    assert {p.stat().st_mode & 0o777 for p in (tmp_path / "bf16").iterdir()} == {0o644}


def test_a_release_base_exports_the_release_layout(lora_run, tiny, tmp_path):
    from transformers import Qwen2_5OmniForConditionalGeneration

    release = write_release_checkpoint(tiny, tmp_path / "release")
    out = tmp_path / "merged-release"
    assert main(["export", str(lora_run), "--out", str(out), "--merge", "--dtype", "float32",
                 "--base", str(release)]) == 0
    index = json.loads((out / "model.safetensors.index.json").read_text())["weight_map"]
    base_index = json.loads((release / "model.safetensors.index.json").read_text())["weight_map"]
    assert set(index) == set(base_index)  # the same tensors: thinker merged, talker and token2wav as they were
    assert (out / "spk_dict.pt").is_file()
    stock = Qwen2_5OmniForConditionalGeneration.from_pretrained(out).eval()
    assert stock.has_talker and "Chelsie" in stock.speaker_map
    base_stock = Qwen2_5OmniForConditionalGeneration.from_pretrained(release)
    assert all(torch.equal(v, base_stock.talker.state_dict()[k]) for k, v in stock.talker.state_dict().items())
    model, bundle = load_for_eval(lora_run, device="cpu")
    ids = prompt(bundle)
    assert greedy(stock.thinker, bundle, ids) == greedy(model, bundle, ids)
    assert load(out).layout == "release"  # and Nabra reads it back too
    assert tie_problems(out) == []  # the release's own config corrected to its weights
    shards = sorted(p.name for p in out.glob("*.safetensors"))
    assert len(shards) == len(set(index.values())) and all(f"-of-{len(shards):05d}." in n for n in shards)


def test_export_refuses_what_it_cannot_do(lora_run, tmp_path, capsys):
    assert main(["export", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert main(["export", str(lora_run), "--out", str(lora_run / "final")]) == 2
    assert "a folder of its own" in capsys.readouterr().err


def _tree(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_export_never_removes_what_it_did_not_write(lora_run, tiny, tmp_path, monkeypatch, capsys):
    """Issue 28 #1: `--out` the folder holding the run removed both runs in it; `--out` a folder with a
    user's thesis.txt removed it. Now: absent, empty, or an earlier export (with --force) only."""
    runs = lora_run.parent
    before = _tree(runs)
    for out, says in ((runs, "holds the run"), (lora_run / "exports", "is inside the run"),
                      (tiny, "is its base model"), (tiny / "sub", "is inside its base model")):
        assert main(["export", str(lora_run), "--out", str(out)]) == 2, out
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err, err
    assert _tree(runs) == before and not (tiny / "sub").exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("three years of work")
    assert main(["export", str(lora_run), "--out", str(mine)]) == 2
    assert "holds thesis.txt, and is not an earlier export of Nabra's" in capsys.readouterr().err
    assert (mine / "thesis.txt").read_text() == "three years of work"
    (tmp_path / "a-file").write_text("x")
    assert main(["export", str(lora_run), "--out", str(tmp_path / "a-file")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    monkeypatch.chdir(mine)
    assert main(["export", str(lora_run), "--out", "."]) == 2  # `--out .` in a folder of one's own files
    assert "holds thesis.txt" in capsys.readouterr().err
    out = tmp_path / "export"
    assert main(["export", str(lora_run), "--out", str(out)]) == 0
    assert main(["export", str(lora_run), "--out", str(out)]) == 2
    assert "holds an earlier export (its nabra_export.json): pass --force" in capsys.readouterr().err
    (out / "stale.bin").write_text("from an earlier export")
    assert main(["export", str(lora_run), "--out", str(out), "--force"]) == 0
    assert not (out / "stale.bin").exists() and (out / "adapter_model.safetensors").is_file()
    assert not list(tmp_path.glob(".tmp.*")) and not list(tmp_path.glob(".old.*"))


@pytest.mark.skipif(not __import__("os").path.isdir("/sys/kernel"), reason="no sysfs to stand for a read-only folder")
def test_export_into_a_read_only_folder_is_one_line(lora_run, capsys):
    assert main(["export", str(lora_run), "--out", "/sys/nabra-export"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nabra: error: /sys/") and err.count("\n") == 1 and "Traceback" not in err
