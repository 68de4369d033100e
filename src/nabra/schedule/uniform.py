"""``uniform``: the baseline. Every batch is drawn at random from the union of all task examples."""

from __future__ import annotations

import numpy as np

from nabra.errors import NabraError
from nabra.schedule.base import Schedule, draw_tasks, task_groups, task_probs
from nabra.schedule.config import UniformConfig
from nabra.schedule.queues import GroupQueues


class UniformSchedule(Schedule):
    """Uniform task mixing.

    With no weights and T = 1 ("plain"), batches are consecutive draws from one shuffled queue of
    every example: each example once per epoch, a fresh order each epoch. Otherwise each slot's
    task is drawn from p(task) and filled with the next example of that task's own shuffled queue,
    so every task goes through its own epochs at its own pace.
    """

    name = "uniform"
    config_class = UniformConfig

    def __init__(self, table, **kwargs):
        super().__init__(table, **kwargs)
        counts = table.counts()
        unknown = sorted(set(self.config.weights) - set(table.task_names))
        if unknown:
            raise NabraError(f"uniform: weights for unknown task(s) {', '.join(unknown)}; "
                             f"tasks are {', '.join(table.task_names)}")
        self.tasks = tuple(counts)
        self.probs = task_probs(counts, self.config.weights, self.config.temperature)
        weights = {self.config.weights.get(t, 1.0) for t in self.tasks}
        self.plain = len(weights) == 1 and self.config.temperature == 1.0
        self._audio = np.array([t in self.audio_tasks for t in self.tasks])
        if self.plain:
            self.queues = GroupQueues(np.zeros(len(table), np.int64), 1)
        else:
            self.queues = GroupQueues(task_groups(table, self.tasks), len(self.tasks))

    def mix(self, step: int | None = None) -> dict[str, float]:
        """p(task) per present task (in expectation, for the plain case); the same at every step."""
        return dict(zip(self.tasks, self.probs.tolist(), strict=True))

    def stage(self, step: int | None = None) -> str:
        return "uniform"

    def _next_batch(self) -> np.ndarray:
        if self.plain:
            return self._union_batch()
        slots = draw_tasks(self.rng, self.probs, self._audio, self.batch_size, self.min_audio)
        return np.array([self.queues.take(s, self.rng) for s in slots.tolist()])

    def _union_batch(self) -> np.ndarray:
        has_audio, rows, need = self.table.has_audio, [], self.min_audio
        for left in range(self.batch_size, 0, -1):
            # Only the last slots are forced to audio, and only if the batch is still short of it.
            forced = need >= left
            row = self.queues.take_where(0, has_audio, self.rng) if forced else self.queues.take(0, self.rng)
            need -= bool(has_audio[row])
            rows.append(row)
        return np.array(rows)

    def _state_dict(self) -> dict:
        return {"queues": self.queues.state_dict()}

    def _load_state_dict(self, state: dict) -> None:
        self.queues.load_state_dict(state["queues"])
