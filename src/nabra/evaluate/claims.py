"""The paper's claims about the schedules, tested on the user's runs.

Each claim becomes one sentence with the figures behind it and a verdict:

- **supported**: the difference goes the claimed way and is larger than the seed spread (the larger
  sample standard deviation of the two sides);
- **not supported**: it goes the other way by more than the spread;
- **within seed spread**: it is no larger than the spread either way;
- **not testable**: the runs lack what the claim needs (a schedule, dev evaluations), said with what
  to run.

With one seed on a side the spread is unknown: the verdict is given on the means and says so.
The claims (after the Arabic multi-task tuning paper Nabra's schedules come from): (a) ADS
converges faster early, (b) ADS has higher gradient volatility, (c) ADS lifts paralinguistic F1,
split by the ``balanced`` ablation into balance and diversity, (d) TPC induces negative transfer,
(e) TPC→ADS gives the best balance across tasks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nabra.corpus.manifest import TASKS
from nabra.evaluate.metrics import primary
from nabra.evaluate.stats import TIE, Stat, compare

# The schedules the paper's claims are about (registered names: tests/evaluate/test_claims.py checks).
ADS = "ads"
UNIFORM = "uniform"
SUPPORTED, NOT_SUPPORTED, SPREAD, UNTESTABLE = "supported", "not supported", "within seed spread", "not testable"
LEVEL = 0.5
"""Claim (a): the dev-loss level is this far from the common start to the worse side's best loss."""


@dataclass
class Claim:
    """One tested claim: the paper's words, the verdict on these runs and the figures behind it."""

    key: str
    claim: str
    verdict: str
    evidence: str

    def sentence(self) -> str:
        return f"({self.key}) {self.claim} — **{self.verdict}**: {self.evidence}"


def verdict(a: Stat, b: Stat, higher: bool, min_gap: float = TIE, scale: float = 1.0,
            unit: str = "") -> tuple[str, str]:
    """Whether ``a`` beats ``b`` (higher or lower, as claimed) beyond the seed spread (:func:`compare`,
    the report's test too); and a note (the spread times ``scale``, in ``unit``: the figures' own)."""
    c = compare(a, b, higher)
    note = " (one seed on a side: spread unknown)" if c.spread is None else f" (seed spread {scale * c.spread:.3g}{unit})"
    if not c.beyond_spread(min_gap):
        return SPREAD, note
    return (SUPPORTED if c.diff > 0 else NOT_SUPPORTED), note


def _side(runs, value) -> Stat | None:
    return Stat.of(value(r) for r in runs)


def _missing(key: str, claim: str, what: str) -> Claim:
    return Claim(key, claim, UNTESTABLE, what)


# ============================================================================================
# (a) ADS converges faster early
# ============================================================================================

def dev_losses(run, task: str) -> tuple[np.ndarray, np.ndarray]:
    pts = sorted((r["step"], r["dev_loss"][task]) for r in run.dev if task in (r.get("dev_loss") or {}))
    return np.array([p[0] for p in pts], float), np.array([p[1] for p in pts], float)


def steps_to_reach(steps: np.ndarray, loss: np.ndarray, level: float) -> float | None:
    """The first step at which ``loss`` is at or below ``level`` (linear between evaluations); None: never."""
    hit = np.flatnonzero(loss <= level)
    if not len(hit):
        return None
    i = int(hit[0])
    if i == 0:
        return float(steps[0])
    s0, s1, l0, l1 = steps[i - 1], steps[i], loss[i - 1], loss[i]
    return float(s0 + (s1 - s0) * (l0 - level) / (l0 - l1))


def run_tasks(groups) -> tuple[str, ...]:
    """The built-in tasks, then the declared label tasks of the runs (any other task with a macro-F1
    in a final or a dev evaluation, or a dev loss), by name."""
    extra: set[str] = set()
    for runs in groups.values():
        for r in runs:
            extra |= {t for e in r.dev for t in (e.get("dev_loss") or {}) if t not in TASKS}
            for metrics in [(r.final or {}).get("metrics") or {}, *((e.get("metrics") or {}) for e in r.dev_eval)]:
                extra |= {t for t, m in metrics.items() if t not in TASKS and isinstance(m, dict) and "macro_f1" in m}
    return (*TASKS, *sorted(extra))


