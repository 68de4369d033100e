"""The schedule-comparison report: ``report.md`` + a self-contained ``report.html`` + PNG plots.

From run folders (``config.yaml``, ``metrics.jsonl``, ``eval-test/metrics.json``) it builds:

- the final metrics per task, per schedule (mean ± sample std over the seeds given) and per run;
- learning curves per task: smoothed train loss, dev loss and the dev metric against the step, one
  line per schedule (seeds averaged, a band of ± one std);
- gradient-norm volatility (the sliding-window variance the trainer logs) per schedule;
- DID and SER confusion matrices of the best run of each schedule;
- a plain-language summary: which schedule wins which task, by how much, and whether the gap is
  larger than the spread between seeds.

The document is a list of blocks rendered twice (Markdown and HTML), so both say the same.
"""

from __future__ import annotations

import base64
import html
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nabra.corpus.manifest import TASKS
from nabra.errors import NabraError
from nabra.evaluate.claims import check_claims
from nabra.evaluate.claims import run_tasks as report_tasks
from nabra.evaluate.metrics import primary
from nabra.files import write_text
from nabra.run.folder import BASELINES, RunFolder
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
TIE = 5e-4
"""Differences below this (0.05 points, invisible at the report's one decimal) are ties."""
PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")
COLORS = dict(zip(SCHEDULE_NAMES, PALETTE, strict=False))
"""A fixed colour per registered schedule, so a schedule looks the same in every plot."""


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
    notes: list[str] = field(default_factory=list)
    name: str = ""
    """How the report names the run: its folder name (with its parent's when two runs share one)."""

    def __post_init__(self):
        self.name = self.name or self.path.name

    def value(self, task: str, key: str) -> float | None:
        """A final metric (``task == "composite"`` for the composite score); ``None`` when absent."""
        if not self.final:
            return None
        v = self.final.get("composite") if task == "composite" else self.final.get("metrics", {}).get(task, {}).get(key)
        return float(v) if isinstance(v, int | float) and math.isfinite(v) else None


def read_run(path: str | os.PathLike) -> Run:
    """Read a run folder (through :class:`~nabra.run.folder.RunFolder`); a missing or damaged
    ``config.yaml`` is an error naming it, missing metrics are noted."""
    folder = RunFolder.open(path)
    run = Run(folder.path, folder.schedule, folder.seed)
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


def _read_final(run: Run, folder: RunFolder) -> None:
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

@dataclass
class Stat:
    """Mean, sample standard deviation (0 for one value) and count of the values of one cell."""

    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values: list[float | None]) -> Stat | None:
        values = [v for v in values if v is not None]
        if not values:
            return None
        return cls(float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0, len(values))


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


def _fmt(stat: Stat | None) -> str:
    if stat is None:
        return "–"
    return f"{pct(stat.mean)} ± {pct(stat.std)}" if stat.n > 1 else pct(stat.mean)


# ============================================================================================
# the summary in words
# ============================================================================================

WER_NOT_LEARNED = 0.9
"""ASR whose test WER is at least this was not learned (a model that transcribes nothing scores 1.0)."""
KEEP_MARGIN = 0.02
"""A fine-tuned CER worse than the base's by at most this (or the seed spread, if larger) kept the base's ASR."""
ROUGE_NOT_LEARNED = 0.10
"""Without a baseline to compare with, a summary whose ROUGE-L is below this was not learned."""
CHANCE_MARGIN = 0.05
"""A DID/SER macro-F1 within this (or the seed spread, if larger) of chance (1 / labels) was not learned."""


