"""ASR by audio length: the metrics split WER/CER into a sentence (< 10 s), past Whisper's 30-s window
and past Qwen2.5-Omni's 300-s one, the report and the demo's headline say it per schedule — the demo's
tiny model transcribes its 2-s clips and loses its 20-s news paragraphs, which one CER hides."""


import pytest

from nabra.evaluate.metrics import Prediction, compute_metrics, duration_bucket
from nabra.evaluate.report import make_report
from nabra.testing import write_eval_run


def asr(uid, ref, hyp, seconds):
    return Prediction(id=f"{uid}#asr", task="asr", prediction=hyp, reference=ref, parsed=hyp, duration=seconds)


def test_buckets_have_exclusive_upper_bounds():
    assert [duration_bucket(s) for s in (0.5, 9.99, 10.0, 29.9, 30.0, 299.0, 300.0, 3600.0)] == [
        "< 10 s", "< 10 s", "10-30 s", "10-30 s", "30-300 s", "30-300 s", ">= 300 s", ">= 300 s"]


def test_asr_metrics_split_by_audio_length():
    preds = [asr("a", "ذهب الولد", "ذهب الولد", 2.0),                      # 0 errors
             asr("b", "كتب الدرس", "كتب", 3.0),                             # 1 word of 2 deleted
             asr("c", "قال الوزير اليوم ان المشروع جديد", "قال", 45.0)]      # 5 of 6 words deleted
    m = compute_metrics(preds)["asr"]
    short, long = m["by_duration"]["< 10 s"], m["by_duration"]["30-300 s"]
    assert list(m["by_duration"]) == ["< 10 s", "30-300 s"]  # buckets present, shortest first
    assert (short["n"], short["seconds"], short["wer"]) == (2, 5.0, pytest.approx(1 / 4))
    assert (long["n"], long["seconds"], long["wer"]) == (1, 45.0, pytest.approx(5 / 6))
    assert m["wer"] == pytest.approx(6 / 10) and long["cer"] > 0.8 > short["cer"]
    # One bucket only (or no durations, e.g. predictions written before durations were kept): no breakdown
    assert "by_duration" not in compute_metrics(preds[:2])["asr"]
    assert "by_duration" not in compute_metrics([asr("d", "ذهب", "ذهب", None), *preds[2:]])["asr"]


def test_old_predictions_without_duration_still_load():
    old = {"id": "u#asr", "task": "asr", "prediction": "x", "reference": "x"}
    assert Prediction.from_dict(old).duration is None
    assert Prediction.from_dict({**old, "duration": 12.5}).duration == 12.5


def test_the_report_gives_cer_by_length_per_schedule(tmp_path):
    runs = [write_eval_run(tmp_path / f"u{seed}", "uniform", seed, {"wer": 0.5, "cer": 0.5, "n": 100, "by_duration": {
        "< 10 s": {"wer": short, "cer": short, "n": 95, "seconds": 200.0},
        "10-30 s": {"wer": long, "cer": long, "n": 5, "seconds": 100.0}}})
        for seed, (short, long) in enumerate(((0.3, 0.9), (0.4, 1.0)))]
    md = (make_report(runs, tmp_path / "r").parent / "report.md").read_text()
    assert "ASR CER by audio length" in md and "uniform: < 10 s 35.0% (95 clips), 10-30 s 95.0% (5 clips)" in md


def test_the_demo_headline_adds_a_table_by_length(tmp_path):
    from rich.console import Console

    from nabra.demo import headline
    from nabra.testing import write_run

    runs = []
    for name, short, long in (("base", 0.36, 0.95), ("ads-seed0", 0.40, 0.90), ("ads-seed1", 0.42, 0.86)):
        schedule, _, seed = name.partition("-seed")  # as the demo writes them: the schedule in config.yaml
        asr_m = {"wer": 0.7, "cer": 0.6, "by_duration": {"< 10 s": {"cer": short, "n": 95},
                                                        "10-30 s": {"cer": long, "n": 5}}}
        runs.append(write_run(tmp_path / name, schedule, int(seed or 0), test={"metrics": {"asr": asr_m}, "composite": 0.5}))
    console = Console(record=True, width=120)
    headline(runs, console)
    text = console.export_text()
    table = text[text.index("ASR CER by audio length"):]
    cells = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:4]]
             for line in table.splitlines() if line.startswith("│")}
    assert cells["base"] == ["0.360", "0.950"]
    assert cells["ads"] == ["0.410", "0.880"]  # the mean over its two seeds
