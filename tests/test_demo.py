import json

import pytest
import yaml
from safetensors.torch import load_file

from nabra.demo import run_demo
from nabra.schedule import SCHEDULE_NAMES as SCHEDULES


@pytest.mark.slow
def test_demo_end_to_end_in_small(tmp_path, capsys):
    # The quick demo, reduced: tiny corpora, a few steps of base pre-training and of each schedule.
    plan = {"utterances": 80, "steps": 4, "long_fraction": 0.0, "base_utterances": 60, "base_steps": 4,
            "base_summary_pairs": 20, "split_shares": {"train": 0.7, "dev": 0.1, "test": 0.2},
            "min_summaries": {"test": 3}}
    assert run_demo(tmp_path, quick=True, plan=plan, jobs=2) == 0
    runs = tmp_path / "runs"
    # the test split's news paragraphs topped up to min_summaries, and every run scored its summaries on them
    assert json.loads((runs / "ads-seed0" / "eval-test" / "metrics.json").read_text())["metrics"]["ssum"]["n"] == 3
    base = runs / "base-pretrain" / "final"
    assert json.loads((base / "config.json").read_text())["text_config"]["vocab_size"] == 3000  # news words whole
    # The base learnt ASR, SER and text summaries (not DID), from its own corpus, none of whose sentences the
    # fine-tuning corpus has; a step is laid in one packed row, the base's and the runs'.
    base_cfg = yaml.safe_load((runs / "base-pretrain" / "config.yaml").read_text())
    assert base_cfg["data"]["tasks"] == ["asr", "ser", "tsum"] and base_cfg["schedule"]["uniform"]["weights"] == {"asr": 3, "ser": 1, "tsum": 1}
    assert base_cfg["collate"]["packing"] and base_cfg["train"]["micro_batch_size"] == 16
    assert yaml.safe_load((runs / "ads-seed0" / "config.yaml").read_text())["collate"]["packing"]
    tune = {json.loads(x)["transcript"] for x in (tmp_path / "corpus" / "manifest.jsonl").read_text().splitlines()}
    pre = {json.loads(x)["transcript"] for x in (tmp_path / "base-corpus" / "manifest.jsonl").read_text().splitlines()}
    assert pre and not pre & tune
    for schedule in SCHEDULES:
        run = runs / f"{schedule}-seed0"
        metrics = json.loads((run / "eval-test" / "metrics.json").read_text())
        assert {"asr", "did", "ser"} <= set(metrics["metrics"]) and metrics["composite"] is not None
        assert json.loads((run / "final" / "nabra_run.json").read_text())["base_model"] == str(base)  # from the base
        assert (run / "final" / "adapter_model.safetensors").is_file()  # with LoRA
    assert set(json.loads((runs / "base" / "eval-test" / "metrics.json").read_text())["metrics"]) == {"asr", "ser", "tsum"}
    # The label words' output rows were trained with the adapters (the base never wrote a dialect name).
    assert any("trainable_tokens" in k for k in load_file(str(runs / "uniform-seed0" / "final" / "adapter_model.safetensors")))
    report = (tmp_path / "report" / "report.md").read_text()
    assert all(s in report for s in (*SCHEDULES, "base")) and "## Summary" in report
    assert "## The paper's claims on these runs" in report and "pretrained base" in report
    assert (tmp_path / "report" / "report.html").stat().st_size > 10_000  # images embedded
    out = capsys.readouterr().out
    assert "test split" in out and "adaptive" in out and "report.html" in out
    # The test split was also heard in babble at 10 dB, by the base and every run: the report's robustness section.
    for run in [runs / "base", *(runs / f"{s}-seed0" for s in SCHEDULES)]:
        noisy = json.loads((run / "eval-test" / "noise-snr_10-babble" / "metrics.json").read_text())
        assert noisy["condition"]["name"] == "noise:snr=10,source=babble" and "ser" in noisy["metrics"]
    assert "## Robustness" in report and (tmp_path / "report" / "robustness-ser-macro_f1.png").is_file()
    # A second run reuses everything that is finished.
    assert run_demo(tmp_path, quick=True, plan=plan, jobs=2) == 0
    out = capsys.readouterr().out
    assert "fine-tune the base" not in out and "pre-train the base" not in out
    # Another condition only adds its evaluations: nothing is trained again, and the plan is the same plan.
    adapter = runs / "ads-seed0" / "final" / "adapter_model.safetensors"
    before = adapter.stat().st_mtime_ns
    assert run_demo(tmp_path, quick=True, plan={**plan, "conditions": ["noise:snr=10,source=babble", "reverb"]},
                    jobs=2) == 0
    out = capsys.readouterr().out
    assert "evaluate 6 finished run(s)" in out and "fine-tune the base" not in out
    assert adapter.stat().st_mtime_ns == before and (runs / "ads-seed0" / "eval-test" / "reverb-rt60_0.6").is_dir()
    assert (runs / "base" / "eval-test" / "reverb-rt60_0.6" / "metrics.json").is_file()


def test_a_demo_folder_of_another_plan_is_refused_untouched(tmp_path):
    # --quick after the full demo (or another family) in one folder would mix corpora, bases and runs.
    from nabra.demo import check_plan, demo_plan
    from nabra.errors import NabraError

    quick, full = demo_plan(quick=True), demo_plan()
    check_plan(tmp_path, {**quick, "seeds": 1}, "qwen2_5_omni")
    before = (tmp_path / "demo-plan.json").read_bytes()
    check_plan(tmp_path, {**quick, "seeds": 3}, "qwen2_5_omni")  # more seeds add runs: the same demo
    with pytest.raises(NabraError, match=rf"another plan \(base_steps {quick['base_steps']} there, {full['base_steps']} now"
                                         rf".*steps {quick['steps']} there, {full['steps']} now.*Give --out another folder"):
        run_demo(tmp_path, quick=False)
    with pytest.raises(NabraError, match="family 'qwen2_5_omni' there, 'qwen3_omni' now"):
        check_plan(tmp_path, {**quick, "seeds": 1}, "qwen3_omni")
    assert (tmp_path / "demo-plan.json").read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["demo-plan.json"]
    # --balanced is another plan too (its corpus has no skew), and its default folder is its own
    with pytest.raises(NabraError, match="dialect_fraction 0.21 there, None now"):
        run_demo(tmp_path, quick=True, balanced=True)


