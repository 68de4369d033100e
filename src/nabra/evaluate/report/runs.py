"""The report's runs: each run folder read (through :class:`~nabra.run.folder.RunFolder`) into a
:class:`Run`, grouped by schedule, and the per-schedule statistics of one metric."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from nabra.corpus.manifest import TASKS
from nabra.errors import NabraError
from nabra.evaluate.claims import run_tasks as report_tasks
from nabra.evaluate.stats import Stat
from nabra.files import read_json
from nabra.run.folder import RunFolder
from nabra.schedule import SCHEDULE_NAMES

LABEL_ROWS = (("accuracy", "accuracy", True), ("macro_f1", "macro-F1", True), ("unparsed_rate", "unparsed", False))
"""The rows of every label task (did, ser, declared ones): (metric key, label, higher is better)."""
# (task, metric key, label, higher is better); tasks as in metrics.json, "composite" at the top level.
TABLE_ROWS = (
    ("asr", "wer", "WER", False), ("asr", "cer", "CER", False),
    ("asr", "wer_leaderboard", "WER (leaderboard norm.)", False),
    ("asr", "cer_leaderboard", "CER (leaderboard norm.)", False),
    *((t, k, name, True) for t in ("ssum", "tsum") for k, name in
      (("rouge1", "ROUGE-1"), ("rouge2", "ROUGE-2"), ("rougeL", "ROUGE-L"))),
    *((t, k, name, up) for t in ("did", "ser") for k, name, up in LABEL_ROWS),
    ("composite", "composite", "composite score", True),
)
"""The rows of the built-in tasks; a declared label task gets did/ser's three rows (:func:`table_rows`)."""


def label_tasks(groups: dict[str, list[Run]]) -> tuple[str, ...]:
    """did, ser and the declared label tasks of the runs."""
    return ("did", "ser", *report_tasks(groups)[len(TASKS):])


def table_rows(groups: dict[str, list[Run]]) -> tuple:
    """:data:`TABLE_ROWS` with the rows of the runs' declared label tasks before the composite."""
    declared = tuple((t, k, name, up) for t in report_tasks(groups)[len(TASKS):] for k, name, up in LABEL_ROWS)
    return (*TABLE_ROWS[:-1], *declared, TABLE_ROWS[-1])
SCHEDULE_ORDER = SCHEDULE_NAMES
"""Tables and legends list schedules in the registry's order (others after them, by name)."""

# ============================================================================================
# reading runs
# ============================================================================================

@dataclass
class Run:
    """What the report needs from one run folder."""

    path: Path
    schedule: str
    seed: int
    train: list[dict] = field(default_factory=list)
    """Per-step training records (loss, task_loss, grad_norm, grad_norm_var, ...)."""
    dev: list[dict] = field(default_factory=list)
    """``{"event": "dev"}`` records: ``dev_loss`` per task."""
    dev_eval: list[dict] = field(default_factory=list)
    """``{"event": "dev_eval"}`` records: ``metrics`` per task and ``composite``."""
    schedule_events: list[dict] = field(default_factory=list)
    """``{"event": "schedule"}`` records: a change of course (the plateau switch, adaptive's ``weights``)."""
    final: dict | None = None
    """``{"metrics": {...}, "composite": x}`` of the final evaluation."""
    final_source: str = ""
    """``test`` (eval-test/metrics.json), ``dev`` (the last dev evaluation) or empty (none)."""
    train_data: dict | None = None
    """``train-data.json``: training examples per task and per label (``None`` for a run from before it)."""
    conditions: dict[str, dict] = field(default_factory=dict)
    """Condition name -> ``metrics.json`` of ``nabra evaluate --condition`` on the test split (clean not among them:
    that is :attr:`final`)."""
    notes: list[str] = field(default_factory=list)
    name: str = ""
    """How the report names the run: its folder name (with its parent's when two runs share one)."""

    def __post_init__(self):
        self.name = self.name or self.path.name

    def value(self, task: str, key: str, condition: str = "clean") -> float | None:
        """A final metric (``task == "composite"`` for the composite score), clean or under a ``condition``;
        ``None`` when absent."""
        final = self.final if condition == "clean" else self.conditions.get(condition)
        return _metric(final, task, key) if final else None