def not_learned(task: str, stat: Stat, groups: dict[str, list[Run]]) -> str | None:
    """Why ``task`` counts as not learned at ``stat`` (the schedule's mean), or ``None`` (learned)."""
    key, _ = primary(task)
    if task == "asr" and stat.mean >= WER_NOT_LEARNED:
        why = f"WER {pct(stat.mean)}% ≥ {pct(WER_NOT_LEARNED)}%"
        base = schedule_stats({n: r for n, r in groups.items() if n == "base"}, task, key).get("base")
        if base is not None and base.mean < WER_NOT_LEARNED:  # it knew ASR: the fine-tuning broke it
            why += f", the pretrained base's {pct(base.mean)}% before fine-tuning"
        return why
    if key == "macro_f1":  # did, ser, a declared label task
        chance = 1 / n_labels(groups, task)
        if stat.mean <= chance + max(stat.std, CHANCE_MARGIN):
            return f"macro-F1 {pct(stat.mean)}% within {pct(max(stat.std, CHANCE_MARGIN))} of chance {pct(chance)}%"
    if task in ("ssum", "tsum"):
        floor = [st for name, st in schedule_stats(groups, task, key).items() if name in BASELINES]
        if not floor and stat.mean < ROUGE_NOT_LEARNED:
            return f"ROUGE-L {pct(stat.mean)}% < {pct(ROUGE_NOT_LEARNED)}%"
        if floor:
            base = max(floor, key=lambda st: st.mean)
            if stat.mean <= base.mean + max(stat.std, base.std, 0.01):
                return f"ROUGE-L {pct(stat.mean)}% no better than the baseline's {pct(base.mean)}%"
    return None


def n_labels(groups: dict[str, list[Run]], task: str) -> int:
    """The label count of ``task`` (from the runs' confusion matrices; 5 when none has one)."""
    for runs in groups.values():
        for r in runs:
            labels = (r.final or {}).get("metrics", {}).get(task, {}).get("confusion", {}).get("labels")
            if labels:
                return len(labels)
    return 5


def winner_sentence(task: str, stats: dict[str, Stat], failed: dict[str, str] | None = None) -> str | None:
    """One sentence: who wins ``task`` on its primary metric, by how much, and whether it is noise.
    ``failed``: schedules that did not learn the task (with why): never named the winner."""
    key, higher = primary(task)
    if not stats:
        return None
    failed = {name: why for name, why in (failed or {}).items() if name in stats}
    label = {"asr": "ASR (WER, lower is better)", "composite": "Composite score"}.get(
        task, f"{task.upper()} ({'ROUGE-L' if key == 'rougeL' else 'macro-F1'})")
    if len(failed) == len(stats):
        best = min(failed, key=lambda n: stats[n].mean * (-1 if higher else 1))
        return f"{label}: **not learned** by any schedule (best {best}: {failed[best]}): no winner named."
    tail = f" Not learned: {'; '.join(f'{n} ({why})' for n, why in failed.items())}." if failed else ""
    ranked = sorted(((n, st) for n, st in stats.items() if n not in failed), key=lambda kv: kv[1].mean, reverse=higher)
    (best, b), rest = ranked[0], ranked[1:]
    if not rest:
        return f"{label}: only {best} has results ({pct(b.mean)}%)." + tail
    second, s = rest[0]
    gap = abs(b.mean - s.mean)
    if gap < TIE:
        tied = [name for name, st in ranked if abs(st.mean - b.mean) < TIE]
        return f"{label}: {' and '.join(tied)} tie at {pct(b.mean)}%." + tail
    text = f"{label}: **{best}** wins with {pct(b.mean)}% vs {second} {pct(s.mean)}% ({100 * gap:.1f} points)"
    if b.n < 2 or s.n < 2:
        return text + "; one seed on at least one side, so the seed-to-seed spread is unknown." + tail
    spread = max(b.std, s.std)
    if gap <= spread:
        return text + f", within the seed spread (std up to {pct(spread)}): not a clear win." + tail
    return text + f", larger than the seed spread (std up to {pct(spread)})." + tail


def volatility_sentence(groups: dict[str, list[Run]]) -> str | None:
    """Which schedule's gradient norm varies most over the second half of training."""
    level = {}
    for schedule, runs in groups.items():
        values = []
        for run in runs:
            steps, var = grad_norm_variance(run)
            if len(steps):
                values.append(float(np.mean(var[steps >= steps.max() / 2])))
        if values:
            level[schedule] = float(np.mean(values))
    if len(level) < 2:
        return None
    hi, lo = max(level, key=level.get), min(level, key=level.get)
    return (f"Gradient-norm volatility (mean sliding-window variance over the second half of training) is highest "
            f"for **{hi}** ({level[hi]:.3g}) and lowest for **{lo}** ({level[lo]:.3g}).")


