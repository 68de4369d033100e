"""The data schedules: which examples go into which batch, in which order (metadata only).

``uniform`` (baseline), ``tpc`` (Task-Progressive Curriculum), ``ads`` (Aligner-Based Diverse
Sampling), ``tpc_ads`` (TPC then ADS), ``balanced`` (ADS's balanced slots filled at random: the
ablation that separates balance from diversity) and ``adaptive`` (task shares moved online by the
dev losses). See docs/schedules.md.

:data:`SCHEDULES` is the registry, and the only list of schedule names: the run config's
``schedule`` section, the report and the demo derive theirs from it. A new schedule is a
:class:`Schedule` subclass with a ``name`` and a ``config_class`` (in :mod:`nabra.schedule.config`),
added here. Importing this package does not import torch (the config reads it before anything heavy).
"""

from nabra.errors import NabraError
from nabra.schedule.adaptive import AdaptiveSchedule
from nabra.schedule.ads import ADSSchedule
from nabra.schedule.balanced import BalancedSchedule
from nabra.schedule.base import Schedule, group_by_length, shard
from nabra.schedule.config import (
    AdaptiveConfig,
    ADSConfig,
    BalancedConfig,
    TPCADSConfig,
    TPCConfig,
    UniformConfig,
)
from nabra.schedule.table import ExampleTable
from nabra.schedule.tpc import TPCSchedule
from nabra.schedule.tpc_ads import TPCADSSchedule
from nabra.schedule.uniform import UniformSchedule

SCHEDULES: dict[str, type[Schedule]] = {
    cls.name: cls for cls in (UniformSchedule, TPCSchedule, ADSSchedule, TPCADSSchedule, BalancedSchedule,
                               AdaptiveSchedule)
}
"""name -> schedule class, in the order tables and plots show them."""
SCHEDULE_NAMES: tuple[str, ...] = tuple(SCHEDULES)


def schedule_class(name: str) -> type[Schedule]:
    """The schedule class registered under ``name``."""
    if name not in SCHEDULES:
        raise NabraError(f"unknown schedule {name!r}; schedules are {', '.join(SCHEDULE_NAMES)}")
    return SCHEDULES[name]


def config_class(name: str) -> type:
    """The settings dataclass of schedule ``name`` (``UniformConfig``, ``TPCConfig``, ...)."""
    return schedule_class(name).config_class


def build_schedule(name: str, table: ExampleTable, **cfg) -> Schedule:
    """Build schedule ``name``; ``cfg``: ``batch_size``, ``seed``, ``total_steps``, ``min_audio`` and
    the fields of its config (or ``config=`` a config instance)."""
    return schedule_class(name)(table, **cfg)


__all__ = [
    "SCHEDULES", "SCHEDULE_NAMES", "ADSConfig", "ADSSchedule", "AdaptiveConfig", "AdaptiveSchedule",
    "BalancedConfig", "BalancedSchedule", "ExampleTable", "Schedule", "TPCADSConfig",
    "TPCADSSchedule", "TPCConfig", "TPCSchedule", "UniformConfig", "UniformSchedule", "build_schedule",
    "config_class", "group_by_length", "schedule_class", "shard",
]