def _metric(final: dict, task: str, key: str) -> float | None:
    v = final.get("composite") if task == "composite" else final.get("metrics", {}).get(task, {}).get(key)
    return float(v) if isinstance(v, int | float) and math.isfinite(v) else None


def read_run(path: str | os.PathLike) -> Run:
    """Read a run folder (through :class:`~nabra.run.folder.RunFolder`); a missing or damaged
    ``config.yaml`` is an error naming it, missing metrics are noted."""
    folder = RunFolder.open(path)
    run = Run(folder.path, folder.schedule, folder.seed, train_data=folder.train_data())
    _read_records(run, folder)
    _read_final(run, folder)
    return run


def _read_records(run: Run, folder: RunFolder) -> None:
    if not folder.metrics.is_file():
        run.notes.append(f"{run.name}: no metrics.jsonl (no curves)")
        return
    records, bad = folder.records()  # a line torn by a crash: the rest is still good
    for record in records:
        event = record.get("event")
        if event == "dev":
            run.dev.append(record)
        elif event == "dev_eval":
            run.dev_eval.append(record)
        elif event == "schedule":
            run.schedule_events.append(record)
        elif event is None and "loss" in record:
            run.train.append(record)
    if bad:
        run.notes.append(f"{run.name}: {bad} unreadable line(s) in metrics.jsonl skipped")


def _read_conditions(run: Run, folder: RunFolder) -> None:
    """The test split's other listening conditions: ``eval-test/<slug>/metrics.json`` with a ``condition``."""
    root = folder.eval_dir("test")
    for path in sorted(root.glob("*/metrics.json")) if root.is_dir() else ():
        try:
            data = read_json(path)
        except (NabraError, OSError) as e:  # a torn file is a note, not the end of the report
            run.notes.append(f"{run.name}: {path} unreadable ({e}); its condition left out")
            continue
        name = (data.get("condition") or {}).get("name")
        if name and name != "clean":
            run.conditions[name] = data


def _read_final(run: Run, folder: RunFolder) -> None:
    _read_conditions(run, folder)
    test = folder.final_metrics("test")
    if test is not None:
        run.final, run.final_source = test, "test"
        cut = {t: m["truncated"] for t, m in run.final.get("metrics", {}).items() if m.get("truncated")}
        if cut:
            run.notes.append(f"{run.name}: answers cut at their token budget (no end token): "
                             + ", ".join(f"{t} {n}" for t, n in cut.items())
                             + " — their scores count what was generated; see `truncated` in predictions.jsonl")
    elif run.dev_eval:
        run.final, run.final_source = run.dev_eval[-1], "dev"
        run.notes.append(f"{run.name}: no eval-test/metrics.json: its table values are the last dev evaluation "
                         f"(step {run.dev_eval[-1].get('step')})")
    else:
        run.notes.append(f"{run.name}: no final evaluation (eval-test/metrics.json) and no dev evaluation")


def by_schedule(runs: list[Run]) -> dict[str, list[Run]]:
    """Runs grouped by schedule, in the canonical schedule order, seeds sorted."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.schedule, []).append(run)
    order = sorted(groups, key=lambda s: (SCHEDULE_ORDER.index(s) if s in SCHEDULE_ORDER else 99, s))
    return {s: sorted(groups[s], key=lambda r: (r.seed, r.name)) for s in order}


# ============================================================================================
# statistics
# ============================================================================================

def schedule_stats(groups: dict[str, list[Run]], task: str, key: str) -> dict[str, Stat]:
    """Per-schedule statistics of one final metric (schedules without the metric left out)."""
    out = {}
    for schedule, runs in groups.items():
        stat = Stat.of([r.value(task, key) for r in runs])
        if stat:
            out[schedule] = stat
    return out


def best_run(runs: list[Run]) -> Run:
    """The run with the highest final composite score (the first when none has one)."""
    scored = [r for r in runs if r.value("composite", "composite") is not None]
    return max(scored, key=lambda r: r.value("composite", "composite")) if scored else runs[0]


def pct(value: float) -> str:
    return f"{100 * value:.1f}"


def stat_cell(stat: Stat | None) -> str:
    if stat is None:
        return "–"
    return f"{pct(stat.mean)} ± {pct(stat.std)}" if stat.n > 1 else pct(stat.mean)