KEPT_METRICS = (("asr", "cer", "CER", False), ("ser", "macro_f1", "SER macro-F1", True),
                ("did", "macro_f1", "DID macro-F1", True))
"""What the pretrained base is compared on, when it was scored on the task: (task, key, label, higher is better)."""
UNTRAINED_METRICS = (("asr", "cer", "CER", False), ("composite", "composite", "composite", True))
"""What the untrained model is compared on: the floor a trained one must clear."""


def baseline_sentences(groups: dict[str, list[Run]]) -> list[str]:
    """How every schedule compares with each baseline: the untrained model is the floor a trained one
    must clear (CER and composite); against the pretrained ``base``, per task it was pre-trained on
    (CER, SER/DID macro-F1), a score worse than the base's by more than the seed spread means the
    fine-tuning lost what the base knew."""
    out = []
    for baseline in (b for b in BASELINES if b in groups):
        parts = []
        checks = KEPT_METRICS if baseline == "base" else UNTRAINED_METRICS
        for task, key, label, higher in checks:
            stats = schedule_stats({n: r for n, r in groups.items() if n == baseline or n not in BASELINES}, task, key)
            base = stats.pop(baseline, None)
            if base is None or not stats:
                continue
            if baseline == "base":  # scored on the tasks it was pre-trained on: its composite is not comparable
                parts.append(_kept_or_lost(base, stats, task.upper(), label, higher))
                continue
            beat = [name for name, st in stats.items() if (st.mean > base.mean if higher else st.mean < base.mean)]
            missed = [name for name in stats if name not in beat]
            text = f"{label} {pct(base.mean)}% {baseline}: " + (
                "every schedule does better" if not missed else
                f"**{', '.join(missed)}** {'does' if len(missed) == 1 else 'do'} not beat it")
            best = max(stats, key=lambda n: stats[n].mean if higher else -stats[n].mean)
            parts.append(text + f" (best {best} {pct(stats[best].mean)}%)")
        if parts:
            what = "the untrained model" if baseline == "untrained" else "the pretrained base (before fine-tuning)"
            out.append(f"Against {what}: " + "; ".join(parts) + ".")
    return out


def _kept_or_lost(base: Stat, stats: dict[str, Stat], task: str, label: str, higher: bool) -> str:
    """Per schedule: whether the fine-tuning kept what the base scored (not worse beyond the spread)."""
    kept, lost = [], []
    for name, st in stats.items():
        worse = (base.mean - st.mean) if higher else (st.mean - base.mean)
        if worse > max(st.std, base.std, KEEP_MARGIN):
            lost.append(f"{name} {pct(st.mean)}% ({'-' if higher else '+'}{100 * worse:.1f})")
        else:
            kept.append(f"{name} {pct(st.mean)}%")
    text = f"{label} {pct(base.mean)}% base: "
    if kept:
        text += f"kept its {task}: " + ", ".join(kept)
    if lost:
        text += ("; " if kept else "") + f"**lost** {task} (negative transfer): " + ", ".join(lost)
    return text


def loop_sentence(groups: dict[str, list[Run]]) -> str | None:
    """How many ASR answers of each schedule (baselines included) are caught in a repetition loop
    (``looped`` in the test metrics, mean over seeds), when any is: the reason a CER passes 100 %."""
    counts = {}
    for schedule, runs in groups.items():
        asr = [m for r in runs if (m := (r.final or {}).get("metrics", {}).get("asr")) and "looped" in m]
        if asr:
            counts[schedule] = (float(np.mean([m["looped"] for m in asr])), int(asr[0].get("n", 0)))
    if not any(looped for looped, _ in counts.values()):
        return None
    parts = [f"{name} {round(looped, 1):g} of {n}" for name, (looped, n) in sorted(counts.items(), key=lambda kv: -kv[1][0])]
    return ("ASR answers caught in a repetition loop (the same piece of text over and over: what a model does "
            "when it loses its place in long audio; `looped` in predictions.jsonl), mean over seeds: "
            + ", ".join(parts) + ".")


