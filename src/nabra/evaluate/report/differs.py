"""What the schedules change, first: the report's opening section.

Real corpora are imbalanced — MSA and Egyptian dominate dialect sets, neutral dominates emotion sets, a
few hours of summaries sit beside hundreds of hours of ASR — and that is where balance and curricula
matter. So the report opens with what differs between the schedules on what a skew hurts:

- the **rare labels** of each label task (did, ser, declared ones): a label with fewer training examples
  than the task's labels have on average, and at most :data:`RARE_SHARE` of the most frequent label's, as
  the runs' ``train-data.json`` counts them (the rarer half of a skewed set; none of a balanced one); per schedule the mean F1 over them, per label the F1, and per run the mean recall over them;
- the **ingredients** of the schedules, each as a difference of two schedules on the same budget, with
  its verdict against the seed spread (:func:`nabra.evaluate.stats.compare`, the claims' test too):
  balance (``balanced − uniform``), diversity (``ads − balanced``), the curriculum (``tpc − uniform``),
  the hybrid (``tpc_ads − uniform``) and the online weights (``adaptive − uniform``), on the rare-label
  F1, the summaries' ROUGE-L and ASR's CER (what a schedule keeps or loses of ASR);
- how many seeds a schedule would need to tell a 3-point difference from the spread measured.
"""

from __future__ import annotations

import math

from nabra.evaluate.report.runs import Run, label_tasks, pct
from nabra.evaluate.stats import Stat, compare
from nabra.run.folder import BASELINES
from nabra.schedule import (
    AdaptiveSchedule,
    ADSSchedule,
    BalancedSchedule,
    TPCADSSchedule,
    TPCSchedule,
    UniformSchedule,
)

RARE_SHARE = 0.8
"""A rare label has at most this share of its task's most frequent label's training examples (and fewer than
the average label): counts within a fifth of each other are a balanced set, whatever their order."""
INGREDIENTS = (("balance", BalancedSchedule.name, UniformSchedule.name), ("diversity", ADSSchedule.name, BalancedSchedule.name),
               ("curriculum", TPCSchedule.name, UniformSchedule.name), ("hybrid", TPCADSSchedule.name, UniformSchedule.name),
               ("online weights", AdaptiveSchedule.name, UniformSchedule.name))
"""(name, schedule, the schedule it is compared with): what each ingredient adds, on the same budget."""
LEAD_GAP = 0.01
"""A difference under one point is not called better or worse, whatever the spread (a ROUGE-L of 0.3 % against
0.0 % is no summary learned either way)."""
DETECT = 0.03
"""The difference (3 points) whose detectability the seed count is stated for."""


def train_labels(groups: dict[str, list[Run]], task: str) -> dict[str, int]:
    """Training examples per label of ``task``, from the first run that recorded them (``train-data.json``:
    the runs of one comparison share their data); empty when none did."""
    for runs in groups.values():
        for run in runs:
            counts = (run.train_data or {}).get("labels", {}).get(task)
            if counts:
                return dict(counts)
    return {}


def rare_labels(counts: dict[str, int]) -> list[str]:
    """The labels with fewer examples than the average label and at most :data:`RARE_SHARE` of the most
    frequent label's (rarest first)."""
    if not counts:
        return []
    top, mean = max(counts.values()), sum(counts.values()) / len(counts)
    return sorted((label for label, n in counts.items() if n < mean and n <= RARE_SHARE * top),
                  key=lambda label: counts[label])


def _per_class(run: Run, task: str) -> dict:
    return (run.final or {}).get("metrics", {}).get(task, {}).get("per_class", {})


def label_f1(run: Run, task: str, label: str) -> float | None:
    value = _per_class(run, task).get(label, {}).get("f1")
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def rare_f1(run: Run, rare: dict[str, list[str]]) -> float | None:
    """Mean F1 over the rare labels of every label task of the run (``None`` when it has none of them)."""
    values = [label_f1(run, task, label) for task, labels in rare.items() for label in labels]
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def rare_recall(run: Run, task: str, labels: list[str]) -> float | None:
    values = [_per_class(run, task).get(label, {}).get("recall") for label in labels]
    values = [float(v) for v in values if isinstance(v, int | float)]
    return sum(values) / len(values) if values else None


def seeds_needed(std: float, diff: float = DETECT) -> int | None:
    """Seeds a schedule for a two-sided 5 % test with 80 % power to detect ``diff`` between two schedules
    whose per-seed std is ``std``: ``2 (1.96 + 0.84)² std² / diff²`` (``None`` without a spread)."""
    if not std > 0:
        return None
    return max(2, math.ceil(2 * (1.96 + 0.8416) ** 2 * std**2 / diff**2))


def _verdict(a: Stat | None, b: Stat | None, higher: bool) -> str:
    if a is None or b is None:
        return "–"
    c = compare(a, b, higher)
    sign = 1 if higher else -1
    points = f"{sign * 100 * c.diff:+.1f}"
    if c.spread is None:
        return f"{points} (one seed)"
    if c.tie:
        return f"{points} (tie)"
    word = ("better" if c.diff > 0 else "worse") if c.beyond_spread(LEAD_GAP) else "within spread"
    return f"{points} ({word}, spread {100 * c.spread:.1f})"


