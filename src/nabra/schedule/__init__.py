"""The four data schedules: which examples go into which batch, in which order (metadata only).

``uniform`` (baseline), ``tpc`` (Task-Progressive Curriculum), ``ads`` (Aligner-Based Diverse
Sampling) and ``tpc_ads`` (TPC then ADS). See docs/schedules.md.
"""

from nabra.schedule.ads import ADSConfig, ADSSchedule
from nabra.schedule.base import SCHEDULE_NAMES, Schedule, build_schedule, config_class, schedule_class, shard
from nabra.schedule.table import ExampleTable
from nabra.schedule.tpc import TPCConfig, TPCSchedule
from nabra.schedule.tpc_ads import TPCADSConfig, TPCADSSchedule
from nabra.schedule.uniform import UniformConfig, UniformSchedule

__all__ = [
    "SCHEDULE_NAMES", "ADSConfig", "ADSSchedule", "ExampleTable", "Schedule", "TPCADSConfig",
    "TPCADSSchedule", "TPCConfig", "TPCSchedule", "UniformConfig", "UniformSchedule", "build_schedule",
    "config_class", "schedule_class", "shard",
]