def language_sentence(groups: dict[str, list[Run]]) -> str | None:
    """WER per speech language of each schedule (mean over seeds), when the test set mixes languages
    (``by_language`` in the ASR metrics): English under Whisper's English normalizer, Arabic under the
    run's scheme. ``None`` for a one-language test set."""
    parts = []
    for schedule, runs in groups.items():
        tables = [m["by_language"] for r in runs if (m := (r.final or {}).get("metrics", {}).get("asr"))
                  and "by_language" in m]
        if tables:
            langs = sorted({lang for t in tables for lang in t})
            wers = ", ".join(f"{lang} {100 * float(np.mean([t[lang]['wer'] for t in tables if lang in t])):.1f}%"
                             for lang in langs)
            parts.append(f"{schedule}: {wers}")
    if not parts:
        return None
    return "ASR WER per language of the speech (English normalised as Whisper's evaluations do, Arabic by the " \
           "run's scheme), mean over seeds — " + "; ".join(parts) + "."


def duration_sentence(groups: dict[str, list[Run]]) -> str | None:
    """ASR CER per audio length of each schedule and baseline (mean over seeds; ``by_duration`` in the
    ASR metrics), when the test clips span several lengths: where long audio is lost. ``None`` otherwise."""
    parts = []
    for schedule, runs in groups.items():
        tables = [m["by_duration"] for r in runs if (m := (r.final or {}).get("metrics", {}).get("asr"))
                  and "by_duration" in m]
        if tables:
            cells = []
            for bucket in dict.fromkeys(b for t in tables for b in t):
                cer = float(np.mean([t[bucket]["cer"] for t in tables if bucket in t]))
                share = tables[0].get(bucket, {}).get("n")
                cells.append(f"{bucket} {100 * cer:.1f}%" + (f" ({share} clip{'' if share == 1 else 's'})" if share is not None else ""))
            parts.append(f"{schedule}: " + ", ".join(cells))
    if not parts:
        return None
    return "ASR CER by audio length (`by_duration` in metrics.json), mean over seeds — " + "; ".join(parts) + "."


def ranked(groups: dict[str, list[Run]]) -> dict[str, list[Run]]:
    """The groups that compete: every schedule but the baselines."""
    return {name: runs for name, runs in groups.items() if name not in BASELINES}


def summary(groups: dict[str, list[Run]]) -> list[str]:
    """The report's summary sentences. The baselines are compared with, never ranked."""
    lines = []
    for task in ("composite", *report_tasks(groups)):
        stats = schedule_stats(ranked(groups), task, primary(task)[0])
        failed = {n: why for n, st in stats.items() if task != "composite" and (why := not_learned(task, st, groups))}
        if sentence := winner_sentence(task, stats, failed):
            lines.append(sentence)
    if not lines:
        lines.append("No run has final metrics (eval-test/metrics.json or dev evaluations): nothing to rank.")
    lines += baseline_sentences(groups)
    if loops := loop_sentence(groups):
        lines.append(loops)
    if languages := language_sentence(groups):
        lines.append(languages)
    if lengths := duration_sentence(groups):
        lines.append(lengths)
    vol = volatility_sentence(groups)
    if vol:
        lines.append(vol)
    return lines


# ============================================================================================
# series for the curves
# ============================================================================================

