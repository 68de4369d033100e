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
from nabra.run.folder import BASELINES

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
    sentences = schedule_sentences(tested, conditions)
    if sentences:
        blocks += [("h3", "What each schedule keeps"), ("ul", sentences)]
    return blocks


def hardest(groups: dict[str, list[Run]], task: str, key: str, higher: bool, conditions: list[str]) -> str | None:
    """The condition under which the schedules lose most of ``task`` on average."""
    mean_drop = {}
    for cond in conditions:
        per = [d.mean for runs in groups.values() if (d := drops(runs, task, key, cond, higher)) is not None]
        if per:
            mean_drop[cond] = float(np.mean(per))
    return min(mean_drop, key=mean_drop.get) if mean_drop else None


def schedule_sentences(groups: dict[str, list[Run]], conditions: list[str]) -> list[str]:
    """A sentence per schedule (each task's change under that task's hardest condition), then per task which
    schedule is best under it and which loses least, each with its verdict against the seed spread."""
    primaries = [(t, k, lab, up) for t, k, lab, up in rows(groups) if k == primary(t)[0]]
    worst = {t: hardest(groups, t, k, up, conditions) for t, k, _, up in primaries}
    out = []
    one = len({c for c in worst.values() if c}) == 1  # one condition for every task: named once
    for schedule, runs in groups.items():
        parts = []
        for task, key, label, _ in primaries:
            cond = worst[task]
            clean = Stat.of([r.value(task, key) for r in runs])
            under = Stat.of([r.value(task, key, cond) for r in runs]) if cond else None
            if clean and under:
                parts.append(f"{label} {clean.text(100)} → {under.text(100)}" + ("" if one else f" ({cond})"))
        if parts:
            named = f" clean → {next(c for c in worst.values() if c)}" if one else ""
            out.append(f"**{schedule}**{named}: " + "; ".join(parts) + ".")
    for task, key, label, higher in primaries:
        cond = worst[task]
        if cond is None:
            continue
        ranked_groups = {s: runs for s, runs in groups.items() if s not in BASELINES}  # compared with, never ranked
        under = {s: st for s, runs in ranked_groups.items()
                 if (st := Stat.of([r.value(task, key, cond) for r in runs]))}
        lost = {s: d for s, runs in ranked_groups.items() if (d := drops(runs, task, key, cond, higher)) is not None}
        if len(under) < 2 or len(lost) < 2:
            continue
        ranked = sorted(under, key=lambda s: under[s].mean, reverse=higher)
        least = sorted(lost, key=lambda s: -lost[s].mean)
        out.append(f"{label} under {cond}: best **{ranked[0]}** {under[ranked[0]].text(100)} against {ranked[1]}'s "
                   f"{under[ranked[1]].text(100)} ({_verdict(compare(under[ranked[0]], under[ranked[1]], higher))}); "
                   f"least lost from clean: **{least[0]}** {100 * lost[least[0]].mean:+.1f} points against "
                   f"{least[1]}'s {100 * lost[least[1]].mean:+.1f} ({_verdict(compare(lost[least[0]], lost[least[1]], True))}).")
    return out


def _verdict(cmp) -> str:
    if cmp.tie:
        return "tied"
    if cmp.spread is None:
        return "one seed: no spread to test against"
    return "beyond the seed spread" if cmp.beyond_spread() else "within the seed spread"


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