def claim_converges_faster(groups) -> Claim:
    text = "ADS converges faster early than uniform (steps to a fixed dev-loss level per task)"
    if "ads" not in groups or "uniform" not in groups:
        return _missing("a", text, "needs ads and uniform runs")
    pair = {s: groups[s] for s in (ADS, UNIFORM)}
    parts, votes = [], []
    for task in run_tasks(pair):
        series = {s: [dev_losses(r, task) for r in runs] for s, runs in pair.items()}
        series = {s: [x for x in xs if len(x[0]) >= 2] for s, xs in series.items()}
        if not all(series.values()):
            continue
        start = float(np.mean([loss[0] for xs in series.values() for _, loss in xs]))
        worse_best = max(float(np.mean([loss.min() for _, loss in xs])) for xs in series.values())
        if not start > worse_best:
            continue  # the loss never fell: no level to reach
        level = start - LEVEL * (start - worse_best)
        reach = {s: Stat([steps_to_reach(st, loss, level) or float(st[-1]) * 2 for st, loss in xs])
                 for s, xs in series.items()}
        v, _ = verdict(reach["ads"], reach["uniform"], higher=False, min_gap=0.5)
        votes.append(v)
        parts.append(f"{task} (level {level:.3f}): ads {reach['ads'].text(digits=0)} vs uniform "
                     f"{reach['uniform'].text(digits=0)} steps [{v}]")
    if not parts:
        return _missing("a", text, "needs dev losses at two or more evaluations (train.eval_every) in both")
    tally = f"supported on {votes.count(SUPPORTED)} of {len(votes)} tasks, not supported on {votes.count(NOT_SUPPORTED)}: "
    return Claim("a", text, _majority(votes), tally + "; ".join(parts) + ". A run that never reaches the level counts "
                 "twice its steps. Level: halfway from the common first dev loss to the worse schedule's best.")


def _majority(votes: list[str]) -> str:
    yes, no = votes.count(SUPPORTED), votes.count(NOT_SUPPORTED)
    return SUPPORTED if yes > no else NOT_SUPPORTED if no > yes else SPREAD


# ============================================================================================
# (b) ADS has higher gradient volatility
# ============================================================================================

def volatility(run) -> float | None:
    """Mean sliding-window variance of the gradient norm over the run (the trainer's ``grad_norm_var``)."""
    values = [r["grad_norm_var"] for r in run.train if isinstance(r.get("grad_norm_var"), int | float)]
    return float(np.mean(values)) if values else None


def claim_volatility(groups) -> Claim:
    text = "ADS has higher gradient volatility than uniform (gradient-norm variance)"
    sides = {s: side for s, runs in groups.items() if (side := _side(runs, volatility))}
    if "ads" not in sides or "uniform" not in sides:
        return _missing("b", text, "needs ads and uniform runs with grad_norm_var in metrics.jsonl")
    v, note = verdict(sides["ads"], sides["uniform"], higher=True)
    ratio = sides["ads"].mean / max(sides["uniform"].mean, 1e-12)
    others = ", ".join(f"{s} {side.mean:.3g}" for s, side in sides.items() if s not in (ADS, UNIFORM))
    return Claim("b", text, v, f"mean sliding-window variance ads {sides['ads'].text(digits=4)} vs uniform "
                 f"{sides['uniform'].text(digits=4)} (×{ratio:.2f}){note}" + (f"; {others}" if others else "") + ".")


# ============================================================================================
# (c) ADS lifts paralinguistic F1, split into balance and diversity
# ============================================================================================