def train_loss_series(run: Run, task: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, loss) of ``task`` in the training records (the steps whose batch held the task)."""
    pts = [(r["step"], r["task_loss"][task]) for r in run.train if task in (r.get("task_loss") or {})]
    return _arrays(pts)


def dev_loss_series(run: Run, task: str) -> tuple[np.ndarray, np.ndarray]:
    pts = [(r["step"], r["dev_loss"][task]) for r in run.dev if task in (r.get("dev_loss") or {})]
    return _arrays(pts)


def dev_metric_series(run: Run, task: str) -> tuple[np.ndarray, np.ndarray]:
    key = primary(task)[0]
    pts = [(r["step"], r["metrics"][task][key]) for r in run.dev_eval
           if isinstance((r.get("metrics") or {}).get(task, {}).get(key), int | float)]
    return _arrays(pts)


def grad_norm_variance(run: Run, window: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """(steps, sliding-window variance of the gradient norm): the trainer's ``grad_norm_var`` when
    logged, else computed from ``grad_norm`` over ``window`` records."""
    if run.train and all("grad_norm_var" in r for r in run.train):
        return _arrays([(r["step"], r["grad_norm_var"]) for r in run.train])
    steps, norms = _arrays([(r["step"], r["grad_norm"]) for r in run.train if "grad_norm" in r])
    var = np.array([np.var(norms[max(0, i - window + 1): i + 1]) for i in range(len(norms))])
    return steps, var


def smooth(values: np.ndarray, points: int = 30) -> np.ndarray:
    """Trailing moving average over ~1/``points`` of the series (a noisy per-step loss reads better)."""
    w = max(1, len(values) // points)
    if w == 1:
        return values
    cumsum = np.cumsum(np.insert(values, 0, 0.0))
    out = np.empty_like(values, dtype=float)
    out[w - 1:] = (cumsum[w:] - cumsum[:-w]) / w
    out[: w - 1] = cumsum[1:w] / np.arange(1, w)
    return out


def average(series: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Mean and std of several seeds' series on the union of their steps, over the range they all cover
    (linear interpolation between logged steps; exact when the seeds log the same steps)."""
    series = [(s, v) for s, v in series if len(s)]
    if not series:
        return None
    lo, hi = max(s.min() for s, _ in series), min(s.max() for s, _ in series)
    grid = np.unique(np.concatenate([s[(s >= lo) & (s <= hi)] for s, _ in series]))
    if not len(grid):
        return None
    stacked = np.stack([np.interp(grid, s, v) for s, v in series])
    return grid, stacked.mean(0), stacked.std(0, ddof=1) if len(series) > 1 else np.zeros(len(grid))


