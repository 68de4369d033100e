"""Every non-default family (composed: Qwen2.5-Omni audio encoder + Falcon-H1) through the recipe: `model.family: F` builds its tiny model, training
lowers the loss, a LoRA run evaluates, its merged export loads with the stock class, and analyze's
cached label scoring equals whole-sequence scoring."""

import json

import pytest
import torch
import yaml

from nabra.cli import main
from nabra.config import load_config
from nabra.evaluate.runner import evaluate, load_for_eval
from nabra.model import load
from nabra.model.families import family
from nabra.train import train


def records_of(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
            if "loss" in json.loads(line) and "event" not in json.loads(line)]


STOCK = {"qwen3_omni": "Qwen3OmniMoeThinkerForConditionalGeneration", "nemotron_h_omni": "NemotronH_Omni_Reasoning_V3",
         "composed": "AutoModelForCausalLM"}
"""The transformers class that loads each family's merged export (a composed model: the Auto class, once
Nabra's classes are registered — a tiny Qwen2.5-Omni audio encoder + a tiny Falcon-H1)."""


def _recipe(folder, name, synth_corpus, fam, **sections):
    cfg = {"output_dir": str(folder / name), "data": {"manifest": str(synth_corpus), "dev_per_task": 2},
           "model": {"path": str(folder / "tiny"), "family": fam, "init_tiny": True, "finetune": "full"},
           "schedule": {"name": "uniform"},
           "train": {"max_steps": 24, "batch_size": 8, "lr": 3e-3, "warmup_steps": 2, "save_every": 0,
                     "eval_every": 0, "seed": 0}}
    for section, values in sections.items():
        cfg[section] = {**cfg.get(section, {}), **values}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True))
    return load_config(path)


LR = {"composed": 2e-2}
"""Full fine-tuning rates that differ from the recipe's 3e-3: the tiny Falcon-H1 carries the release's µP
multipliers (logits x 0.039), and from random weights it learns at a µP-sized rate."""


@pytest.fixture(scope="module", params=list(STOCK))
def full_run(request, tmp_path_factory, synth_corpus):
    folder = tmp_path_factory.mktemp(request.param)
    cfg = _recipe(folder, "full", synth_corpus, request.param, train={"lr": LR.get(request.param, 3e-3)})
    return folder, train(cfg, progress=False, log=lambda *_: None)


def test_the_recipe_builds_the_family_tiny_model_and_learns(full_run):
    folder, run = full_run
    fam = json.loads((folder / "tiny" / "nabra_tiny.json").read_text())["family"]
    assert fam in STOCK and load(run / "final").family.name == family(fam).name
    records = records_of(run)
    first, last = records[0]["loss"], sum(r["loss"] for r in records[-4:]) / 4
    assert last < first - 1.0, (first, last)


def test_a_lora_run_evaluates_and_its_merged_export_loads_with_the_stock_class(full_run, synth_corpus, tmp_path):
    import transformers

    folder, base = full_run
    fam = load(base / "final").family.name
    cfg = _recipe(folder, "lora", synth_corpus, fam, model={"path": str(base / "final"), "init_tiny": False,
                                                      "finetune": "lora", "lora": {"r": 4, "train_aligner": True}},
                  train={"max_steps": 4, "lr": 5e-2})
    run = train(cfg, progress=False, log=lambda *_: None)
    saved = json.loads((run / "final" / "adapter_config.json").read_text())
    assert all(t.startswith(("model.language_model.layers.", "language_model.model.layers.")) for t in saved["target_modules"])
    result = evaluate(run, synth_corpus, split="test", progress=False, log=lambda *_: None)
    assert {"asr", "did", "ser"} <= set(result["metrics"]) and "looped" in result["metrics"]["asr"]
    out = tmp_path / "merged"
    assert main(["export", str(run), "--out", str(out), "--merge", "--dtype", "float32"]) == 0
    stock = getattr(transformers, STOCK[fam]).from_pretrained(out).eval()
    model, bundle = load_for_eval(run, device="cpu")
    text = "<|im_start|>user\nما لهجة هذا الكلام؟<|im_end|>\n<|im_start|>assistant\n"
    ids = torch.tensor([bundle.tokenizer(text)["input_ids"]])
    with torch.no_grad():
        assert (stock(input_ids=ids).logits - model(input_ids=ids).logits).abs().max() < 1e-4
        assert (load(base / "final").model(input_ids=ids).logits - stock(input_ids=ids).logits).abs().max() > 1e-3


def test_analyze_scores_labels_with_its_cache_as_without(full_run, synth_corpus):
    from checks import check_cached_label_scoring

    _, run = full_run
    check_cached_label_scoring(run, synth_corpus, n=4)
