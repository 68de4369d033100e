"""The report's robustness section: what each schedule keeps of its clean test figures under the listening
conditions ``nabra evaluate --condition`` scored (noise at an SNR, babble, a room, ...), and the ``--by`` breakdowns.

Every run was scored on the same corrupted audio (the conditions are seeded by condition and utterance, never by
the run), so a difference between schedules is the models', not the draws'. Per task: a table (each condition's
figure, seeds averaged, and its change from clean), a plot of the figure against the SNR per schedule (one panel a
noise source; the clean figure at the right), and a sentence per schedule (its largest drop), then which schedule
loses least, with its verdict against the seed spread (:func:`nabra.evaluate.stats.compare` on the per-seed drops).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from nabra.evaluate.claims import run_tasks as report_tasks
from nabra.evaluate.metrics import primary
from nabra.evaluate.report.plots import COLORS, _figure
from nabra.evaluate.report.runs import Run, stat_cell
from nabra.evaluate.stats import Stat, compare

AUDIO_TASKS_EXCLUDED = ("tsum",)
"""Tasks whose input is text: a listening condition does not change them."""
BY_ROWS = 30
"""The most values a ``--by`` table lists (the most frequent); the rest are in each run's metrics.json."""


def rows(groups: dict[str, list[Run]]) -> list[tuple[str, str, str, bool]]:
    """(task, metric key, label, higher is better) of the section: each audio task's headline metric, and ASR's CER."""
    out = []
    for task in report_tasks(groups):
        if task in AUDIO_TASKS_EXCLUDED:
            continue
        key, higher = primary(task)
        out.append((task, key, f"{task} {key}", higher))
        if task == "asr":
            out.append((task, "cer", "asr cer", False))
    return out


def condition_order(names: set[str]) -> list[str]:
    """Noise conditions by source, then SNR from high to low; then the others by name."""
    def key(name: str):
        snr = re.search(r"snr=(-?[\d.]+)", name)
        source = re.search(r"source=([^,]+)", name)
        return (0 if snr else 1, source.group(1) if source else "", -float(snr.group(1)) if snr else 0.0, name)

    return sorted(names, key=key)


def _tested(groups: dict[str, list[Run]]) -> dict[str, list[Run]]:
    """The runs with a clean test evaluation and at least one condition."""
    out = {s: [r for r in rs if r.conditions and r.final_source == "test"] for s, rs in groups.items()}
    return {s: rs for s, rs in out.items() if rs}


def drops(runs: list[Run], task: str, key: str, condition: str, higher: bool) -> Stat | None:
    """Per-seed change from clean under ``condition``, signed so that a loss is negative."""
    values = []
    for r in runs:
        clean, cond = r.value(task, key), r.value(task, key, condition)
        if clean is not None and cond is not None:
            values.append((cond - clean) * (1 if higher else -1))
    return Stat.of(values)


def robustness_blocks(groups: dict[str, list[Run]], out: Path) -> list[tuple]:
    """The section's blocks (and its PNGs in ``out``); empty when no run was scored under a condition."""
    tested = _tested(groups)
    if not tested:
        return []
    conditions = condition_order({c for rs in tested.values() for r in rs for c in r.conditions})
    blocks: list[tuple] = [
        ("h2", "Robustness: the test split under other listening conditions"),
        ("p", f"Conditions: clean, {', '.join(conditions)} (`nabra evaluate --condition`). Every run heard the same "
              "corrupted audio (seeded by condition and utterance). Values in %, mean ± std over seeds; in brackets "
              "the change from clean (negative: worse, for error rates too)."),
    ]
    sentences = []
    for task, key, label, higher in rows(tested):
        if not any(r.value(task, key) is not None for rs in tested.values() for r in rs):
            continue
        header = ["condition"] + [f"{s} (n={len(rs)})" for s, rs in tested.items()]
        table = [["clean"] + [stat_cell(Stat.of([r.value(task, key) for r in rs])) for rs in tested.values()]]
        for cond in conditions:
            cells = []
            for rs in tested.values():
                stat, drop = Stat.of([r.value(task, key, cond) for r in rs]), drops(rs, task, key, cond, higher)
                cells.append(stat_cell(stat) + (f" ({100 * drop.mean:+.1f})" if stat and drop else ""))
            table.append([cond, *cells])
        blocks += [("h3", label), ("table", header, table)]
        name = f"robustness-{task}-{key}.png"
        if plot_robustness(tested, task, key, label, conditions, out / name):
            blocks.append(("img", name, f"{label} against the SNR, per schedule (seeds averaged, bars ± 1 std); "
                                        "the rightmost point of each line is clean"))
        if (task, key) == (task, primary(task)[0]):
            sentences += schedule_sentences(tested, task, key, label, higher, conditions)
    if sentences:
        blocks += [("h3", "What each schedule keeps"), ("ul", sentences)]
    return blocks