def _arrays(pts: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    pts = sorted(pts)
    return np.array([p[0] for p in pts], dtype=float), np.array([p[1] for p in pts], dtype=float)


# ============================================================================================
# plots (matplotlib's object API: no pyplot state, the Agg canvas)
# ============================================================================================

def _figure(ncols: int, width: float = 5.0, height: float = 3.6):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, axes


def _plot_band(ax, groups, make_series, *, smoothed: bool = False, log: bool = False) -> bool:
    """One line per schedule (seeds averaged) with a ± std band; False when nothing was drawn.

    With ``log`` the seeds are averaged in log10 space (geometric mean, band × / ÷ the geometric
    std) on a log axis: a linear mean − std goes below zero there and tears the band apart.
    """
    drawn = False
    for schedule, runs in groups.items():
        series = [make_series(r) for r in runs]
        if smoothed:
            series = [(s, smooth(v)) for s, v in series]
        if log:
            series = [(s[v > 0], np.log10(v[v > 0])) for s, v in series]  # the first step's variance is 0
        avg = average(series)
        if avg is None:
            continue
        steps, mean, std = avg
        low, high = mean - std, mean + std
        if log:
            mean, low, high = 10**mean, 10**low, 10**high
        color = COLORS.get(schedule)
        n = sum(len(s) > 0 for s, _ in series)
        ax.plot(steps, mean, color=color, label=f"{schedule} (n={n})", marker="o" if len(steps) < 12 else None, ms=3)
        ax.fill_between(steps, low, high, color=color, alpha=0.2, linewidth=0)
        drawn = True
    if log and drawn:
        ax.set_yscale("log")
    return drawn


def plot_curves(groups: dict[str, list[Run]], task: str, out: Path) -> bool:
    """``curves-<task>.png``: train loss (smoothed), dev loss, dev metric; False when no data."""
    key, higher = primary(task)
    panels = [("train loss (smoothed)", lambda r: train_loss_series(r, task), True),
              ("dev loss", lambda r: dev_loss_series(r, task), False),
              (f"dev {key} ({'higher' if higher else 'lower'} is better)", lambda r: dev_metric_series(r, task), False)]
    panels = [p for p in panels if any(len(p[1](r)[0]) for runs in groups.values() for r in runs)]
    if not panels:
        return False
    fig, axes = _figure(len(panels))
    for ax, (title, make, smoothed) in zip(axes, panels, strict=True):
        _plot_band(ax, groups, make, smoothed=smoothed)
        ax.set_title(f"{task}: {title}", fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.savefig(out, dpi=110)
    return True


def plot_volatility(groups: dict[str, list[Run]], out: Path) -> bool:
    """``grad-norm-volatility.png``: sliding-window variance of the gradient norm (log scale) and
    the smoothed gradient norm, per schedule."""
    if not any(r.train for runs in groups.values() for r in runs):
        return False
    fig, (ax_var, ax_norm) = _figure(2)
    _plot_band(ax_var, groups, grad_norm_variance, log=True)
    _plot_band(ax_norm, groups, lambda r: _arrays([(x["step"], x["grad_norm"]) for x in r.train if "grad_norm" in x]),
               smoothed=True)
    ax_var.set_title("gradient-norm variance (sliding window; geometric mean over seeds)", fontsize=10)
    ax_norm.set_title("gradient norm (smoothed)", fontsize=10)
    for ax in (ax_var, ax_norm):
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.savefig(out, dpi=110)
    return True


def plot_task_weights(groups: dict[str, list[Run]], out: Path) -> list[str] | None:
    """``task-weights.png``: the share of each task in a batch against the step, for schedules whose
    mix moves with what they observe (``adaptive``), seeds averaged; returns the schedules shown."""
    shown = {s: runs for s, runs in groups.items()
             if any(e.get("weights") for r in runs for e in r.schedule_events)}
    if not shown:
        return None
    fig, axes = _figure(len(shown))
    for ax, (schedule, runs) in zip(axes, shown.items(), strict=True):
        tasks = list(dict.fromkeys(t for r in runs for e in r.schedule_events for t in (e.get("weights") or {})))
        for task in tasks:
            series = [_arrays([(e["step"], e["weights"][task]) for e in r.schedule_events
                               if task in (e.get("weights") or {})]) for r in runs]
            avg = average(series)
            if avg is None:
                continue
            steps, mean, std = avg
            ax.step(steps, mean, where="post", label=task, marker="o", ms=3)
            ax.fill_between(steps, mean - std, mean + std, step="post", alpha=0.2, linewidth=0)
        n = sum(any(e.get("weights") for e in r.schedule_events) for r in runs)
        ax.set_title(f"{schedule}: share of each task per batch (n={n})", fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.savefig(out, dpi=110)
    return list(shown)


def plot_confusions(groups: dict[str, list[Run]], task: str, out: Path) -> list[str] | None:
    """``confusion-<task>.png``: the best run of each schedule, rows normalized, counts written in
    each cell; returns the run names shown (None when no run has a confusion matrix)."""
    shown = []
    for runs in groups.values():
        with_cm = [r for r in runs if (r.final or {}).get("metrics", {}).get(task, {}).get("confusion")]
        if with_cm:
            shown.append(best_run(with_cm))
    if not shown:
        return None
    fig, axes = _figure(len(shown), width=4.2, height=3.9)
    for ax, run in zip(axes, shown, strict=True):
        cm = run.final["metrics"][task]["confusion"]
        counts = np.array(cm["matrix"], dtype=float)
        rates = counts / np.maximum(counts.sum(1, keepdims=True), 1)
        ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
        for (i, j), c in np.ndenumerate(counts):
            if c:
                ax.text(j, i, f"{int(c)}", ha="center", va="center", fontsize=8,
                        color="white" if rates[i, j] > 0.6 else "black")
        ax.axvline(len(cm["labels"]) - 0.5, color="#888", linewidth=1)  # labels | unparsed
        ax.set_xticks(range(len(cm["columns"])), cm["columns"], rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(cm["labels"])), cm["labels"], fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("reference")
        who = run.schedule if run.name == run.schedule else f"{run.schedule} ({run.name})"
        ax.set_title(f"{task}: {who}", fontsize=9)
    fig.savefig(out, dpi=110)
    return [r.name for r in shown]


# ============================================================================================
# the document
# ============================================================================================

def _tables(groups: dict[str, list[Run]]) -> list[tuple]:
    """The per-schedule and per-run final-metric tables (values in %)."""
    rows = [(t, k, name, up) for t, k, name, up in table_rows(groups)
            if any(r.value(t, k) is not None for runs in groups.values() for r in runs)]
    if not rows:
        return [("p", "No final metrics to tabulate.")]
    sched_rows, run_rows = [], []
    runs = [r for rs in groups.values() for r in rs]
    for task, key, name, higher in rows:
        # The pretrained base is scored on the tasks it was pre-trained on: its composite is not comparable.
        shown = {s: rs for s, rs in groups.items() if not (task == "composite" and s == "base")}
        stats = schedule_stats(shown, task, key)
        best = _best_key(stats, higher, lambda s: s.mean)
        sched_rows.append([task, name] + [_bold(_fmt(stats.get(s)), s == best) for s in groups])
        values = [r.value(task, key) if r.schedule in shown else None for r in runs]
        best_i = _best_key({i: v for i, v in enumerate(values) if v is not None}, higher, lambda v: v)
        run_rows.append([task, name] + [_bold(pct(v) if v is not None else "–", i == best_i)
                                        for i, v in enumerate(values)])
    seeds = {s: len(rs) for s, rs in groups.items()}
    return [
        ("table", ["task", "metric"] + [f"{s} (n={seeds[s]})" for s in groups], sched_rows),
        ("p", "Values in %, mean ± sample standard deviation over the seeds given; best of each row in bold. "
              "WER/CER and the unparsed rate: lower is better."),
        ("h3", "Per run"),
        ("table", ["task", "metric"] + [f"{r.name} ({r.schedule}, seed {r.seed}"
                                        f"{', dev' if r.final_source == 'dev' else ''})" for r in runs], run_rows),
    ]


def _best_key(values: dict, higher: bool, get):
    """The key of the best value; ``None`` when fewer than two or when the best is tied."""
    ranked = sorted(values, key=lambda k: get(values[k]), reverse=higher)
    if len(ranked) < 2 or abs(get(values[ranked[0]]) - get(values[ranked[1]])) < TIE:
        return None
    return ranked[0]


def _bold(text: str, yes: bool) -> str:
    return f"**{text}**" if yes else text


def build_blocks(runs: list[Run], out: Path) -> list[tuple]:
    """Write the PNGs into ``out`` and return the document as blocks."""
    groups = by_schedule(runs)
    blocks: list[tuple] = [
        ("h1", "Nabra: schedule comparison"),
        ("p", f"{len(runs)} run(s): " + "; ".join(f"{s}: {', '.join(r.name for r in rs)}" for s, rs in groups.items())),
        ("h2", "Summary"), ("ul", summary(groups)),
        ("h2", "The paper's claims on these runs"),
        ("p", "Each claim with its figures and a verdict: supported, not supported (the other way, beyond the "
              "seed spread), within seed spread, or not testable on these runs. Spread: the larger sample "
              "standard deviation over the seeds of the two sides compared."),
        ("ul", [c.sentence() for c in check_claims(ranked(groups))]),
        ("h2", "Final metrics"), *_tables(groups),
        ("h2", "Learning curves"),
    ]
    for task in report_tasks(groups):
        if plot_curves(groups, task, out / f"curves-{task}.png"):
            blocks.append(("img", f"curves-{task}.png", f"{task}: learning curves, seeds averaged (band: ± 1 std)"))
    if plot_volatility(groups, out / "grad-norm-volatility.png"):
        blocks += [("h2", "Gradient-norm volatility"),
                   ("img", "grad-norm-volatility.png", "Sliding-window variance of the gradient norm per schedule")]
    adaptive = plot_task_weights(groups, out / "task-weights.png")
    if adaptive:
        blocks += [("h2", "Task shares of the adaptive schedules"),
                   ("img", "task-weights.png", f"{', '.join(adaptive)}: share of each task in a batch at each dev "
                    "evaluation, seeds averaged (band: ± 1 std)")]
    confusion = [(t, plot_confusions(groups, t, out / f"confusion-{t}.png")) for t in label_tasks(groups)]
    if any(names for _, names in confusion):
        blocks.append(("h2", "Confusion matrices (best run of each schedule)"))
        blocks += [("img", f"confusion-{t}.png", f"{t}: {', '.join(names)}; colour = share of the reference row")
                   for t, names in confusion if names]
    notes = [n for r in runs for n in r.notes]
    if notes:
        blocks += [("h2", "Notes"), ("ul", notes)]
    return blocks


def render_markdown(blocks: list[tuple]) -> str:
    """The blocks as Markdown (images linked by file name)."""
    parts = []
    for kind, *rest in blocks:
        if kind in ("h1", "h2", "h3"):
            parts.append("#" * int(kind[1]) + " " + rest[0])
        elif kind == "p":
            parts.append(rest[0])
        elif kind == "ul":
            parts.append("\n".join(f"- {item}" for item in rest[0]))
        elif kind == "table":
            header, rows = rest
            lines = [header, ["---"] * len(header), *rows]
            parts.append("\n".join("| " + " | ".join(str(c).replace("|", "\\|") for c in line) + " |" for line in lines))
        elif kind == "img":
            parts.append(f"![{rest[1]}]({rest[0]})\n\n*{rest[1]}*")
    return "\n\n".join(parts) + "\n"


_CSS = ("body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:1em 0;font-size:14px}td,th{border:1px solid #ccc;padding:4px 8px;"
        "text-align:right}td:first-child,td:nth-child(2),th{text-align:left}th{background:#f3f3f3}"
        "img{max-width:100%}figure{margin:1em 0}figcaption{color:#555;font-size:13px}")


def _inline(text: str) -> str:
    """HTML of a text with Markdown's **bold**."""
    parts = html.escape(text).split("**")
    return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))


def render_html(blocks: list[tuple], folder: Path) -> str:
    """The blocks as one self-contained HTML page (PNG files from ``folder`` embedded as base64)."""
    body = []
    for kind, *rest in blocks:
        if kind in ("h1", "h2", "h3"):
            body.append(f"<{kind}>{_inline(rest[0])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{_inline(rest[0])}</p>")
        elif kind == "ul":
            body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in rest[0]) + "</ul>")
        elif kind == "table":
            header, rows = rest
            head = "".join(f"<th>{_inline(h)}</th>" for h in header)
            cells = "".join("<tr>" + "".join(f"<td>{_inline(str(c))}</td>" for c in row) + "</tr>" for row in rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>")
        elif kind == "img":
            data = base64.b64encode((folder / rest[0]).read_bytes()).decode("ascii")
            body.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(rest[1])}">'
                        f"<figcaption>{_inline(rest[1])}</figcaption></figure>")
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Nabra report</title>"
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def make_report(run_paths: list[str | os.PathLike], out: str | os.PathLike) -> Path:
    """Write ``report.md``, ``report.html`` and the PNGs into ``out``; returns ``out/report.html``."""
    if not run_paths:
        raise NabraError("no run folders given")
    runs = [read_run(p) for p in run_paths]
    names = [r.name for r in runs]
    for r in runs:
        if names.count(r.path.name) > 1:
            r.name = f"{r.path.parent.name}/{r.path.name}"
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    blocks = build_blocks(runs, out)
    write_text(out / "report.md", render_markdown(blocks))
    write_text(out / "report.html", render_html(blocks, out))
    return out / "report.html"
