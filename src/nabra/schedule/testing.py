"""Synthetic schedule inputs for tests and benchmarks: random example tables and clustered embeddings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nabra.corpus.manifest import TASKS
from nabra.schedule.table import TEXT_ONLY, ExampleTable

LABEL_NAMES = {"did": ("EGY", "GLF", "LAV", "NOR", "MSA"), "ser": ("neutral", "happy", "sad", "angry", "surprised")}


def random_table(n: int, *, tasks: Sequence[str] = TASKS, probs: Sequence[float] | None = None,
                 n_labels: int = 5, balanced: bool = False, seed: int = 0,
                 label_tasks: Sequence[str] = ()) -> ExampleTable:
    """``n`` examples of ``tasks``: with ``probs`` (default equal) at random, or, when ``balanced``,
    round-robin over tasks and over ``n_labels`` labels inside did/ser and the declared
    ``label_tasks`` (tasks not built in; exact shares when ``n`` fits)."""
    rng = np.random.default_rng(seed)
    names = (*TASKS, *label_tasks)
    codes = np.array([names.index(t) for t in tasks], dtype=np.int8)
    if balanced:
        task = codes[np.arange(n) % len(codes)]
        label_draw = (np.arange(n) // len(codes)) % n_labels
    else:
        task = rng.choice(codes, size=n, p=probs)
        label_draw = rng.integers(0, n_labels, size=n)
    labelled_tasks = ("did", "ser", *label_tasks)
    labelled = np.isin(task, [names.index(t) for t in labelled_tasks])
    label = np.where(labelled, label_draw, TEXT_ONLY).astype(np.int16)
    ids = [f"u{i:07d}#{names[c]}" for i, c in enumerate(task.tolist())]
    label_names = {t: tuple(f"{t}{j}" for j in range(n_labels)) if n_labels > 5 or t not in LABEL_NAMES
                   else LABEL_NAMES[t][:n_labels] for t in labelled_tasks}
    return ExampleTable.from_arrays(ids, task, label=label, duration=rng.uniform(1, 20, n).astype(np.float32),
                                    label_names=label_names, task_names=names)


def clustered_embeddings(n: int, dim: int = 16, n_clusters: int = 8, spread: float = 0.1,
                         probs: Sequence[float] | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """float16 vectors [n, dim] around ``n_clusters`` random unit directions (drawn with ``probs``,
    default equal), and each row's cluster."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((n_clusters, dim))
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    cluster = rng.choice(n_clusters, size=n, p=probs)
    rows = centers[cluster] + spread / np.sqrt(dim) * rng.standard_normal((n, dim))
    return rows.astype(np.float16), cluster


def mean_pairwise_distance(vectors: np.ndarray, batches: Sequence[np.ndarray]) -> float:
    """Mean over ``batches`` of the mean pairwise cosine distance of their rows' vectors (diversity)."""
    out = []
    for b in batches:
        v = vectors[b].astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        out.append(1 - (v @ v.T)[np.triu_indices(len(b), 1)].mean())
    return float(np.mean(out))