def schedule_sentences(groups: dict[str, list[Run]], task: str, key: str, label: str, higher: bool,
                       conditions: list[str]) -> list[str]:
    """A sentence per schedule (its largest loss under any condition), then who loses least at the hardest."""
    out = []
    worst_of: dict[str, tuple[str, Stat]] = {}
    for schedule, runs in groups.items():
        lost = [(c, d) for c in conditions if (d := drops(runs, task, key, c, higher)) is not None]
        if not lost:
            continue
        cond, d = min(lost, key=lambda cd: cd[1].mean)
        worst_of[schedule] = (cond, d)
        clean = Stat.of([r.value(task, key) for r in runs])
        under = Stat.of([r.value(task, key, cond) for r in runs])
        out.append(f"**{schedule}** ({task}): {label} {clean.text(100)} clean, {under.text(100)} under {cond} — "
                   f"{'a loss' if d.mean < 0 else 'no loss'} of {abs(100 * d.mean):.1f} points at its hardest condition.")
    hardest = {}
    for cond in conditions:
        per = {s: d for s, runs in groups.items() if (d := drops(runs, task, key, cond, higher)) is not None}
        if len(per) >= 2:
            hardest[cond] = per
    if hardest:
        cond = min(hardest, key=lambda c: np.mean([d.mean for d in hardest[c].values()]))
        ranked = sorted(hardest[cond].items(), key=lambda sd: -sd[1].mean)
        (best, a), (second, b) = ranked[0], ranked[1]
        cmp = compare(a, b, True)
        verdict = ("tied" if cmp.tie else "beyond the seed spread" if cmp.beyond_spread()
                   else "within the seed spread" if cmp.spread is not None else "one seed: no spread to test against")
        out.append(f"{task} under {cond} (the hardest condition): **{best}** loses least "
                   f"({100 * a.mean:+.1f} points against {second}'s {100 * b.mean:+.1f}; {verdict}).")
    return out


def plot_robustness(groups: dict[str, list[Run]], task: str, key: str, label: str, conditions: list[str],
                    out: Path) -> bool:
    """One panel per noise source: ``label`` against the SNR, a line per schedule, clean at the right; conditions
    without an SNR (rooms, speed) in a last panel. False when there is nothing to draw."""
    panels: dict[str, list[tuple[float, str]]] = {}
    others = []
    for cond in conditions:
        snr, source = re.search(r"snr=(-?[\d.]+)", cond), re.search(r"source=([^,]+)", cond)
        if snr:
            panels.setdefault(source.group(1) if source else "noise", []).append((float(snr.group(1)), cond))
        else:
            others.append(cond)
    if others:
        panels["other conditions"] = []
    if not panels:
        return False
    fig, axes = _figure(len(panels), width=4.6)
    drawn = False
    for ax, (source, points) in zip(axes, panels.items(), strict=True):
        if source == "other conditions":
            xs_labels = ["clean", *others]
        else:
            points = sorted(points)
            top = points[-1][0] + 10 if points else 30.0
        for schedule, runs in groups.items():
            xs, means, stds = [], [], []
            if source == "other conditions":
                series = [(i, c) for i, c in enumerate(xs_labels)]
            else:
                series = [(snr, cond) for snr, cond in points] + [(top, "clean")]
            for x, cond in series:
                stat = Stat.of([r.value(task, key, cond) for r in runs])
                if stat:
                    xs.append(x), means.append(100 * stat.mean), stds.append(100 * stat.std)
            if len(xs) >= 2:
                ax.errorbar(xs, means, yerr=stds, color=COLORS.get(schedule), marker="o", ms=4, capsize=3,
                            label=f"{schedule} (n={len(runs)})")
                drawn = True
        if source == "other conditions":
            ax.set_xticks(range(len(xs_labels)), xs_labels, rotation=20, fontsize=8)
            ax.set_title("other conditions")
        else:
            ticks = [snr for snr, _ in points] + [top]
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks[:-1]] + ["clean"])
            ax.set_xlabel("SNR (dB)")
            ax.set_title(f"{source} noise")
        ax.set_ylabel(f"{label} (%)")
        ax.grid(alpha=0.3)
    if not drawn:
        return False
    axes[0].legend(fontsize=8)
    fig.savefig(out, dpi=110)
    return True


def by_field_blocks(groups: dict[str, list[Run]]) -> list[tuple]:
    """Tables of the clean test metrics per value of each ``--by`` field the runs were evaluated with."""
    fields: dict[str, set[str]] = {}
    for runs in groups.values():
        for r in runs:
            if r.final_source == "test":
                for name, values in (r.final.get("by") or {}).items():
                    fields.setdefault(name, set()).update(values)
    if not fields:
        return []
    blocks: list[tuple] = [("h2", "Breakdowns by manifest field"),
                           ("p", "The clean test metrics per value of each field the runs were evaluated with "
                                 "(`nabra evaluate --by FIELD`), in %, mean ± std over seeds; n: examples.")]
    for name, values in fields.items():
        for task in report_tasks(groups):
            key, _ = primary(task)
            counts = {v: max((_by(r, name, v, task).get("n", 0) for rs in groups.values() for r in rs if r.final),
                             default=0) for v in values}
            shown = sorted((v for v in values if counts[v]), key=lambda v: (-counts[v], v))[:BY_ROWS]
            if not shown:
                continue
            table = [[v, f"{counts[v]:,}"] + [stat_cell(Stat.of([_by(r, name, v, task).get(key) for r in rs
                                                                 if r.final_source == "test"]))
                                              for rs in groups.values()] for v in shown]
            blocks += [("h3", f"{task} {key} by {name}"),
                       ("table", [name, "n", *[f"{s} (n={len(rs)})" for s, rs in groups.items()]], table)]
            if len(values) > len(shown):
                blocks.append(("p", f"{len(values) - len(shown)} more values of {name} in each run's metrics.json."))
    return blocks


def _by(run: Run, name: str, value: str, task: str) -> dict:
    """One run's ``--by`` figures of ``task`` for ``name == value`` (empty when it has none)."""
    return ((((run.final or {}).get("by") or {}).get(name) or {}).get(value) or {}).get(task) or {}
