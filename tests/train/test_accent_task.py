"""A declared accent task end to end: an L2-ARCTIC tree in its own layout, imported and merged with
the Arabic corpus, trains the tiny model beside the built-in tasks under ADS, and comes out of
evaluation with macro-F1 and a confusion matrix, in the report, and with probabilities in analyze."""

import json

import pytest

from nabra.cli import main
from nabra.config import load_config
from nabra.evaluate.report import make_report
from nabra.evaluate.runner import evaluate
from nabra.testing import write_clip
from nabra.train import train
from nabra.use.analyze import analyze

SPEAKERS = {"train": ("ABA", "BWC", "ASI", "ZHAA", "NCC", "TNI"), "dev": ("YBAA", "TXHC", "RRBI"),
            "test": ("SKA", "LXC", "SVBI")}  # two Arabic, Mandarin and Hindi L1 speakers in each split but dev
TASKS = {
    "aid": {"field": "l1", "description": "the speaker's native language", "description_ar": "اللغة الأم للمتحدث",
            "labels": {"Arabic": ["عربي"], "Mandarin": ["Chinese", "صيني"], "Hindi": ["هندي"]}},
    "gid": {"field": "gender", "description": "the speaker's gender", "labels": {"female": ["F"], "male": ["M"]}},
}


@pytest.fixture
def bilingual(tmp_path, synth_corpus):
    root = tmp_path / "l2arctic_release_v5.0"
    for spk in (s for group in SPEAKERS.values() for s in group):
        for n, text in ((1, "Author of the danger trail."), (2, "Not at this particular case, Tom.")):
            write_clip(root / spk / "wav" / f"arctic_a000{n}.wav", 0.6, sample_rate=44100, freq=150 + 10 * n)
            (root / spk / "transcript").mkdir(parents=True, exist_ok=True)
            (root / spk / "transcript" / f"arctic_a000{n}.txt").write_text(text + "\n")
    split = ";".join(f"{k}={','.join(v)}" for k, v in SPEAKERS.items() if k != "train")
    assert main(["data", "import", "l2arctic", str(root), "--out", str(tmp_path / "l2.jsonl"),
                 "--speaker-split", split, "--quiet"]) == 0
    merged = tmp_path / "bilingual.jsonl"
    assert main(["data", "merge", str(synth_corpus), str(tmp_path / "l2.jsonl"), "--out", str(merged)]) == 0
    return merged, root


@pytest.mark.slow
def test_a_declared_accent_task_trains_is_scored_reported_and_analyzed(make_config, bilingual, tmp_path):
    manifest, root = bilingual
    path = make_config("aid", data={"manifest": str(manifest)}, schedule={"name": "ads"}, tasks=TASKS,
                       train={"max_steps": 4, "batch_size": 14, "eval_every": 2, "save_every": 2})
    cfg = load_config(path)
    assert cfg.data.tasks == ["asr", "ssum", "tsum", "did", "ser", "aid", "gid"]
    assert main(["data", "validate", str(manifest), "--config", str(path)]) == 0
    # The declared tasks go to ms-swift too: one chat row per (utterance, task), the label as the answer.
    swift = tmp_path / "swift.jsonl"
    assert main(["data", "export", "swift", str(manifest), "--out", str(swift), "--split", "test", "--config", str(path),
                 "--prompt-language", "en"]) == 0
    rows = [json.loads(line) for line in swift.read_text().splitlines()]
    aid = [r for r in rows if r["messages"][0]["content"].startswith("<audio>What is the speaker's native language")]
    assert len(aid) == 6 and {r["messages"][1]["content"] for r in aid} == {"Arabic", "Mandarin", "Hindi"}
    assert all(r["audios"][0].endswith(".wav") and "Arabic, Mandarin, Hindi" in r["messages"][0]["content"] for r in aid)
    assert sum("gender" in r["messages"][0]["content"] for r in rows) == 6
    run = train(cfg, progress=False, log=lambda *_: None)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "task_loss" in r]
    # ADS shares every batch equally by task: 14 slots, 7 tasks, two accent slots a step.
    assert all({"aid", "gid"} <= set(r["task_loss"]) for r in steps) and len(steps) == 4
    dev = [r for r in records if r.get("event") == "dev"]
    assert {"aid", "gid"} <= set(dev[-1]["dev_loss"])
    scored = [r for r in records if r.get("event") == "dev_eval"]
    assert "macro_f1" in scored[-1]["metrics"]["aid"]

    result = evaluate(run, manifest, batch_size=8, max_new_tokens=4, progress=False, log=lambda *_: None)
    aid = result["metrics"]["aid"]
    assert aid["n"] == 6 and aid["confusion"]["labels"] == ["Arabic", "Mandarin", "Hindi"]
    assert aid["confusion"]["columns"][-1] == "unparsed" and sum(map(sum, aid["confusion"]["matrix"])) == 6
    assert result["metrics"]["gid"]["confusion"]["labels"] == ["female", "male"]
    assert 0.0 <= aid["macro_f1"] <= 1.0 and "asr" in result["metrics"] and "did" in result["metrics"]

    out = make_report([run], tmp_path / "report").parent
    md = (out / "report.md").read_text()
    assert "| aid | macro-F1 |" in md and "| gid | accuracy |" in md
    assert (out / "confusion-aid.png").is_file() and (out / "confusion-gid.png").is_file()

    results, skipped = analyze([root / "SKA" / "wav" / "arctic_a0001.wav"], run, progress=False)
    probs = results[0]["aid"]["probabilities"]
    assert not skipped and set(probs) == {"Arabic", "Mandarin", "Hindi"} and sum(probs.values()) == pytest.approx(1.0)
    assert results[0]["aid"]["label"] in probs and set(results[0]["gid"]["probabilities"]) == {"female", "male"}
