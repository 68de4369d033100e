"""``tpc_ads``: the hybrid. TPC stages for the first part of training, then ADS refinement."""

from __future__ import annotations

import numpy as np

from nabra.schedule.ads import ADSSchedule
from nabra.schedule.base import Schedule
from nabra.schedule.config import TPCADSConfig
from nabra.schedule.tpc import TPCSchedule


class TPCADSSchedule(Schedule):
    """TPC for steps ``[0, switch_step)``, ADS from ``switch_step`` on.

    Composes a :class:`TPCSchedule` (with ``total_steps = switch_step``) and an
    :class:`ADSSchedule`, each seeded from ``seed``; both states are saved. The trainer needs
    aligner embeddings from the switch on (see :meth:`needs_embeddings`).
    """

    name = "tpc_ads"
    config_class = TPCADSConfig
    uses_embeddings = True

    def __init__(self, table, *, batch_size: int, seed: int, total_steps: int, min_audio: int = 1, **knobs):
        super().__init__(table, batch_size=batch_size, seed=seed, total_steps=total_steps,
                         min_audio=min_audio, **knobs)
        self.switch_step = max(1, round(self.config.switch * total_steps))
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

    def stage(self, step: int | None = None) -> str:
        step = self.step if step is None else step
        return self.tpc.stage(step) if step < self.switch_step else self.ads.stage(step - self.switch_step)

    def _next_batch(self) -> np.ndarray:
        phase = self.tpc if self.step < self.switch_step else self.ads
        return phase.next_batch()

    def _state_dict(self) -> dict:
        return {"tpc": self.tpc.state_dict(), "ads": self.ads.state_dict()}

    def _load_state_dict(self, state: dict) -> None:
        self.tpc.load_state_dict(state["tpc"])
        self.ads.load_state_dict(state["ads"])
