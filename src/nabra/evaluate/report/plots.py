"""The report's curves and plots: series per run, averaged over seeds, drawn with matplotlib's
object API (no pyplot state, the Agg canvas)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nabra.evaluate.metrics import primary
from nabra.evaluate.report.runs import Run, best_run
from nabra.schedule import SCHEDULE_NAMES

PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")
COLORS = dict(zip(SCHEDULE_NAMES, PALETTE, strict=False))
"""A fixed colour per registered schedule, so a schedule looks the same in every plot."""



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


