"""The metadata schedules see: one row per training example, in compact numpy arrays.

A schedule never opens audio; it picks rows of this table. At a million examples the arrays take
about 8 MB (plus the id strings), so every schedule can hold the whole training set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from nabra.corpus.manifest import TASKS
from nabra.errors import NabraError

TEXT_ONLY = -1
"""Label code of an example without a label (asr, ssum, tsum)."""


@dataclass(eq=False, repr=False)
class ExampleTable:
    """Compact metadata of all training examples: ids, task codes, label codes, durations, audio flags.

    ``task`` holds indices into ``task_names`` (the built-in :data:`nabra.corpus.manifest.TASKS`, then
    the run's declared tasks); ``label`` holds indices into ``label_names[task]`` (``-1`` when the
    example has no label); ``duration`` is NaN when unknown.
    """

    ids: list[str]
    task: np.ndarray
    """int8 task codes: indices into ``task_names``."""
    label: np.ndarray
    """int16 label codes per task's label set, -1 for none."""
    duration: np.ndarray
    """float32 seconds, NaN if unknown."""
    has_audio: np.ndarray
    """bool: the example feeds audio to the model (every task but ``tsum``)."""
    label_names: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Label names by task: code ``c`` of task ``t`` is ``label_names[t][c]``."""
    task_names: tuple[str, ...] = TASKS
    """The task of code ``c`` is ``task_names[c]``: the built-in five, then declared tasks."""

    def __post_init__(self):
        n = len(self.ids)
        self.task_names = tuple(self.task_names)
        if self.task_names[: len(TASKS)] != TASKS:
            raise NabraError(f"example table: task names must start with the built-in {', '.join(TASKS)}")
        for name in ("task", "label", "duration", "has_audio"):
            if len(getattr(self, name)) != n:
                raise NabraError(f"example table: {name} has {len(getattr(self, name))} rows, ids has {n}")
        if n and (self.task.min() < 0 or self.task.max() >= len(self.task_names)):
            raise NabraError(f"example table: task codes must lie in 0..{len(self.task_names) - 1}")
        # Indices per task, computed once: schedules ask for them often and N may be a million.
        self._by_task = {t: np.flatnonzero(self.task == code) for code, t in enumerate(self.task_names)}

    @classmethod
    def from_examples(cls, examples: Sequence, labels: dict[str, Sequence[str]] | None = None,
                      task_names: Sequence[str] | None = None) -> ExampleTable:
        """Build from :class:`nabra.tasks.Example` objects.

        ``labels`` maps each label task (did, ser, declared ones) to its label set (a ``LabelSet`` or
        names, in code order); by default the sorted labels that occur are used. A label outside a
        given set raises ``NabraError``. ``task_names``: the run's tasks (default: the built-in ones,
        then any other task of ``examples`` in order of appearance).
        """
        tasks = [e.task for e in examples]
        raw = [e.label for e in examples]
        names = _label_names(tasks, raw, labels)
        codes = {t: {name: i for i, name in enumerate(ns)} for t, ns in names.items()}
        label = np.full(len(examples), TEXT_ONLY, dtype=np.int16)
        for i, (t, lab) in enumerate(zip(tasks, raw, strict=True)):
            if lab is not None:
                if lab not in codes.get(t, {}):
                    raise NabraError(f"example {examples[i].id!r}: label {lab!r} is not in the {t} label set")
                label[i] = codes[t][lab]
        if task_names is None:
            task_names = (*TASKS, *dict.fromkeys(t for t in tasks if t not in TASKS))
        return cls.from_arrays(
            [e.id for e in examples], tasks, label=label,
            duration=[np.nan if e.duration is None else e.duration for e in examples],
            has_audio=[e.audio is not None for e in examples], label_names=names, task_names=task_names,
        )

    @classmethod
    def from_arrays(cls, ids: Sequence[str], task, *, label=None, duration=None, has_audio=None,
                    label_names: dict[str, Sequence[str]] | None = None,
                    task_names: Sequence[str] = TASKS) -> ExampleTable:
        """Build from arrays; ``task`` holds names or codes (into ``task_names``). Defaults: no
        labels, unknown durations, audio for every task but ``tsum``."""
        task_names = tuple(task_names)
        task = _task_codes(task, task_names)
        n = len(task)
        label = np.full(n, TEXT_ONLY, np.int16) if label is None else np.asarray(label, np.int16)
        duration = np.full(n, np.nan, np.float32) if duration is None else np.asarray(duration, np.float32)
        if has_audio is None:
            has_audio = task != TASKS.index("tsum")
        names = {t: tuple(v) for t, v in (label_names or {}).items()}
        return cls(list(ids), task, label, duration, np.asarray(has_audio, np.bool_), names, task_names)

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        counts = ", ".join(f"{t}={n}" for t, n in self.counts().items())
        return f"ExampleTable({len(self)} examples: {counts})"

    def task_indices(self, task: str) -> np.ndarray:
        """Row indices of ``task``'s examples (int64, ascending)."""
        if task not in self._by_task:
            raise NabraError(f"unknown task {task!r}; tasks are {', '.join(self.task_names)}")
        return self._by_task[task]

    def code(self, task: str) -> int:
        """The code of ``task`` (its index in ``task_names``)."""
        self.task_indices(task)  # the error naming the tasks
        return self.task_names.index(task)

    def label_tasks(self) -> tuple[str, ...]:
        """Present tasks whose examples carry labels (did, ser, declared classification tasks)."""
        return tuple(t for t in self.tasks_present() if (self.label[self._by_task[t]] != TEXT_ONLY).all())

    def tasks_present(self) -> tuple[str, ...]:
        """Tasks with at least one example, in canonical order."""
        return tuple(t for t in self.task_names if len(self._by_task[t]))

    def counts(self) -> dict[str, int]:
        """Number of examples per present task."""
        return {t: len(self._by_task[t]) for t in self.tasks_present()}

    def audio_tasks(self) -> tuple[str, ...]:
        """Present tasks whose examples all have audio: a slot of such a task is an audio slot."""
        return tuple(t for t in self.tasks_present() if self.has_audio[self._by_task[t]].all())


def _task_codes(task, names: tuple[str, ...]) -> np.ndarray:
    arr = np.asarray(task)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int8)
    lookup = {t: i for i, t in enumerate(names)}
    unknown = sorted(set(arr.tolist()) - lookup.keys())
    if unknown:
        raise NabraError(f"unknown task(s) {', '.join(map(str, unknown))}; tasks are {', '.join(names)}")
    return np.array([lookup[t] for t in arr.tolist()], dtype=np.int8)


def _label_names(tasks, raw, given) -> dict[str, tuple[str, ...]]:
    names = {t: tuple(getattr(v, "names", v)) for t, v in (given or {}).items()}
    for t in sorted({t for t, lab in zip(tasks, raw, strict=True) if lab is not None} - names.keys()):
        names[t] = tuple(sorted({lab for tt, lab in zip(tasks, raw, strict=True) if tt == t and lab is not None}))
    return names
