"""``tpc``: Task-Progressive Curriculum. Training runs in stages, each adding tasks to the mix."""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass

import numpy as np

from nabra.errors import NabraError
from nabra.schedule.base import Schedule, draw_tasks, task_groups, task_probs
from nabra.schedule.config import AUTO_BLEND, TPCConfig
from nabra.schedule.queues import GroupQueues

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Stage:
    """One resolved stage: its tasks (present in the data), its steps ``[start, end)``, its mix."""

    tasks: tuple[str, ...]
    start: int
    end: int
    probs: np.ndarray
    """p(task) over the table's ``task_names``."""


class TPCSchedule(Schedule):
    """Task-Progressive Curriculum: stages of growing task mixes (default asr → +did +ser → +ssum +tsum).

    Each slot's task is drawn from the current stage's mix and filled from that task's own shuffled
    queue (each example once per task epoch). Tasks absent from the data are dropped from every
    stage; a stage left empty gives its steps to the next stage (the previous one when it is last).
    """

    name = "tpc"
    config_class = TPCConfig

    def __init__(self, table, **kwargs):
        super().__init__(table, **kwargs)
        self.stages = resolve_stages(self.config, table.counts(), self.total_steps, table.task_names)
        self.blend_width = blend_width(self.stages, self.config.blend_steps)
        """Steps of each boundary's blend window (0: hard switches)."""
        self._starts = [s.start for s in self.stages]
        names = table.task_names
        self._audio = np.array([t in self.audio_tasks for t in names])
        self.queues = GroupQueues(task_groups(table, names), len(names))

    @property
    def boundaries(self) -> list[int]:
        """First step of every stage but the first."""
        return self._starts[1:]

    def stage_index(self, step: int | None = None) -> int:
        """Index of the stage ``step`` (default: the next batch's) belongs to."""
        step = self.step if step is None else step
        return max(bisect.bisect_right(self._starts, step) - 1, 0)

    def mix(self, step: int | None = None) -> dict[str, float]:
        """p(task) at ``step``, blend included."""
        return dict(zip(self.table.task_names, self._probs(self.step if step is None else step).tolist(), strict=True))

    def stage(self, step: int | None = None) -> str:
        step = self.step if step is None else step
        k = self.stage_index(step)
        text = f"tpc:{k + 1}/{len(self.stages)} {'+'.join(self.stages[k].tasks)}"
        blend = self._blend(step)
        return text if blend is None else f"{text} (blend {blend[1]:.2f})"

    def _blend(self, step: int) -> tuple[int, float] | None:
        """(next stage, weight of its mix) when ``step`` lies in a blend window."""
        width = self.blend_width
        if not width:
            return None
        for k in range(1, len(self.stages)):
            lo = self.stages[k].start - width // 2
            if lo <= step < lo + width:
                return k, (step - lo + 0.5) / width
        return None

    def _probs(self, step: int) -> np.ndarray:
        blend = self._blend(step)
        if blend is None:
            return self.stages[self.stage_index(step)].probs
        k, alpha = blend
        return (1 - alpha) * self.stages[k - 1].probs + alpha * self.stages[k].probs

    def _next_batch(self) -> np.ndarray:
        slots = draw_tasks(self.rng, self._probs(self.step), self._audio, self.batch_size, self.min_audio)
        return np.array([self.queues.take(s, self.rng) for s in slots.tolist()])

    def _state_dict(self) -> dict:
        return {"queues": self.queues.state_dict()}

    def _load_state_dict(self, state: dict) -> None:
        self.queues.load_state_dict(state["queues"])


def resolve_stages(config: TPCConfig, counts: dict[str, int], total_steps: int,
                   task_names: tuple[str, ...]) -> list[Stage]:
    """The stages as they run on this data: absent tasks dropped, empty stages merged, mixes computed
    (over ``task_names``, the table's task codes)."""
    unknown = sorted({t for s in config.stages for t in s} - set(task_names))
    if unknown:
        raise NabraError(f"tpc: stages name unknown task(s) {', '.join(unknown)}; tasks are {', '.join(task_names)}")
    kept: list[list] = []  # [tasks, length]
    carry = 0
    for i, (tasks, length) in enumerate(zip(config.stages, _lengths(config, total_steps), strict=True)):
        tasks = [t for t in tasks if t in counts]
        if not tasks:
            log.info("tpc: stage %d (%s) has no data; its %d steps go to the next stage",
                     i + 1, "+".join(config.stages[i]), length)
            carry += length
            continue
        kept.append([tasks, length + carry])
        carry = 0
    if not kept:
        raise NabraError(f"tpc: no stage task is in the data (data has {', '.join(counts)})")
    kept[-1][1] += carry
    stages, seen, start = [], set(), 0
    for tasks, length in kept:
        weights = {t: config.replay if t in seen else 1.0 for t in tasks}
        p = task_probs({t: counts[t] for t in tasks}, weights, config.temperature)
        probs = np.zeros(len(task_names))
        probs[[task_names.index(t) for t in tasks]] = p
        stages.append(Stage(tuple(tasks), start, start + length, probs))
        seen.update(tasks)
        start += length
    if config.blend_steps is not None:
        _check_blend(stages, config.blend_steps)
    return stages


def blend_width(stages: list[Stage], blend_steps: int | None) -> int:
    """The blend window: ``blend_steps`` as given, or by default ``AUTO_BLEND`` steps capped at the
    shortest stage but the last (neighbouring windows never overlap)."""
    if blend_steps is not None:
        return blend_steps
    inner = [s.end - s.start for s in stages[:-1]]
    return min([AUTO_BLEND, *inner]) if inner else 0


def _lengths(config: TPCConfig, total_steps: int) -> list[int]:
    if config.steps:
        if sum(config.steps) != total_steps:
            log.warning("tpc: stage steps sum to %d, total_steps is %d", sum(config.steps), total_steps)
        return [int(s) for s in config.steps]
    fractions = config.fractions or [1 / len(config.stages)] * len(config.stages)
    ends = np.rint(np.cumsum(fractions) * total_steps).astype(int)
    ends[-1] = total_steps  # float rounding must not lose the last step
    return np.diff(ends, prepend=0).tolist()


def _check_blend(stages: list[Stage], width: int) -> None:
    short = [i + 1 for i, s in enumerate(stages[:-1]) if s.end - s.start < width]
    if width and short:
        raise NabraError(f"tpc: blend_steps={width} is longer than stage(s) {short}; "
                         "windows of neighbouring boundaries would overlap")
