import json

import pytest

from nabra.demo import run_demo
from nabra.schedule import SCHEDULE_NAMES as SCHEDULES


@pytest.mark.slow
def test_demo_end_to_end_in_small(tmp_path, capsys):
    # The quick demo, reduced: a tiny corpus and a few steps per schedule.
    plan = {"utterances": 50, "steps": 4, "long_fraction": 0.0}
    assert run_demo(tmp_path, quick=True, plan=plan) == 0
    runs = tmp_path / "runs"
    for schedule in SCHEDULES:
        metrics = json.loads((runs / f"{schedule}-seed0" / "eval-test" / "metrics.json").read_text())
        assert {"asr", "did", "ser"} <= set(metrics["metrics"]) and metrics["composite"] is not None
    assert (runs / "untrained" / "eval-test" / "metrics.json").is_file()
    report = (tmp_path / "report" / "report.md").read_text()
    assert all(s in report for s in (*SCHEDULES, "untrained")) and "## Summary" in report
    assert (tmp_path / "report" / "report.html").stat().st_size > 10_000  # images embedded
    out = capsys.readouterr().out
    assert "test split" in out and "tpc_ads" in out and "report.html" in out
    # A second run reuses everything that is finished.
    assert run_demo(tmp_path, quick=True, plan=plan) == 0
    assert "train uniform" not in capsys.readouterr().out
