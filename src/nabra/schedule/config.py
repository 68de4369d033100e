"""The typed settings of every schedule: one dataclass each, every field with its one docstring.

Torch-free (as is the whole ``nabra.schedule`` package at import time), so that a run's YAML is
checked, ``schedule.tpc.stagez`` rejected with the nearest valid key, before anything heavy loads.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import ClassVar

from nabra.corpus.manifest import TASKS
from nabra.errors import NabraError

AUTO_BLEND = 20
"""TPC's default blend window in steps: bench/bench_tpc_blend.py on the demo measured the largest
gradient norm in the 10 steps after a stage boundary at 9.9x the median before it with a hard switch,
4.3x with a 20-step blend (3 seeds, 2 boundaries each)."""
DEFAULT_STAGES = (("asr",), ("asr", "did", "ser"), ("asr", "did", "ser", "ssum", "tsum"))


@dataclass
class UniformConfig:
    """Knobs of the ``uniform`` schedule: p(task) ∝ weight · n_task^(1/temperature)."""

    weights: dict[str, float] = field(default_factory=dict)
    """Relative weight per task; a task left out weighs 1.0."""
    temperature: float = 1.0
    """T: 1 follows the data sizes, a larger T flattens toward equal task shares."""

    def __post_init__(self):
        check_weights(self.weights)
        if not self.temperature > 0:
            raise NabraError(f"uniform: temperature must be > 0 (got {self.temperature})")


def check_weights(weights: dict[str, float]) -> None:
    """Task weights are >= 0 and name tasks (a run's config checks they are its tasks; a schedule
    ignores tasks its table does not have)."""
    check_names("weights", weights)
    if any(not w >= 0 for w in weights.values()):
        raise NabraError(f"task weights must be >= 0 (got {weights})")


@dataclass
class TPCConfig:
    """Knobs of the ``tpc`` schedule. In a stage, p(task) ∝ w · n_task^(1/temperature) with w = 1.0
    for a task new in that stage and w = ``replay`` for a task trained in an earlier stage."""

    stages: list[list[str]] = field(default_factory=lambda: [list(s) for s in DEFAULT_STAGES])
    """Tasks of each stage, in order; a stage lists every task it trains, earlier ones included."""
    fractions: list[float] = field(default_factory=list)
    """Share of total_steps per stage, summing to 1; empty: equal shares."""
    steps: list[int] = field(default_factory=list)
    """Length of each stage in steps, instead of fractions; the last stage also runs past their sum."""
    replay: float = 0.5
    """Weight w of a task already trained in an earlier stage (the stage's new tasks weigh 1.0)."""
    temperature: float = 1.0
    """T in p(task) ∝ w · n_task^(1/T) inside a stage, as in ``uniform``."""
    blend_steps: int | None = None
    """Steps over which the mix moves linearly from one stage's to the next's, centred on each boundary;
    0: a hard switch; None (the default): ``AUTO_BLEND`` steps, or the shortest stage but the last if
    that is shorter (measured on the demo: the gradient-norm spike after a boundary halves)."""

    def __post_init__(self):
        if not self.stages or any(not s for s in self.stages):
            raise NabraError("tpc: stages must be a non-empty list of non-empty task lists")
        for s in self.stages:
            check_names("tpc: stage", s)
            if len(set(s)) != len(s):
                raise NabraError(f"tpc: stage {s} has repeated tasks")
        self._check_lengths()
        if not (self.replay >= 0 and self.temperature > 0 and (self.blend_steps is None or self.blend_steps >= 0)):
            raise NabraError("tpc: replay must be >= 0, temperature > 0, blend_steps >= 0")

    def _check_lengths(self) -> None:
        n = len(self.stages)
        if self.fractions and self.steps:
            raise NabraError("tpc: give stage fractions or stage steps, not both")
        if self.fractions and (len(self.fractions) != n or min(self.fractions) < 0
                               or abs(sum(self.fractions) - 1) > 1e-6):
            raise NabraError(f"tpc: fractions must be {n} numbers >= 0 summing to 1 (got {self.fractions})")
        if self.steps and (len(self.steps) != n or min(self.steps) < 0):
            raise NabraError(f"tpc: steps must be {n} integers >= 0 (got {self.steps})")


@dataclass
class BalancedConfig:
    """Knobs of the ``balanced`` schedule (and the slot rules ``ads`` shares with it)."""

    _name: ClassVar[str] = "balanced"
    max_repeats: int = 0
    """Draws of one example per epoch-equivalent (len(table) / batch_size steps) at most: a group whose
    examples have all been drawn this often gives its slots to the others until the window ends
    (40 summaries at a fifth of every batch are not each seen 40 times); 0: no cap."""

    def __post_init__(self):
        if self.max_repeats < 0:
            raise NabraError(f"{self._name}: max_repeats must be >= 0 (0 = no cap), got {self.max_repeats}")


@dataclass
class ADSConfig(BalancedConfig):
    """Knobs of the ``ads`` schedule: ``balanced``'s, and the aligner's."""

    _name: ClassVar[str] = "ads"

    n_clusters: int = 8
    """k: k-means clusters of the aligner embeddings inside each of asr, ssum and tsum."""
    pool_size: int = 64
    """Candidates drawn per slot; the one farthest (cosine) from the batch so far wins."""
    refresh_every: int = 0
    """Steps between aligner-embedding refreshes, which the trainer does via set_embeddings; 0: never."""
    cluster_sample: int = 20_000
    """At most this many embeddings per task fit k-means (all are then assigned): bounds the refresh cost."""
    embedding_dim: int = 256
    """Aligner embeddings wider than this are reduced to it by a seeded random projection (cosines kept
    to a few %; 3584-wide 7B vectors take 14x less memory); 0: keep the model's width."""

    def __post_init__(self):
        super().__post_init__()
        if self.n_clusters < 1 or self.pool_size < 1 or self.refresh_every < 0 or self.cluster_sample < 1:
            raise NabraError("ads: n_clusters, pool_size and cluster_sample must be >= 1, refresh_every >= 0")
        if self.embedding_dim < 0:
            raise NabraError(f"ads: embedding_dim must be >= 0 (0 = the model's width), got {self.embedding_dim}")


@dataclass
class AdaptiveConfig:
    """Knobs of the ``adaptive`` schedule: task weights moved online by the dev losses (see
    docs/schedules.md; the update is DoReMi's exponentiated-gradient step on the relative loss)."""

    eta: float = 1.0
    """Step size η of the update log w_t += η · (L_t / L_t(start)) at each dev evaluation."""
    floor: float = 0.05
    """Each task's share never falls below this (the weights are mixed with equal shares to keep it)."""
    start: str = "equal"
    """Initial task shares: ``equal`` (as ``balanced``) or ``data`` (proportional to the example counts)."""

    def __post_init__(self):
        if not self.eta >= 0:
            raise NabraError(f"adaptive: eta must be >= 0 (got {self.eta})")
        if not 0 <= self.floor < 0.2:
            raise NabraError(f"adaptive: floor must lie in [0, 0.2) so that five tasks leave room to adapt "
                             f"(got {self.floor})")
        if self.start not in ("equal", "data"):
            raise NabraError(f"adaptive: start must be 'equal' or 'data' (got {self.start!r})")


@dataclass
class TPCADSConfig:
    """Knobs of the ``tpc_ads`` schedule."""

    switch: float | str = 0.5
    """Share of total_steps run under TPC (ADS takes over at step round(switch · total_steps)), or
    ``plateau``: switch once the ``plateau_task`` dev loss has stopped improving (see below)."""
    plateau_task: str = "asr"
    """``switch: plateau``: the task whose dev loss signals the switch (the foundation TPC builds first)."""
    plateau_window: int = 3
    """``switch: plateau``: dev evaluations compared: the switch comes when the best loss of the last
    ``plateau_window`` evaluations improves on the best before them by less than ``plateau_threshold``."""
    plateau_threshold: float = 0.02
    """``switch: plateau``: relative improvement (0.02 = 2 %) below which the loss has plateaued."""
    max_switch: float = 0.8
    """``switch: plateau``: the guard — ADS takes over at this share of total_steps at the latest."""
    tpc: TPCConfig = field(default_factory=TPCConfig)
    """The first phase's TPC settings; its fractions/steps count within that phase."""
    ads: ADSConfig = field(default_factory=ADSConfig)
    """The second phase's ADS settings."""

    def __post_init__(self):
        if self.switch != "plateau" and not (isinstance(self.switch, int | float) and 0 < self.switch < 1):
            raise NabraError(f"tpc_ads: switch must be a share strictly between 0 and 1, or 'plateau' (got "
                             f"{self.switch!r}); use the tpc or ads schedule alone for the ends")
        if not 0 < self.max_switch < 1:
            raise NabraError(f"tpc_ads: max_switch must lie strictly between 0 and 1 (got {self.max_switch})")
        if self.plateau_window < 1 or self.plateau_threshold < 0:
            raise NabraError("tpc_ads: plateau_window must be >= 1 and plateau_threshold >= 0")
        check_names("tpc_ads: plateau_task", [self.plateau_task])
        # Plain mappings (Python callers' knobs) become the typed settings, checked now, not at the switch.
        if isinstance(self.tpc, dict):
            self.tpc = make_config(TPCConfig, dict(self.tpc))
        if isinstance(self.ads, dict):
            self.ads = make_config(ADSConfig, dict(self.ads))


def check_names(where: str, names) -> None:
    """Task names are plain identifiers (``asr``, ``aid``): a typo of a known one is the run config's to name."""
    bad = [t for t in names if not (isinstance(t, str) and t.isidentifier())]
    if bad:
        raise NabraError(f"{where}: {bad} are not task names (built-in: {', '.join(TASKS)})")


def make_config(cls: type, knobs: dict):
    """``cls(**knobs)``, or ``knobs["config"]`` when given, with unknown fields as a ``NabraError``."""
    if "config" in knobs:
        config = knobs.pop("config")
        if knobs or not isinstance(config, cls):
            raise NabraError(f"pass either config={cls.__name__}(...) or its fields, not both")
        return config
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(knobs) - known)
    if unknown:
        raise NabraError(f"unknown {cls.__name__} field(s) {', '.join(unknown)}; fields are {', '.join(sorted(known))}")
    return cls(**knobs)
