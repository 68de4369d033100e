"""Micro-batches by token budget: how one step lays its global batch onto micro-batches and ranks.

The schedule decides *which* examples form the global batch; this module decides only how they are
cut into forward passes. With ``train.micro_batch_tokens`` a micro-batch holds as many examples as
fit the budget (what a forward pass computes: the padded rectangle, or with ``collate.packing`` the
sum of the lengths), so a micro-batch of one 300-s clip and one of forty 2-s clips cost about the
same memory — the field's answer to lengths that span two orders of magnitude (Lhotse's
``max_duration`` buckets in NeMo, verl's ``use_dynamic_bsz``).

:func:`plan_micro_batches` is a pure function of the global batch and the lengths: every rank
computes the same plan with no communication, and a resumed run lays its steps out as before.

1. Packed (``collate.packing``): first-fit decreasing — the examples, longest first, each go into the
   first micro-batch where they fit, the audio examples first. Padded: runs of similar lengths, cut
   where padding plus a per-micro-batch charge is least (an exact dynamic programme). Either way every
   micro-batch holds audio (a text-only micro-batch skips the audio tower and hangs FSDP/ZeRO-3 ranks
   that run it): one without takes an audio example from a micro-batch holding two.
2. Longest-processing-time first: the micro-batches, costliest first, each go to the rank with the
   least tokens so far.
3. Every rank gets the same number of micro-batches: a rank with fewer gets stand-ins (``None``),
   which the step runs at zero weight (the mechanism a micro-batch that lost all its examples uses),
   so DDP/FSDP ranks stay in step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nabra.errors import NabraError


def cost(lengths: list[int], packing: bool) -> int:
    """Tokens a forward pass over examples of ``lengths`` computes: their sum packed, else the padded
    rectangle (count x the longest)."""
    if not lengths:
        return 0
    return sum(lengths) if packing else len(lengths) * max(lengths)


@dataclass
class Plan:
    """One step's micro-batches: ``ranks[r]`` is rank r's list of micro-batches (arrays of example rows),
    ``None`` for a stand-in; every rank's list has the same length."""

    ranks: list[list[np.ndarray | None]]
    costs: list[list[int]] = field(default_factory=list)
    """Tokens computed by each micro-batch (0 for a stand-in), as laid out in ``ranks``."""
    over_budget: int = 0
    """Micro-batches above the budget (an example longer than the budget alone, or a text-only
    micro-batch merged into one with audio)."""

    @property
    def per_rank(self) -> int:
        return len(self.ranks[0])

    def micro_batches(self) -> list[np.ndarray]:
        """Every real micro-batch, rank by rank."""
        return [m for rank in self.ranks for m in rank if m is not None]


def plan_micro_batches(batch: np.ndarray, lengths: np.ndarray, has_audio: np.ndarray, world: int, budget: int,
                       *, packing: bool = False) -> Plan:
    """The micro-batches of ``batch`` (example rows) for ``world`` ranks, each costing at most
    ``budget`` tokens (see the module docstring). ``lengths``/``has_audio``: per example row."""
    if world < 1 or budget < 1:
        raise NabraError(f"bad micro-batch plan: world {world}, budget {budget}")
    rows = np.asarray(batch, dtype=np.int64)
    if not has_audio[rows].any() and has_audio.any():
        raise NabraError("a global batch without audio examples cannot give every micro-batch its audio")
    # Longest first; ties in the batch's own order (stable): the plan depends on nothing else.
    order = rows[np.argsort(-lengths[rows], kind="stable")]
    audio = [int(i) for i in order if has_audio[i]]
    if packing:
        bins, sizes = _first_fit(audio, [int(i) for i in order if not has_audio[i]], lengths, budget)
    else:
        bins, sizes = _runs(order.tolist(), lengths, budget)
    if audio:
        _give_audio(bins, sizes, has_audio, budget, packing)
    # Fewer micro-batches than ranks: split the largest (two halves, each with audio) while one can be.
    while len(bins) < world:
        j = _splittable(bins, has_audio)
        if j is None:
            break
        b = bins.pop(j)
        s = sizes.pop(j)
        first = [k for k in range(len(b)) if k % 2 == 0]
        second = [k for k in range(len(b)) if k % 2 == 1]
        for half in (first, second):
            bins.append([b[k] for k in half])
            sizes.append([s[k] for k in half])
    costs = [cost(s, packing) for s in sizes]
    # LPT: costliest first, each to the rank with the fewest tokens so far (then the fewest micro-batches).
    load = [0] * world
    assigned: list[list[int]] = [[] for _ in range(world)]
    for j in sorted(range(len(bins)), key=lambda j: (-costs[j], j)):
        r = min(range(world), key=lambda r: (load[r], len(assigned[r]), r))
        assigned[r].append(j)
        load[r] += costs[j]
    per_rank = max(len(a) for a in assigned)
    ranks = [[np.asarray(bins[j], dtype=np.int64) for j in a] + [None] * (per_rank - len(a)) for a in assigned]
    rank_costs = [[costs[j] for j in a] + [0] * (per_rank - len(a)) for a in assigned]
    return Plan(ranks, rank_costs, sum(c > budget for c in costs))


