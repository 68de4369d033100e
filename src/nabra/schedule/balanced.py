"""``balanced``: ADS's task- and label-balanced slots, filled at random (the ablation of ADS).

Per batch the slots are shared equally by the tasks present and, inside the label tasks (``did``,
``ser`` and any declared one), equally by label, exactly as ADS shares them; each slot then takes a random unused example of its group, where
ADS takes the most novel one in the aligner space. ``ads − balanced`` is the value of diversity,
``balanced − uniform`` the value of balance. No aligner embeddings, no model pass.
"""

from __future__ import annotations

import numpy as np

from nabra.schedule.base import Schedule
from nabra.schedule.config import BalancedConfig
from nabra.schedule.queues import GroupQueues


class BalancedSchedule(Schedule):
    """Balanced slots: equal per task, equal per label inside a label task, each filled at random.

    Each example is used once per epoch of its group (per-group shuffled queues; a group that runs
    out starts its next epoch, so small labels are revisited more often: that is the balancing).
    :class:`~nabra.schedule.ads.ADSSchedule` is this schedule with k-means clusters as the groups of
    asr/ssum/tsum and a max-min cosine fill; both share every slot rule, ``max_repeats`` included.
    """

    name = "balanced"
    config_class = BalancedConfig

    def __init__(self, table, **kwargs):
        super().__init__(table, **kwargs)
        self.tasks = table.tasks_present()
        self.labelled = table.label_tasks()
        """Tasks whose groups are their labels (did, ser, declared ones); the others are one group each
        (ADS: embedding clusters)."""
        self._task_rot = 0
        self._group_rot = [0] * len(table.task_names)
        group, self.groups = self._group_rows(None)
        self.queues = GroupQueues(group, n_groups(self.groups))
        self.window = max(1, -(-len(table) // self.batch_size))
        """Steps of one epoch-equivalent (the window of ``max_repeats``)."""
        self.draws = [0] * len(self.queues)
        """Draws per group in the current window (``max_repeats``)."""

    def stage(self, step: int | None = None) -> str:
        return "balanced"

    def _fill(self, plan: list[int]) -> np.ndarray:
        """One row per slot of ``plan`` (group ids): a random unused member of the group."""
        return np.array([self.queues.take(g, self.rng) for g in plan], np.int64)

    def _group_rows(self, clusters: dict[str, np.ndarray] | None) -> tuple[np.ndarray, dict[str, list[int]]]:
        """Group id per row, and each task's group ids: labels for label tasks, clusters (or one group) else."""
        group = np.full(len(self.table), -1, np.int64)
        groups, n = {}, 0
        for t in self.tasks:
            rows = self.table.task_indices(t)
            key = self.table.label[rows] if t in self.labelled else (clusters or {}).get(t, np.zeros(len(rows)))
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
        return self._fill(plan)

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
        gs, ti = (open_groups or self.groups)[task], self.table.code(task)
        rot = self._group_rot[ti]
        out = [g for g in gs for _ in range(n // len(gs))]
        out += [gs[(rot + j) % len(gs)] for j in range(n % len(gs))]
        self._group_rot[ti] = (rot + n % len(gs)) % len(gs)
        return out

    def _state_dict(self) -> dict:
        return {"queues": self.queues.state_dict(),
                "groups": [len(self.groups.get(t, ())) for t in self.table.task_names],
                "task_rot": self._task_rot, "group_rot": list(self._group_rot),
                "draws": list(self.draws)}

    def _load_state_dict(self, state: dict) -> None:
        self.queues.load_state_dict(state["queues"])
        sizes, n, self.groups = [int(s) for s in state["groups"]], 0, {}
        for t, size in zip(self.table.task_names, sizes, strict=True):
            if size:
                self.groups[t] = list(range(n, n + size))
                n += size
        self._task_rot = int(state["task_rot"])
        self._group_rot = [int(r) for r in state["group_rot"]]
        self.draws = [int(d) for d in state.get("draws", [0] * len(self.queues))]

def n_groups(groups: dict[str, list[int]]) -> int:
    return sum(len(g) for g in groups.values())
