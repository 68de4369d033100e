"""``adaptive``: online task weights moved by the dev losses, label-balanced inside each task.

At every dev evaluation (``train.eval_every``) the schedule reads each task's dev loss ``L_t`` and
its loss at the start of training ``L_t(0)`` (the recipe evaluates once before step 1), and takes
one exponentiated-gradient step on the relative loss::

    log w_t  +=  eta * L_t / L_t(0)            share_t = (1 - n * floor) * softmax(log w)_t + floor

so weight moves toward the tasks whose loss has fallen least relative to where it started, and no
task's share ever falls below ``floor``. This is DoReMi's domain-weight update (Xie et al. 2023,
"DoReMi: Optimizing Data Mixtures Speeds Up Language Model Pretraining", Algorithm 1: multiplicative
update by the per-domain excess loss, then mixing with the uniform distribution), with the loss
relative to its own start in place of the excess loss over a reference model — Nabra has no
reference model to train first. Each batch gives task ``t`` ``share_t * batch_size`` slots (rounded
with a carry, so the shares hold exactly over steps); inside a label task (did, ser, a declared one) the
slots are shared equally by label and each is filled at random, as in ``balanced``.
"""

from __future__ import annotations

import numpy as np

from nabra.schedule.balanced import BalancedSchedule
from nabra.schedule.config import AdaptiveConfig


class AdaptiveSchedule(BalancedSchedule):
    """Task shares adapted online by the dev losses (see the module docstring).

    Before the first :meth:`observe` the shares are the start shares (``start``: equal, or
    proportional to the example counts). The log-weights, the start losses, the current shares and
    the slot carry are part of the state: a resumed run draws the batches it would have.
    """

    name = "adaptive"
    config_class = AdaptiveConfig

    def __init__(self, table, **kwargs):
        super().__init__(table, **kwargs)
        counts = np.array([len(table.task_indices(t)) for t in self.tasks], np.float64)
        start = counts / counts.sum() if self.config.start == "data" else np.full(len(self.tasks), 1 / len(self.tasks))
        self.log_w = np.log(np.maximum(start, 1e-12))
        """Log task weights, one per present task (``self.tasks`` order)."""
        self.shares = self._floored(start)
        """Share of every batch per task: what the slots follow."""
        self.start_loss: dict[str, float] = {}
        """Each task's first observed dev loss (the reference of the relative loss)."""
        self.credit = np.zeros(len(self.tasks))
        """Fractional slots carried to the next batch (rounding with a carry)."""
        self.updates = 0

    @property
    def dev_loss_setting(self) -> str:
        return "schedule.name: adaptive"

    def stage(self, step: int | None = None) -> str:
        return "adaptive"

    def task_weights(self) -> dict[str, float]:
        return {t: float(s) for t, s in zip(self.tasks, self.shares, strict=True)}

    def observe(self, step: int, dev_loss: dict[str, float]) -> str | None:
        """One update of the task shares from ``dev_loss`` (the first call only records the start)."""
        losses = {t: float(v) for t, v in dev_loss.items() if t in self.tasks and np.isfinite(v) and v > 0}
        new = {t: v for t, v in losses.items() if t not in self.start_loss}
        self.start_loss.update(new)
        rel = {t: v / self.start_loss[t] for t, v in losses.items() if t not in new}
        if not rel:
            return f"adaptive: start dev losses recorded at step {step}; shares {_shares(self.task_weights())}"
        for i, t in enumerate(self.tasks):
            if t in rel:
                self.log_w[i] += self.config.eta * rel[t]
        alpha = np.exp(self.log_w - self.log_w.max())
        self.shares = self._floored(alpha / alpha.sum())
        self.updates += 1
        slowest = max(rel, key=rel.__getitem__)
        return (f"adaptive: step {step}, dev loss relative to start "
                f"{', '.join(f'{t} {r:.2f}' for t, r in rel.items())}; shares {_shares(self.task_weights())} "
                f"(most weight to {slowest}: its loss fell least)")

    def _floored(self, p: np.ndarray) -> np.ndarray:
        floor = self.config.floor
        return (1 - len(p) * floor) * p + floor

    def _open_groups(self):
        return None  # no repeat cap: the shares decide how often a task's examples come back

    def _task_slots(self, open_groups=None) -> dict[str, int]:
        """``shares * batch_size`` slots per task, rounded with a carry; text slots capped for audio."""
        b = self.batch_size
        credit = self.credit + self.shares * b
        counts = np.floor(credit).astype(np.int64)
        for i in np.argsort(-(credit - counts), kind="stable")[: b - int(counts.sum())]:
            counts[i] += 1
        self.credit = credit - counts
        audio = np.array([t in self.audio_tasks for t in self.tasks])
        surplus = int(counts[~audio].sum()) - (b - self.min_audio)
        for _ in range(max(surplus, 0)):  # too few audio slots: the largest text task gives one to the
            counts[np.flatnonzero(~audio)[np.argmax(counts[~audio])]] -= 1  # audio task with most share
            counts[np.flatnonzero(audio)[np.argmax(self.shares[audio] - counts[audio] / b)]] += 1
        return {t: int(n) for t, n in zip(self.tasks, counts, strict=True) if n}

    def _state_dict(self) -> dict:
        return {**super()._state_dict(), "log_w": self.log_w.tolist(), "shares": self.shares.tolist(),
                "credit": self.credit.tolist(), "start_loss": dict(self.start_loss), "updates": self.updates}

    def _load_state_dict(self, state: dict) -> None:
        super()._load_state_dict(state)
        self.log_w = np.array(state["log_w"], np.float64)
        self.shares = np.array(state["shares"], np.float64)
        self.credit = np.array(state["credit"], np.float64)
        self.start_loss = {str(t): float(v) for t, v in state["start_loss"].items()}
        self.updates = int(state["updates"])


def _shares(weights: dict[str, float]) -> str:
    return ", ".join(f"{t} {100 * w:.0f} %" for t, w in weights.items())
