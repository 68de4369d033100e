"""``tpc_ads``: the hybrid. TPC stages for the first part of training, then ADS refinement."""

from __future__ import annotations

import numpy as np

from nabra.errors import NabraError
from nabra.schedule.ads import ADSSchedule
from nabra.schedule.base import Schedule
from nabra.schedule.config import TPCADSConfig
from nabra.schedule.tpc import TPCSchedule


class TPCADSSchedule(Schedule):
    """TPC for steps ``[0, switch_step)``, ADS from ``switch_step`` on.

    Composes a :class:`TPCSchedule` (with ``total_steps = switch_step``) and an
    :class:`ADSSchedule`, each seeded from ``seed``; both states are saved. The trainer needs
    aligner embeddings from the switch on (see :meth:`needs_embeddings`).

    With ``switch: plateau`` the switch step is not known in advance: TPC's stages are laid over
    the guard (``max_switch``), and :meth:`observe` moves the switch to the step after the dev
    evaluation at which the ``plateau_task`` loss stopped improving (Nabra's reading of the
    paper's "first a robust representative foundation"; the rule is ours). Its loss history and
    the switch step are part of the state: a resume switches where the run would have.
    """

    name = "tpc_ads"
    config_class = TPCADSConfig
    uses_embeddings = True

    def __init__(self, table, *, batch_size: int, seed: int, total_steps: int, min_audio: int = 1, **knobs):
        super().__init__(table, batch_size=batch_size, seed=seed, total_steps=total_steps,
                         min_audio=min_audio, **knobs)
        self.plateau = self.config.switch == "plateau"
        if self.plateau and self.config.plateau_task not in table.task_names:
            raise NabraError(f"tpc_ads: plateau_task must be one of {', '.join(table.task_names)}, "
                             f"got {self.config.plateau_task!r}")
        share = self.config.max_switch if self.plateau else self.config.switch
        self.switch_step = max(1, round(share * total_steps))
        """The first ADS step (with ``plateau``: the guard until the loss plateaus)."""
        self.switched_at: int | None = None
        """``plateau``: the step at which the plateau moved the switch (None: not yet, or the guard)."""
        self.history: list[float] = []
        """``plateau``: the ``plateau_task`` dev loss at each evaluation so far."""
        seeds = np.random.SeedSequence(seed).generate_state(2).tolist()
        common = {"batch_size": batch_size, "min_audio": min_audio}
        self.tpc = TPCSchedule(table, seed=seeds[0], total_steps=self.switch_step, **common, config=self.config.tpc)
        self.ads = ADSSchedule(table, seed=seeds[1], total_steps=max(1, total_steps - self.switch_step),
                               **common, config=self.config.ads)

    @property
    def refresh_every(self) -> int:
        return self.ads.refresh_every

    def needs_embeddings(self, step: int) -> bool:
        return step >= self.switch_step and self.ads.needs_embeddings(step - self.switch_step)

    def set_embeddings(self, vectors: np.ndarray, *, recluster: bool = True, normalized: bool = False) -> None:
        """Hand aligner embeddings to the ADS phase (see :meth:`ADSSchedule.set_embeddings`)."""
        self.ads.set_embeddings(vectors, recluster=recluster, normalized=normalized)

    @property
    def embedding_dim(self) -> int:
        return self.ads.embedding_dim

    @property
    def dev_loss_setting(self) -> str | None:
        return "schedule.tpc_ads.switch: plateau" if self.plateau else None

    def observe(self, step: int, dev_loss: dict[str, float]) -> str | None:
        """``switch: plateau``: switch to ADS after ``step`` once the loss has plateaued."""
        cfg = self.config
        loss = dev_loss.get(cfg.plateau_task)
        if not self.plateau or self.switched_at is not None or step >= self.switch_step or loss is None:
            return None
        self.history.append(float(loss))
        w = cfg.plateau_window
        if len(self.history) <= w:
            return None
        before, recent = min(self.history[:-w]), min(self.history[-w:])
        gain = (before - recent) / max(abs(before), 1e-12)
        if gain >= cfg.plateau_threshold:
            return None
        self.switch_step = self.switched_at = max(step, 1)
        return (f"tpc_ads: {cfg.plateau_task} dev loss plateaued (best {recent:.4f} over the last {w} evaluations vs "
                f"{before:.4f} before: {100 * gain:.2f} % < {100 * cfg.plateau_threshold:g} %): ADS from step {step}")

    def stage(self, step: int | None = None) -> str:
        step = self.step if step is None else step
        return self.tpc.stage(step) if step < self.switch_step else self.ads.stage(step - self.switch_step)

    def _next_batch(self) -> np.ndarray:
        phase = self.tpc if self.step < self.switch_step else self.ads
        return phase.next_batch()

    def _state_dict(self) -> dict:
        return {"tpc": self.tpc.state_dict(), "ads": self.ads.state_dict(), "switch_step": self.switch_step,
                "switched_at": -1 if self.switched_at is None else self.switched_at, "history": list(self.history)}

    def _load_state_dict(self, state: dict) -> None:
        self.tpc.load_state_dict(state["tpc"])
        self.ads.load_state_dict(state["ads"])
        if "switch_step" in state:  # states saved before the plateau switch have the fixed one
            self.switch_step = int(state["switch_step"])
            self.switched_at = None if int(state["switched_at"]) < 0 else int(state["switched_at"])
            self.history = [float(x) for x in state["history"]]