def test_the_default_demo_is_the_skewed_corpus_and_balanced_the_earlier_one():
    from nabra.demo import FULL, SHAPE, demo_plan

    full, quick, balanced = demo_plan(), demo_plan(quick=True), demo_plan(balanced=True)
    assert full["dialect_shares"] == quick["dialect_shares"] == SHAPE["dialect_shares"] and full["packing"]
    assert quick["steps"] < full["steps"] and quick["base_steps"] < full["base_steps"] and quick["seeds"] == 1
    assert balanced == FULL and "dialect_shares" not in balanced and balanced["vocab_size"] == 400
    assert demo_plan(plan={"steps": 3})["steps"] == 3


def test_the_shaped_demo_synthesizes_the_skewed_corpus(tmp_path, monkeypatch):
    from nabra import demo

    seen = []
    monkeypatch.setattr(demo, "synthesize", lambda out, config: seen.append(config) or 1 / 0)
    with pytest.raises(ZeroDivisionError):
        demo.ensure_corpus(tmp_path / "c", demo.demo_plan(quick=True), demo.Console())
    with pytest.raises(ZeroDivisionError):
        demo.ensure_corpus(tmp_path / "b", demo.demo_plan(quick=True), demo.Console(), shaped=False)  # the base's
    shaped, base = seen
    assert shaped.dialect_shares == demo.SHAPE["dialect_shares"] and shaped.emotion_fraction == 0.065
    assert shaped.balanced_splits == ("test",) and base.dialect_shares is None and base.emotion_fraction == 1.0
    assert shaped.min_summaries == base.min_summaries == {}  # the quick check keeps its split's few paragraphs
    assert demo.demo_plan()["min_summaries"] == {"test": 40}  # the full demo scores summaries on 40
    assert "min_summaries" not in demo.demo_plan(quick=True)  # so a quick folder made before keeps its plan


def test_the_shaped_base_learns_text_summaries_from_pairs_added_once(tmp_path):
    from nabra.corpus.manifest import Utterance, read_manifest, write_manifest
    from nabra.demo import SHAPE, add_summary_pairs

    manifest = tmp_path / "manifest.jsonl"
    write_manifest(manifest, [Utterance(id="a", audio="a.wav", transcript="دلوقتي عايز", emotion="sad", split="train")])
    assert add_summary_pairs(manifest, 20) == 20 and add_summary_pairs(manifest, 20) == 20  # once
    utts = read_manifest(manifest)
    pairs = [u for u in utts if u.id.startswith("text-")]
    assert len(utts) == 21 and len(pairs) == 20 and all(u.audio is None and u.summary for u in pairs)
    assert {u.split for u in pairs} == {"train", "dev", "test"}
    assert SHAPE["base_summary_pairs"] == 400 and SHAPE["whole_news_words"] and SHAPE["vocab_size"] == 3000


@pytest.mark.slow
def test_the_quick_demo_learns_every_task_on_the_skewed_corpus(tmp_path, capsys):
    # Issue 33: `nabra demo --quick` as a user runs it (its plan unchanged, about 5 min on 2 cores) ends with a
    # row for every task, each learned by its best schedule, and the schedule comparison stated first.
    assert run_demo(tmp_path, quick=True, jobs=2) == 0
    report = (tmp_path / "report" / "report.md").read_text()
    summary = report.split("## Summary", 1)[1].split("\n## ", 1)[0]
    for label in ("ASR (WER", "SSUM (ROUGE-L)", "TSUM (ROUGE-L)", "DID (macro-F1)", "SER (macro-F1)"):
        line = next(x for x in summary.splitlines() if x.startswith(f"- {label}"))
        assert "not learned** by any schedule" not in line, line
        assert "wins with" in line or " tie at " in line or "only " in line, line
    # the comparison leads: its ingredients' verdicts before the summary, rare labels named
    assert report.index("## What the schedules change") < report.index("## Summary")
    assert "DID rare-label F1" in report and "SER rare-label F1" in report
    out = capsys.readouterr().out
    flat = "".join(out.split())  # the console wraps its lines at its width
    assert "rarelabels" in flat and "DIDLAV" in flat and "report.html" in flat


@pytest.mark.slow
def test_a_family_that_cannot_pack_runs_the_skewed_demo_unpacked(tmp_path):
    # Nemotron-3-Nano-Omni's Mamba-2 layers refuse packed rows: its demo keeps the recipes' padded micro-batches.
    plan = {"utterances": 60, "steps": 2, "long_fraction": 0.0, "base_utterances": 40, "base_steps": 2,
            "base_summary_pairs": 10, "split_shares": {"train": 0.7, "dev": 0.1, "test": 0.2}}
    assert run_demo(tmp_path, quick=True, plan=plan, jobs=2, family="nemotron_h_omni") == 0
    for run in ("base-pretrain", "uniform-seed0"):
        cfg = yaml.safe_load((tmp_path / "runs" / run / "config.yaml").read_text())
        assert not cfg["collate"]["packing"] and cfg["train"]["micro_batch_size"] == 4
    assert (tmp_path / "report" / "report.md").is_file()