OVERHEAD = 256
"""What one more padded micro-batch is charged, in tokens: a forward's fixed cost (kernel launches,
hooks, a sync) — on a GPU a 7B model computes a few hundred tokens in that time. Padding that costs
more is cut away: on mix (b) of bench_batching.py at the 7B recipe's budget, padding falls from 27 %
(equal counts, sorted) to ~14 %, for ~11 micro-batches a step instead of 8."""


def _first_fit(audio: list[int], text: list[int], lengths, budget: int) -> tuple[list[list[int]], list[list[int]]]:
    """Packed micro-batches by first-fit decreasing (the audio examples placed first, each opening a
    micro-batch only when it fits nowhere)."""
    bins: list[list[int]] = []
    sizes: list[list[int]] = []
    for group in (audio, text):
        for i in group:
            n = int(lengths[i])
            for b, s in zip(bins, sizes, strict=True):
                if sum(s) + n <= budget:
                    b.append(i)
                    s.append(n)
                    break
            else:
                bins.append([i])
                sizes.append([n])
    return bins, sizes


def _runs(order: list[int], lengths, budget: int) -> tuple[list[list[int]], list[list[int]]]:
    """Padded micro-batches: runs of the longest-first order (each padded to its first, longest example),
    cut where the padded tokens plus :data:`OVERHEAD` per micro-batch are least — an exact dynamic
    programme over the cut points (first-fit would pad a 300-s clip's micro-batch with 2-s clips)."""
    n = len(order)
    size = [int(lengths[i]) for i in order]
    best = [0.0] + [float("inf")] * n
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(j - 1, -1, -1):  # the run order[i:j], padded to size[i]
            padded = (j - i) * size[i]
            if padded > budget and i < j - 1:
                break
            value = best[i] + padded + OVERHEAD
            if value < best[j]:
                best[j], cut[j] = value, i
    bins: list[list[int]] = []
    j = n
    while j > 0:
        bins.append(order[cut[j]:j])
        j = cut[j]
    bins.reverse()
    return bins, [[int(lengths[i]) for i in b] for b in bins]


def _give_audio(bins: list[list[int]], sizes: list[list[int]], has_audio: np.ndarray, budget: int,
                packing: bool) -> None:
    """Every micro-batch holds audio: a text-only one takes the shortest audio example of a micro-batch
    holding two or more where it fits; failing that, it is merged into the micro-batch it costs least to."""
    j = 0
    while j < len(bins):
        if any(has_audio[i] for i in bins[j]):
            j += 1
            continue
        moved = False
        donors = [d for d in range(len(bins)) if sum(bool(has_audio[i]) for i in bins[d]) >= 2]
        for d in donors:
            k = max((k for k, i in enumerate(bins[d]) if has_audio[i]), key=lambda k: (-sizes[d][k], k))
            if cost([*sizes[j], sizes[d][k]], packing) <= budget:
                bins[j].append(bins[d].pop(k))
                sizes[j].append(sizes[d].pop(k))
                moved = True
                break
        if moved:
            j += 1
            continue
        b, s = bins.pop(j), sizes.pop(j)
        target = min((t for t in range(len(bins)) if any(has_audio[i] for i in bins[t])),
                     key=lambda t: (cost(sizes[t] + s, packing), t))
        bins[target] += b
        sizes[target] += s


def _splittable(bins: list[list[int]], has_audio: np.ndarray) -> int | None:
    """The micro-batch with the most examples whose alternate halves both hold audio, or ``None``."""
    best = None
    for j, b in enumerate(bins):
        halves = len(b) >= 2 and any(has_audio[i] for i in b[0::2]) and any(has_audio[i] for i in b[1::2])
        if halves and (best is None or len(b) > len(bins[best])):
            best = j
    return best


def token_batches(lengths, budget: int | None, *, packing: bool = False, max_count: int | None = None) -> list[list[int]]:
    """Consecutive batches of positions ``0..len(lengths)-1``, in that order, each costing at most ``budget``
    tokens (an example over it goes alone) and holding at most ``max_count`` examples: how evaluation,
    dev losses and the embedding pass batch by tokens (give them sorted by length, for little padding).
    ``budget`` ``None``: batches of ``max_count``."""
    out: list[list[int]] = []
    sizes: list[int] = []
    for i, n in enumerate(int(x) for x in lengths):
        full = max_count is not None and len(sizes) >= max_count
        if out and not full and (budget is None or cost([*sizes, n], packing) <= budget):
            out[-1].append(i)
            sizes.append(n)
        else:
            out.append([i])
            sizes = [n]
    return out
