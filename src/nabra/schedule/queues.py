"""Sampling without replacement inside groups of table rows, at a cost per draw independent of N.

Every schedule draws through :class:`GroupQueues`: the groups are the whole table (plain uniform),
the tasks (weighted uniform, TPC) or the (task, label/cluster) cells of ADS.
"""

from __future__ import annotations

import numpy as np


class GroupQueues:
    """Per-group queues of row indices, each drawn without replacement, epoch after epoch.

    All rows live in one flat array ``order``; group ``g`` owns the segment ``[start[g], end[g])``.
    Positions before ``ptr[g]`` hold the rows already used in the group's current epoch, positions
    from ``ptr[g]`` on the unused ones, in no particular order. A draw picks a random unused
    position and swaps it to ``ptr[g]`` (a lazy Fisher-Yates shuffle): no group is ever reshuffled
    as a whole and no draw scans, so a draw costs the same at N = 10k and N = 1M. A group whose
    rows are all used starts its next epoch (``ptr`` back to ``start``).
    """

    def __init__(self, group: np.ndarray, n_groups: int):
        """``group[i]``: the group of table row ``i`` (``-1``: row not sampled)."""
        group = np.asarray(group)
        rows = np.flatnonzero(group >= 0)
        # int32 halves the state saved in every checkpoint; tables stay far below 2**31 rows.
        self.order = rows[np.argsort(group[rows], kind="stable")].astype(np.int32)
        sizes = np.bincount(group[rows], minlength=n_groups)
        self.end = np.cumsum(sizes).tolist()
        self.start = [e - s for e, s in zip(self.end, sizes.tolist(), strict=True)]
        self.ptr = list(self.start)  # python ints: scalar access in the draw loop is 10x cheaper

    def __len__(self) -> int:
        return len(self.start)

    def size(self, g: int) -> int:
        """Rows in group ``g``."""
        return self.end[g] - self.start[g]

    def take(self, g: int, rng: np.random.Generator) -> int:
        """A random unused row of group ``g``, marked used."""
        self._refill(g)
        return self.take_at(g, int(rng.integers(self.ptr[g], self.end[g])))

    def pool(self, g: int, k: int, rng: np.random.Generator) -> np.ndarray:
        """Up to ``k`` random positions of unused rows of ``g`` (rows: ``order[positions]``); may repeat."""
        self._refill(g)
        lo, hi = self.ptr[g], self.end[g]
        if hi - lo <= k:
            return np.arange(lo, hi)
        return rng.integers(lo, hi, size=k)

    def take_at(self, g: int, pos: int) -> int:
        """Mark the row at unused position ``pos`` of group ``g`` used and return it."""
        p, order = self.ptr[g], self.order
        row = int(order[pos])
        order[pos] = order[p]
        order[p] = row
        self.ptr[g] = p + 1
        return row

    def take_where(self, g: int, ok: np.ndarray, rng: np.random.Generator, tries: int = 16) -> int:
        """Like :meth:`take`, restricted to rows with ``ok[row]``; ``g`` must hold at least one.

        A few random tries first (cheap when such rows are common); then a scan of the unused rows;
        when no unused row qualifies, a used one is repeated rather than skipping the rest of the epoch.
        """
        self._refill(g)
        lo, hi = self.ptr[g], self.end[g]
        for pos in rng.integers(lo, hi, size=tries).tolist():
            if ok[self.order[pos]]:
                return self.take_at(g, pos)
        unused = np.flatnonzero(ok[self.order[lo:hi]])
        if len(unused):
            return self.take_at(g, lo + int(unused[rng.integers(len(unused))]))
        used = self.order[self.start[g]:lo]
        return int(rng.choice(used[ok[used]]))

    def used_mask(self, n_rows: int) -> np.ndarray:
        """Bool per table row: used in its group's current epoch."""
        used = np.zeros(n_rows, np.bool_)
        for s, p in zip(self.start, self.ptr, strict=True):
            used[self.order[s:p]] = True
        return used

    def regroup(self, group: np.ndarray, n_groups: int) -> None:
        """Move rows to new groups, keeping them used for the rest of the epoch if they were."""
        used = self.used_mask(len(group))
        group = np.asarray(group, np.int64)
        fresh = GroupQueues(np.where(group >= 0, 2 * group + ~used, -1), 2 * n_groups)
        # Group g' of `fresh` pairs 2g (used rows) and 2g+1 (unused): merge them, pointer between.
        self.order = fresh.order
        self.start, self.ptr, self.end = fresh.start[0::2], fresh.end[0::2], fresh.end[1::2]

    def _refill(self, g: int) -> None:
        if self.ptr[g] >= self.end[g]:
            if self.end[g] == self.start[g]:
                raise ValueError(f"group {g} is empty")
            self.ptr[g] = self.start[g]

    def state_dict(self) -> dict:
        """Tensors and lists only: loadable with ``torch.load(weights_only=True)``."""
        import torch  # here: the schedule package stays torch-free to import (the config reads it)

        return {"order": torch.from_numpy(self.order.copy()), "start": list(self.start),
                "end": list(self.end), "ptr": list(self.ptr)}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` saved."""
        self.order = state["order"].numpy().astype(np.int32, copy=True)
        self.start, self.end, self.ptr = (list(map(int, state[k])) for k in ("start", "end", "ptr"))
