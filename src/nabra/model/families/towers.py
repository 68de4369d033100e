"""The families whose audio encoder a composed model can take (``audio_family`` in its config)."""

from __future__ import annotations

from nabra.errors import NabraError
from nabra.model.families.base import Family
from nabra.model.families.nemotron_h_omni import NEMOTRON_H_OMNI
from nabra.model.families.qwen2_5_omni import QWEN2_5_OMNI
from nabra.model.families.qwen3_omni import QWEN3_OMNI

TOWERS: dict[str, Family] = {f.name: f for f in (QWEN2_5_OMNI, QWEN3_OMNI, NEMOTRON_H_OMNI)}


def tower(name: object) -> Family:
    """The audio family called ``name``; a clear error otherwise."""
    if name not in TOWERS:
        raise NabraError(f"a composed model's audio_family must be one of {', '.join(TOWERS)}, got {name!r}")
    return TOWERS[name]
