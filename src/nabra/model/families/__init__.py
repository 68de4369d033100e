"""Model families: what one audio-LLM family does its own way, behind one small interface.

A family says which ``config.json`` model types are its (and in which on-disk layout), where its
language model's decoder layers and its audio projector ("aligner") are, how many placeholder
tokens a clip of audio becomes, and how to load it. Everything else in Nabra asks the family.
Built: Qwen2.5-Omni's thinker, Qwen3-Omni's, Nemotron-3-Nano-Omni, and composed audio LLMs (the audio
encoder of one of those + any causal LM). :data:`NOT_YET` names model types transformers ships that
Nabra does not load, for the error a user gets for one of them.
"""

from __future__ import annotations

import re
from typing import Any

from nabra.errors import NabraError
from nabra.model.families.base import Family
from nabra.model.families.composed import composed
from nabra.model.families.nemotron_h_omni import NEMOTRON_H_OMNI
from nabra.model.families.qwen2_5_omni import QWEN2_5_OMNI
from nabra.model.families.qwen3_omni import QWEN3_OMNI

FAMILIES: dict[str, Family] = {f.name: f for f in (QWEN2_5_OMNI, QWEN3_OMNI, NEMOTRON_H_OMNI, composed(QWEN2_5_OMNI))}
"""Every family Nabra trains, by name (``model.family`` in a run config). ``composed`` stands for every
composed model (its default audio encoder: Qwen2.5-Omni's; one checkpoint's is in its config)."""

NOT_YET: dict[str, str] = {}
"""Audio-LLM model types transformers ships that Nabra does not load yet."""

AUTO = "auto"


def family(name: str) -> Family:
    """The family called ``name``; a clear error listing the known ones."""
    if name not in FAMILIES:
        raise NabraError(f"unknown model family {name!r}; known: {', '.join(FAMILIES)} (or {AUTO!r})")
    return FAMILIES[name]


def detect(config: dict, where: str = "config.json") -> tuple[Family, str]:
    """``(family, layout)`` of a checkpoint from its ``config.json`` contents (``where`` names the file)."""
    model_type = config.get("model_type")
    for fam in FAMILIES.values():
        layout = fam.layout_of(config)
        if layout is not None:
            try:
                return fam.specialize(config), layout
            except NabraError as e:
                raise NabraError(f"{where}: {e}") from None
    if model_type in NOT_YET:
        raise NabraError(f"{where}: model_type {model_type!r} is {NOT_YET[model_type]}, which Nabra does not "
                         f"load yet; families built: {', '.join(FAMILIES)}")
    expected = "; ".join(f"{f.name}: {f.expected()}" for f in FAMILIES.values())
    raise NabraError(f"{where}: model_type is {model_type!r}; expected {expected}")


def family_of_model(model: Any) -> Family:
    """The family of a loaded model (a PEFT wrapper or the bare model), from its config's model type."""
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    for fam in FAMILIES.values():
        if model_type in fam.model_types:
            return fam.specialize(config)
    raise NabraError(f"a model of type {model_type!r} belongs to no known family ({', '.join(FAMILIES)})")


def check_family(requested: str, found: Family, where: str) -> None:
    """Refuse a run whose ``model.family`` names another family than the checkpoint's."""
    if requested != AUTO:
        family(requested)
        if requested != found.name:
            raise NabraError(f"model.family is {requested!r} but {where} is a {found.name} checkpoint "
                             f"(set model.family: {AUTO} or {found.name})")


def lm_path_regex(fam: Family, modules: tuple[str, ...]) -> str:
    """A PEFT ``target_modules`` regex: ``modules`` (attribute names) inside the family's LM layers only."""
    return rf"{fam.lm_layers}\.(?:{'|'.join(fam.lora_blocks)})\.(?:{'|'.join(map(re.escape, modules))})"


__all__ = ["AUTO", "FAMILIES", "NOT_YET", "Family", "check_family", "detect", "family", "family_of_model",
           "lm_path_regex"]