def paralinguistic_f1(run) -> float | None:
    """Mean of the final DID and SER macro-F1 (those present)."""
    values = [run.value(t, "macro_f1") for t in ("did", "ser")]
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def claim_paralinguistic(groups) -> Claim:
    text = "ADS lifts paralinguistic F1 (mean of DID and SER macro-F1) over uniform"
    sides = {s: side for s, runs in groups.items() if (side := _side(runs, paralinguistic_f1))}
    if "ads" not in sides or "uniform" not in sides:
        return _missing("c", text, "needs ads and uniform runs with DID or SER test metrics")
    ads, uni = sides["ads"], sides["uniform"]
    v, note = verdict(ads, uni, higher=True, scale=100, unit=" points")
    evidence = f"ads {ads.text(100)} vs uniform {uni.text(100)} ({100 * (ads.mean - uni.mean):+.1f} points){note}"
    bal = sides.get("balanced")
    if bal is None:
        evidence += "; run the balanced schedule to split the lift into balance and diversity"
    else:
        vb, _ = verdict(bal, uni, higher=True)
        vd, _ = verdict(ads, bal, higher=True)
        evidence += (f"; of it, balance (balanced − uniform) {100 * (bal.mean - uni.mean):+.1f} points [{vb}] and "
                     f"diversity (ads − balanced) {100 * (ads.mean - bal.mean):+.1f} points [{vd}]")
    return Claim("c", text, v, evidence + ".")


# ============================================================================================
# (d) TPC induces negative transfer
# ============================================================================================

def stage_starts(run) -> list[tuple[int, str]]:
    """(first step, stage) of every stage after the first, from the per-step ``stage`` field."""
    out, last = [], None
    for r in sorted(run.train, key=lambda r: r["step"]):
        stage = stage_label(r)
        if last is not None and stage != last:
            out.append((int(r["step"]), stage))
        last = stage
    return out


def stage_label(record: dict) -> str:
    """A training record's stage without its blend suffix (``tpc:1/3 asr (blend 0.25)`` -> ``tpc:1/3 asr``)."""
    return str(record.get("stage", "")).split(" (blend")[0]


def _first_stage(run) -> str:
    return stage_label(min(run.train, key=lambda r: r["step"], default={}))


def _stage_tasks(stage: str) -> set[str]:
    """The tasks a TPC stage label names (``tpc:2/3 asr+did+ser``); empty for other labels."""
    head, _, tasks = stage.partition(" ")
    return {t for t in tasks.split("+") if t.isidentifier()} if head.startswith("tpc:") else set()


def _dev_metric(run, task: str) -> list[tuple[int, float]]:
    key = primary(task)[0]
    return sorted((int(r["step"]), float(r["metrics"][task][key])) for r in run.dev_eval
                  if isinstance((r.get("metrics") or {}).get(task, {}).get(key), int | float))


def transfer_changes(run) -> dict[tuple[int, str], float]:
    """Per (stage index, task trained before it): how much the task's dev metric worsened from the last
    evaluation before the stage began to the first one after (> 0: worse; WER up, F1/ROUGE down)."""
    out, starts = {}, stage_starts(run)
    for k, (start, _) in enumerate(starts, start=2):
        # The tasks of the stages before: named in the stage label ("tpc:2/3 asr+did+ser"); a task met
        # only in a blend window before the boundary is the new stage's, not an earlier one's.
        earlier = [_first_stage(run), *(stage for s, stage in starts if s < start)]
        trained = {t for stage in earlier for t in _stage_tasks(stage)} or {
            t for r in run.train if r["step"] < start for t in (r.get("task_loss") or {})}
        for task in sorted(trained):
            series = _dev_metric(run, task)
            before = [v for s, v in series if s < start]
            after = [v for s, v in series if s >= start]
            if before and after:
                out[(k, task)] = (before[-1] - after[0]) * (1 if primary(task)[1] else -1)
    return out


