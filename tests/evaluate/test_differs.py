"""The report opens with what the schedules change on a skewed corpus: rare-label F1 per label and per run,
each ingredient (balance, diversity, ...) as a difference beyond or within the seed spread, and the seeds
a 3-point difference needs."""

import pytest

from nabra.evaluate.report import make_report
from nabra.evaluate.report.differs import rare_labels, seeds_needed
from nabra.testing import write_run

DID = ("EGY", "GLF", "LAV", "NOR", "MSA")
# The training shape of a skewed dialect set: EGY four times MSA (train-data.json as training writes it).
SHAPE = {"examples": {"asr": 900, "did": 300}, "labels": {"did": {"EGY": 120, "GLF": 80, "LAV": 50, "NOR": 30, "MSA": 20}}}


def did_metrics(f1: dict[str, float]) -> dict:
    per_class = {label: {"precision": v, "recall": v, "f1": v, "support": 20} for label, v in f1.items()}
    return {"did": {"accuracy": 0.5, "macro_f1": sum(f1.values()) / len(f1), "unparsed_rate": 0.0, "n": 100,
                    "per_class": per_class},
            "asr": {"wer": 0.3, "cer": 0.2}}


def skewed_run(folder, schedule, seed, rare_f1):
    f1 = {"EGY": 0.9, "GLF": 0.8, "LAV": rare_f1, "NOR": rare_f1 - 0.05, "MSA": rare_f1 - 0.1}
    return write_run(folder, schedule, seed, records=[{"step": 1, "loss": 1.0, "task_loss": {"did": 1.0}}],
                     test={"metrics": did_metrics(f1), "composite": 0.5}, train_data=SHAPE)


def test_balanced_beating_uniform_on_the_rare_labels_is_the_reports_first_line(tmp_path):
    runs = [skewed_run(tmp_path / f"u{s}", "uniform", s, 0.30 + 0.02 * s) for s in (0, 1)]
    runs += [skewed_run(tmp_path / f"b{s}", "balanced", s, 0.60 + 0.02 * s) for s in (0, 1)]
    make_report(runs, tmp_path / "r")
    md = (tmp_path / "r" / "report.md").read_text()
    head = md.split("## Summary")[0]
    first = head.split("## What the schedules change\n\n")[1].splitlines()[0]
    # balanced's rare-label F1: mean of LAV, NOR, MSA (below the average label's 60 examples)
    assert first == ("- **balance** (balanced − uniform) improves the DID rare-label F1 by 30.0 points (balanced "
                     "56.0 ± 1.4 vs uniform 26.0 ± 1.4), beyond the seed spread (1.4).")
    assert "| ingredient | schedules | DID rare-label F1 (MSA, NOR, LAV) | ASR CER (lower is better) |" in head
    assert "| balance | balanced − uniform | +30.0 (better, spread 1.4) | +0.0 (tie) |" in head
    # per-label F1, labels by training frequency, the rare ones marked; per-run rare-label recall
    assert "| schedule | EGY (120) | GLF (80) | LAV (50, rare) | NOR (30, rare) | MSA (20, rare) |" in head
    assert "| balanced | 90.0 ± 0.0 | 80.0 ± 0.0 | 61.0 ± 1.4 | 56.0 ± 1.4 | 51.0 ± 1.4 |" in head
    assert "recall of the rare labels (MSA, NOR, LAV), mean over them, per run — u0 25.0, u1 27.0, b0 55.0, b1 57.0." in head
    # std 1.4 points: 2 (1.96 + 0.84)² 1.41² / 3² = 3.5
    assert "Seeds: 2 a schedule here." in head and "DID rare-label F1 std 1.4 points: **4**" in head


def test_a_gap_within_the_spread_is_not_led_with(tmp_path):
    runs = [skewed_run(tmp_path / f"u{s}", "uniform", s, 0.30 + 0.20 * s) for s in (0, 1)]
    runs += [skewed_run(tmp_path / f"b{s}", "balanced", s, 0.35 + 0.20 * s) for s in (0, 1)]
    make_report(runs, tmp_path / "r")
    head = (tmp_path / "r" / "report.md").read_text().split("## Summary")[0]
    assert "- No ingredient changes a figure beyond the seed spread." in head
    assert "Within the seed spread (or one seed a side): balance on the DID rare-label F1 (+5.0)" in head
    assert "DID rare-label F1 std 14.1 points: **349**" in head  # 2 (1.96 + 0.84)² 14.1² / 3² ≈ 349


def test_a_gap_under_a_point_is_never_led_with(tmp_path):
    # ROUGE-L 0.3 % against 0.0 %, with no spread to speak of: no summary is learned either way.
    def run(folder, schedule, seed, rouge):
        return write_run(folder, schedule, seed, test={"metrics": {"ssum": {"rougeL": rouge}, "tsum": {"rougeL": rouge},
                                                                   "asr": {"wer": 0.3, "cer": 0.2}}, "composite": 0.3})
    runs = [run(tmp_path / f"u{s}", "uniform", s, 0.0) for s in (0, 1)]
    runs += [run(tmp_path / f"a{s}", "adaptive", s, 0.003 + 0.0001 * s) for s in (0, 1)]
    make_report(runs, tmp_path / "r")
    head = (tmp_path / "r" / "report.md").read_text().split("## Summary")[0]
    assert "- No ingredient changes a figure beyond the seed spread." in head
    assert "| online weights | adaptive − uniform | +0.3 (within spread, spread 0.0) |" in head


def test_rare_labels_and_seed_counts():
    assert rare_labels({"EGY": 120, "GLF": 80, "LAV": 60, "NOR": 30, "MSA": 20}) == ["MSA", "NOR", "LAV"]
    assert rare_labels({label: 50 for label in DID}) == [] and rare_labels({}) == []
    assert rare_labels({"EGY": 144, "GLF": 144, "LAV": 144, "NOR": 143, "MSA": 143}) == []  # balanced, ±1
    # the shaped demo's training counts: the rarer half of each set
    assert rare_labels({"GLF": 168, "NOR": 120, "EGY": 117, "MSA": 85, "LAV": 67}) == ["LAV", "MSA"]
    assert rare_labels({"neutral": 64, "angry": 41, "sad": 41, "happy": 22, "surprised": 4}) == ["surprised", "happy"]
    assert seeds_needed(0.0) is None and seeds_needed(0.01) == 2
    assert seeds_needed(0.03) == pytest.approx(16, abs=1)  # std = the difference: 2 x 7.85 ≈ 16


def test_runs_without_train_data_have_no_rare_section(tmp_path):
    runs = [write_run(tmp_path / f"u{s}", "uniform", s, test={"metrics": did_metrics(dict.fromkeys(DID, 0.5)),
                                                             "composite": 0.5}) for s in (0, 1)]
    make_report(runs, tmp_path / "r")
    assert "rare" not in (tmp_path / "r" / "report.md").read_text().split("## Summary")[0]