def differs(groups: dict[str, list[Run]]) -> tuple[list[tuple], dict[str, list[str]]]:
    """The opening section's blocks, and the rare labels per task (for the summary)."""
    rare = {task: labels for task in label_tasks(groups) if (labels := rare_labels(train_labels(groups, task)))}
    blocks: list[tuple] = []
    stats: dict[str, dict[str, Stat | None]] = {
        task: {s: Stat.of([rare_f1(r, {task: labels}) for r in runs]) for s, runs in groups.items()}
        for task, labels in rare.items()}
    stats["summaries"] = {s: Stat.of([_mean(r.value(t, "rougeL") for t in ("ssum", "tsum")) for r in runs])
                          for s, runs in groups.items()}
    stats["asr"] = {s: Stat.of([r.value("asr", "cer") for r in runs]) for s, runs in groups.items()}
    titles = {**{task: f"{task.upper()} rare-label F1 ({', '.join(labels)})" for task, labels in rare.items()},
              "summaries": "SSUM/TSUM ROUGE-L", "asr": "ASR CER (lower is better)"}
    columns = [(key, titles[key], key != "asr") for key in stats if any(stats[key].values())]
    rows = [[name, f"{a} − {b}", *[_verdict(stats[k][a], stats[k][b], up) for k, _, up in columns]]
            for name, a, b in INGREDIENTS if a in groups and b in groups]
    if rows and columns:
        blocks.append(("ul", _sentences(groups, stats, columns)))
        blocks += [("p", "Each ingredient of the schedules as the difference of two schedules trained on the same "
                         "budget (the first's mean over seeds minus the second's, in points of the metric), and "
                         "whether it is better or worse beyond the seed spread (the larger std of the two sides)."),
                   ("table", ["ingredient", "schedules", *[title for _, title, _ in columns]], rows)]
    if rare:
        blocks += _rare_blocks(groups, rare)
    if need := _seeds_line(groups, stats, columns):
        blocks.append(("p", need))
    return blocks, rare


def _seeds_line(groups, stats, columns) -> str | None:
    """How many seeds a schedule needs, per figure, from the pooled per-seed std of the schedules compared."""
    parts, n = [], None
    for key, title, _ in columns:
        cells = [st for name, st in stats[key].items() if name not in BASELINES and st is not None and st.n > 1]
        if not cells:
            continue
        pooled = math.sqrt(sum(st.std**2 for st in cells) / len(cells))
        need = seeds_needed(pooled)
        n = min(st.n for st in cells) if n is None else min(n, *(st.n for st in cells))
        if need:
            parts.append(f"{title.split(' (')[0]} std {pct(pooled)} points: **{need}**")
    if not parts:
        return None
    return (f"Seeds: {n} a schedule here. To tell a {pct(DETECT)}-point difference from the seed spread (two-sided "
            f"5 % test, 80 % power, the schedules' pooled per-seed std) a schedule needs about: " + "; ".join(parts) + ".")


def _sentences(groups, stats, columns) -> list[str]:
    """The differences beyond the seed spread first, each in words; then the rest in one line."""
    clear, within = [], []
    for name, a, b in INGREDIENTS:
        if a not in groups or b not in groups:
            continue
        for key, title, higher in columns:
            sa, sb = stats[key].get(a), stats[key].get(b)
            if sa is None or sb is None:
                continue
            c = compare(sa, sb, higher)
            what = title.split(" (")[0]
            points = (1 if higher else -1) * 100 * c.diff
            if c.spread is not None and not c.tie and c.beyond_spread(LEAD_GAP):
                clear.append(f"**{name}** ({a} − {b}) {'improves' if c.diff > 0 else 'worsens'} the {what} by "
                             f"{abs(points):.1f} points ({a} {sa.text(100)} vs {b} {sb.text(100)}), beyond the seed "
                             f"spread ({100 * c.spread:.1f}).")
            else:
                within.append(f"{name} on the {what} ({points:+.1f}"
                              + (", one seed" if c.spread is None else "") + ")")
    lines = clear or ["No ingredient changes a figure beyond the seed spread."]
    if within:
        lines.append("Within the seed spread (or one seed a side): " + "; ".join(within) + ".")
    return lines


def _mean(values) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def _rare_blocks(groups: dict[str, list[Run]], rare: dict[str, list[str]]) -> list[tuple]:
    blocks: list[tuple] = []
    for task, labels in rare.items():
        counts = train_labels(groups, task)
        order = sorted(counts, key=lambda label: -counts[label])
        header = ["schedule", *[f"{label} ({counts[label]:,}{', rare' if label in labels else ''})" for label in order]]
        rows = []
        for schedule, runs in groups.items():
            cells = [Stat.of([label_f1(r, task, label) for r in runs]) for label in order]
            if any(cells):
                rows.append([schedule, *[c.text(100) if c else "–" for c in cells]])
        if rows:
            blocks += [("p", f"**{task}**: F1 per label (mean ± std over seeds), labels by their training examples; "
                             f"rare: fewer than the average label, and at most {pct(RARE_SHARE)}% of the most "
                             "frequent label's."),
                       ("table", header, rows)]
        recalls = [f"{r.name} {pct(v)}" for runs in groups.values() for r in runs
                   if (v := rare_recall(r, task, labels)) is not None]
        if recalls:
            blocks.append(("p", f"{task}: recall of the rare labels ({', '.join(labels)}), mean over them, per run — "
                                + ", ".join(recalls) + "."))
    return blocks