def claim_negative_transfer(groups) -> Claim:
    text = "TPC induces negative transfer (a task's dev metric drops after a stage adds tasks)"
    runs = groups.get("tpc", [])
    changes = [transfer_changes(r) for r in runs]
    keys = sorted({k for c in changes for k in c})
    if not keys:
        return _missing("d", text, "needs tpc runs with dev evaluations before and after a stage boundary")
    parts, found, improved = [], [], True
    for key in keys:
        side = Stat([c[key] for c in changes if key in c])
        stage, task = key
        metric = primary(task)[0]
        zero = Stat([0.0] * max(len(side.values), 2)) if len(side.values) > 1 else Stat([0.0])
        v, _ = verdict(side, zero, higher=True)
        if v == SUPPORTED:
            found.append(f"{task} at stage {stage}")
        improved &= side.mean <= TIE
        shown = Stat([abs(x) for x in side.values]) if side.mean < 0 else side
        parts.append(f"{task} {metric} after stage {stage} begins: {'worse' if side.mean > 0 else 'better'} by "
                     f"{shown.text(100)} points [{'drop' if v == SUPPORTED else 'no clear drop' if v == SPREAD else 'gain'}]")
    verdict_ = SUPPORTED if found else NOT_SUPPORTED if improved else SPREAD
    lead = f"drops beyond the seed spread: {', '.join(found)}; " if found else ""
    return Claim("d", text, verdict_, lead + "; ".join(parts) + " (last dev evaluation before the stage vs first after).")


# ============================================================================================
# (e) TPC→ADS gives the best balance
# ============================================================================================

def claim_best_balance(groups) -> Claim:
    text = "TPC→ADS gives the best balance (composite score and worst-task rank)"
    composite = {s: side for s, runs in groups.items() if (side := _side(runs, lambda r: r.value("composite", "composite")))}
    if "tpc_ads" not in composite or len(composite) < 2:
        return _missing("e", text, "needs tpc_ads and at least one other schedule with test metrics")
    ranked = sorted(composite, key=lambda s: -composite[s].mean)
    rival = ranked[0] if ranked[0] != "tpc_ads" else ranked[1]
    v_comp, note = verdict(composite["tpc_ads"], composite[rival], higher=True, scale=100, unit=" points")
    worst = worst_task_ranks(groups)
    best_worst = min(r for r, _ in worst.values()) if worst else None
    own = worst.get("tpc_ads")
    balanced = own is not None and own[0] == best_worst
    if v_comp == SUPPORTED and balanced:
        v = SUPPORTED
    elif v_comp == NOT_SUPPORTED or (own is not None and not balanced):
        v = NOT_SUPPORTED
    else:
        v = SPREAD
    evidence = (f"composite tpc_ads {composite['tpc_ads'].text(100)} (rank {ranked.index('tpc_ads') + 1} of "
                f"{len(ranked)}) vs {'best' if rival == ranked[0] else 'next'} {rival} {composite[rival].text(100)}{note}")
    if worst:
        evidence += "; worst-task rank (1 = best): " + ", ".join(f"{s} {r} ({t})" for s, (r, t) in worst.items())
    return Claim("e", text, v, evidence + ".")


def worst_task_ranks(groups) -> dict[str, tuple[int, str]]:
    """Each schedule's worst rank over the tasks (on mean primary metric), with that task."""
    ranks: dict[str, list[tuple[int, str]]] = {}
    for task in run_tasks(groups):
        key, higher = primary(task)
        means = {s: side.mean for s, runs in groups.items()
                 if (side := _side(runs, lambda r, t=task, k=key: r.value(t, k)))}
        if len(means) < 2:
            continue
        order = sorted(means, key=lambda s: -means[s] if higher else means[s])
        for s in means:
            # Ties share the better rank: a task every schedule fails does not make one the worst.
            rank = 1 + sum(abs(means[o] - means[s]) > TIE and order.index(o) < order.index(s) for o in order)
            ranks.setdefault(s, []).append((rank, task))
    return {s: max(rs) for s, rs in ranks.items()}


CLAIMS = (claim_converges_faster, claim_volatility, claim_paralinguistic, claim_negative_transfer, claim_best_balance)


def check_claims(groups) -> list[Claim]:
    """Every claim tested on ``groups`` (schedule -> runs; baselines left out by the caller)."""
    return [claim(groups) for claim in CLAIMS]
