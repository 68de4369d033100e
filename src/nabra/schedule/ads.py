"""``ads``: Aligner-Based Diverse Sampling. Balanced slots, each filled with the most novel candidate.

Per batch: the slots are shared equally by the tasks present, then inside ``did``/``ser`` equally
by label and inside ``asr``/``ssum``/``tsum`` equally by k-means cluster of the aligner embeddings;
each slot takes, from a random pool of its group, the candidate farthest (cosine) from the examples
already in the batch. The per-batch cost is O(batch_size · pool_size · D), whatever the table size.
"""

from __future__ import annotations

import numpy as np

from nabra.corpus.manifest import TASKS
from nabra.errors import NabraError
from nabra.schedule.base import Schedule
from nabra.schedule.config import ADSConfig
from nabra.schedule.queues import GroupQueues

LABELLED = ("did", "ser")
"""Tasks whose groups are their labels; the other tasks are grouped by embedding cluster."""
CHUNK = 65_536
"""Rows converted to float32 at a time: a million 256-d rows would need 1 GB at once."""


class ADSSchedule(Schedule):
    """Aligner-Based Diverse Sampling (see the module docstring).

    Each example is used once per epoch of its group (per-group shuffled queues; a group that runs
    out starts its next epoch, so small labels are revisited more often: that is the balancing).
    Without embeddings (before the first :meth:`set_embeddings`), asr/ssum/tsum are one group each
    and each slot takes a random member of its group. Embeddings are not part of ``state_dict``:
    on resume, call ``set_embeddings(vectors, recluster=False)`` after ``load_state_dict`` (or
    ``set_embeddings`` first, then ``load_state_dict``, which restores the saved clusters).
    """

    name = "ads"
    config_class = ADSConfig
    uses_embeddings = True

    def __init__(self, table, **kwargs):
        super().__init__(table, **kwargs)
        self.tasks = table.tasks_present()
        self.embeddings: np.ndarray | None = None
        """Unit-norm float16 [N, D] aligner embeddings, or None."""
        self.refreshes = 0
        self._task_rot = 0
        self._group_rot = [0] * len(TASKS)
        group, self.groups = self._group_rows(None)
        self.queues = GroupQueues(group, _n_groups(self.groups))
        self.window = max(1, -(-len(table) // self.batch_size))
        """Steps of one epoch-equivalent (the window of ``max_repeats``)."""
        self.draws = [0] * len(self.queues)
        """Draws per group in the current window (``max_repeats``)."""

    @property
    def refresh_every(self) -> int:
        return self.config.refresh_every

    @property
    def embedding_dim(self) -> int:
        """Width the trainer reduces aligner embeddings to (0: the model's)."""
        return self.config.embedding_dim

    def needs_embeddings(self, step: int) -> bool:
        every = self.config.refresh_every
        return self.embeddings is None or bool(every and step and step % every == 0)

    def stage(self, step: int | None = None) -> str:
        return "ads" if self.embeddings is not None else "ads (no embeddings)"

    def set_embeddings(self, vectors: np.ndarray, *, recluster: bool = True, normalized: bool = False) -> None:
        """Use ``vectors`` [len(table), D] (one per row); held as unit-norm float16 (``normalized``:
        they already are, e.g. a read-only memory map shared by the processes of a node: kept as is).

        ``recluster``: refit the k-means clusters of asr/ssum/tsum and regroup their rows; rows
        already used in their group's current epoch stay used.
        """
        if vectors.ndim != 2 or len(vectors) != len(self.table):
            raise NabraError(f"ads: embeddings must be [{len(self.table)}, D], got {list(vectors.shape)}")
        self.embeddings = vectors if normalized and vectors.dtype == np.float16 else unit_float16(vectors)
        if recluster:
            seed = int(np.random.SeedSequence([self.seed, self.refreshes]).generate_state(1)[0])
            clusters = {t: kmeans_labels(self.embeddings, self.table.task_indices(t), self.config.n_clusters,
                                         self.config.cluster_sample, seed)
                        for t in self.tasks if t not in LABELLED}
            group, self.groups = self._group_rows(clusters)
            self.queues.regroup(group, _n_groups(self.groups))
            self.draws = [0] * len(self.queues)  # new groups: the cap's window counts start again
            self.refreshes += 1

    def _group_rows(self, clusters: dict[str, np.ndarray] | None) -> tuple[np.ndarray, dict[str, list[int]]]:
        """Group id per row, and each task's group ids: labels for did/ser, clusters (or one group) else."""
        group = np.full(len(self.table), -1, np.int64)
        groups, n = {}, 0
        for t in self.tasks:
            rows = self.table.task_indices(t)
            key = self.table.label[rows] if t in LABELLED else (clusters or {}).get(t, np.zeros(len(rows)))
            values, local = np.unique(key, return_inverse=True)
            group[rows] = n + local
            groups[t] = list(range(n, n + len(values)))
            n += len(values)
        return group, groups

    def _next_batch(self) -> np.ndarray:
        open_groups = self._open_groups()
        plan = [g for t, n in self._task_slots(open_groups).items() for g in self._group_slots(t, n, open_groups)]
        if open_groups is not None:
            plan = self._within_cap(plan)
        plan = [plan[i] for i in self.rng.permutation(len(plan)).tolist()]
        for g in plan:
            self.draws[g] += 1
        if self.embeddings is None:
            return np.array([self.queues.take(g, self.rng) for g in plan])
        return self._diverse_fill(plan)

    def _within_cap(self, plan: list[int]) -> list[int]:
        """The slots of a group past its quota go to groups with quota left (audio tasks first, so the
        batch keeps its audio), in turn; with none left, they stay (the cap yields rather than stall)."""
        cap, size = self.config.max_repeats, self.queues.size
        left = {g: cap * size(g) - self.draws[g] for g in range(len(self.queues))}
        kept, excess = [], 0
        for g in plan:
            if left[g] > 0:
                kept.append(g)
                left[g] -= 1
            else:
                excess += 1
        order = [t for t in self.audio_tasks if t in self.groups] + [t for t in self.tasks if t not in self.audio_tasks]
        donors = [g for t in order for g in self.groups[t] if left[g] > 0]
        while excess and donors:
            for g in list(donors):
                if not excess:
                    break
                kept.append(g)
                left[g] -= 1
                excess -= 1
                if left[g] == 0:
                    donors.remove(g)
        return kept + [plan[0]] * excess if excess else kept

    def _open_groups(self) -> dict[str, list[int]] | None:
        """``max_repeats``: each task's groups still under their cap in this window (None: no cap)."""
        cap = self.config.max_repeats
        if not cap:
            return None
        if self.step % self.window == 0:  # a new window: every group starts a fresh epoch, so each of its
            self.draws = [0] * len(self.queues)  # rows is drawn at most max_repeats times in the window
            self.queues.ptr = list(self.queues.start)
        open_groups = {t: [g for g in gs if self.draws[g] < cap * self.queues.size(g)] for t, gs in self.groups.items()}
        if not any(open_groups[t] for t in self.audio_tasks if t in open_groups):
            return None  # every audio group capped (a tiny table): the cap yields rather than stall
        return open_groups

    def _diverse_fill(self, plan: list[int]) -> np.ndarray:
        """Greedy max-min: each slot takes the pool candidate least similar to its nearest pick so far."""
        emb, queues, rng = self.embeddings, self.queues, self.rng
        rows = np.empty(len(plan), np.int64)
        picked = np.empty((len(plan), emb.shape[1]), np.float32)
        for i, g in enumerate(plan):
            if i == 0:
                row = queues.take(g, rng)
            else:
                pos = queues.pool(g, self.config.pool_size, rng)
                sim = f32(emb[queues.order[pos]]) @ picked[:i].T
                row = queues.take_at(g, int(pos[np.argmin(sim.max(axis=1))]))
            rows[i] = row
            picked[i] = emb[row]
        return rows

    def _task_slots(self, open_groups: dict[str, list[int]] | None = None) -> dict[str, int]:
        """Equal slots per task; the remainder rotates across batches; text-only slots capped for audio.
        With ``open_groups`` (``max_repeats``), only tasks with an open group share the slots."""
        tasks = [t for t in self.tasks if open_groups is None or open_groups[t]]
        audio = [t for t in self.audio_tasks if t in tasks]
        n, b = len(tasks), self.batch_size
        counts = dict.fromkeys(tasks, b // n)
        for j in range(b % n):
            counts[tasks[(self._task_rot + j) % n]] += 1
        self._task_rot = (self._task_rot + b % n) % len(self.tasks)
        text = [t for t in tasks if t not in audio]
        surplus = sum(counts[t] for t in text) - (b - self.min_audio)
        for j in range(max(surplus, 0)):
            counts[max(text, key=counts.__getitem__)] -= 1
            counts[audio[(self.step + j) % len(audio)]] += 1
        return counts

    def _group_slots(self, task: str, n: int, open_groups: dict[str, list[int]] | None = None) -> list[int]:
        """``n`` slots shared equally by ``task``'s (open) groups; the remainder rotates across batches."""
        gs, ti = (open_groups or self.groups)[task], TASKS.index(task)
        rot = self._group_rot[ti]
        out = [g for g in gs for _ in range(n // len(gs))]
        out += [gs[(rot + j) % len(gs)] for j in range(n % len(gs))]
        self._group_rot[ti] = (rot + n % len(gs)) % len(gs)
        return out

    def _state_dict(self) -> dict:
        return {"queues": self.queues.state_dict(), "groups": [len(self.groups.get(t, ())) for t in TASKS],
                "task_rot": self._task_rot, "group_rot": list(self._group_rot), "refreshes": self.refreshes,
                "draws": list(self.draws)}

    def _load_state_dict(self, state: dict) -> None:
        self.queues.load_state_dict(state["queues"])
        sizes, n, self.groups = [int(s) for s in state["groups"]], 0, {}
        for t, size in zip(TASKS, sizes, strict=True):
            if size:
                self.groups[t] = list(range(n, n + size))
                n += size
        self._task_rot, self.refreshes = int(state["task_rot"]), int(state["refreshes"])
        self._group_rot = [int(r) for r in state["group_rot"]]
        self.draws = [int(d) for d in state.get("draws", [0] * len(self.queues))]


def _n_groups(groups: dict[str, list[int]]) -> int:
    return sum(len(g) for g in groups.values())


def unit_float16(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm, as float16 (zero rows stay zero), converted a chunk at a time."""
    out = np.empty(vectors.shape, np.float16)
    for i in range(0, len(vectors), CHUNK):
        x = np.asarray(vectors[i:i + CHUNK], dtype=np.float32)
        out[i:i + CHUNK] = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return out


def kmeans_labels(emb: np.ndarray, rows: np.ndarray, k: int, sample: int, seed: int) -> np.ndarray:
    """k-means cluster of each of ``emb[rows]``: fitted on at most ``sample`` rows, then all assigned.

    Vectors are unit-norm, so Euclidean k-means groups by cosine similarity.
    """
    try:
        from sklearn.cluster import MiniBatchKMeans
        from threadpoolctl import threadpool_limits
    except ImportError as e:
        raise NabraError("ads clusters need scikit-learn: pip install 'nabra[eval]'") from e
    k = min(k, len(rows))
    if k <= 1:
        return np.zeros(len(rows), np.int64)
    rng = np.random.default_rng(seed)
    fit_rows = rows if len(rows) <= sample else np.sort(rng.choice(rows, sample, replace=False))
    # One thread: on a small sample, OpenMP start-up and oversubscription (the trainer's torch
    # threads) cost 10x the work itself (measured: 1 s vs 0.1 s for 20k x 256 on 2 cores).
    with threadpool_limits(1):
        km = MiniBatchKMeans(n_clusters=k, random_state=seed % 2**32, n_init=3, batch_size=2048)
        km.fit(f32(emb[fit_rows]))
    centers = km.cluster_centers_.astype(np.float32)
    bias = 0.5 * (centers**2).sum(axis=1)  # nearest centre: argmax of x.c - |c|^2/2
    labels = np.empty(len(rows), np.int64)
    for i in range(0, len(rows), CHUNK):
        labels[i:i + CHUNK] = np.argmax(f32(emb[rows[i:i + CHUNK]]) @ centers.T - bias, axis=1)
    return labels


def f32(x: np.ndarray) -> np.ndarray:
    """float16 -> float32 through torch: numpy's conversion is 4x slower and sits on the per-slot path."""
    import torch  # here, not at the top: the schedule package stays torch-free to import (the config reads it)

    return torch.from_numpy(np.ascontiguousarray(x)).float().numpy()
