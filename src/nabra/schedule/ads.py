"""``ads``: Aligner-Based Diverse Sampling. Balanced slots, each filled with the most novel candidate.

Per batch: the slots are shared equally by the tasks present, then inside each label task (``did``,
``ser``, declared ones) equally by label and inside ``asr``/``ssum``/``tsum`` equally by k-means cluster of the aligner embeddings;
each slot takes, from a random pool of its group, the candidate farthest (cosine) from the examples
already in the batch. The per-batch cost is O(batch_size · pool_size · D), whatever the table size.
"""

from __future__ import annotations

import numpy as np

from nabra.errors import NabraError
from nabra.schedule.balanced import BalancedSchedule, n_groups
from nabra.schedule.config import ADSConfig

CHUNK = 65_536
"""Rows converted to float32 at a time: a million 256-d rows would need 1 GB at once."""


class ADSSchedule(BalancedSchedule):
    """Aligner-Based Diverse Sampling (see the module docstring): the slots of
    :class:`~nabra.schedule.balanced.BalancedSchedule`, with embedding clusters as the groups of
    asr/ssum/tsum and each slot filled by max-min cosine instead of at random.

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
        self.embeddings: np.ndarray | None = None
        """Unit-norm float16 [N, D] aligner embeddings, or None."""
        self.refreshes = 0

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
                        for t in self.tasks if t not in self.labelled}
            group, self.groups = self._group_rows(clusters)
            self.queues.regroup(group, n_groups(self.groups))
            self.draws = [0] * len(self.queues)  # new groups: the cap's window counts start again
            self.refreshes += 1

    def _fill(self, plan: list[int]) -> np.ndarray:
        """Greedy max-min: each slot takes the pool candidate least similar to its nearest pick so far
        (without embeddings: a random member, as ``balanced``)."""
        if self.embeddings is None:
            return super()._fill(plan)
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

    def _state_dict(self) -> dict:
        return {**super()._state_dict(), "refreshes": self.refreshes}

    def _load_state_dict(self, state: dict) -> None:
        super()._load_state_dict(state)
        self.refreshes = int(state["refreshes"])


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
