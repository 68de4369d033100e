"""Loading a model from a folder on disk: never a hub.

The family (:mod:`nabra.model.families`) is read from ``config.json`` and does the loading; its
layouts are documented there (Qwen2.5-Omni: the official release, of which only the thinker is read,
or a thinker-only folder). Every folder must also hold the tokenizer and the feature extractor
(``preprocessor_config.json``); the files are checked before transformers is asked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nabra.errors import NabraError
from nabra.files import read_json
from nabra.model.families import Family, detect
from nabra.model.ties import fix_tie_flags

_DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
           "float16": "float16", "fp16": "float16", "auto": "auto"}


@dataclass
class ModelBundle:
    """The model with what it needs to read inputs."""

    model: Any
    """The trainable audio LLM (Qwen2.5-Omni: ``Qwen2_5OmniThinkerForConditionalGeneration``)."""
    tokenizer: Any
    feature_extractor: Any
    """The family's feature extractor (Qwen2.5-Omni: ``WhisperFeatureExtractor``, 128 mel bins, 16 kHz)."""
    path: Path
    layout: str
    """The on-disk layout (Qwen2.5-Omni: ``release`` or ``thinker``)."""
    family: Family | None = None
    """The model family (:mod:`nabra.model.families`)."""

    @property
    def audio_token_id(self) -> int:
        return self.model.config.audio_token_id


def inspect_checkpoint(path: str | os.PathLike) -> tuple[str, dict]:
    """(layout, config dict) of a checkpoint folder; a clear error naming what is missing."""
    _, layout, config = inspect_family(path)
    return layout, config


def inspect_family(path: str | os.PathLike) -> tuple[Family, str, dict]:
    """(family, layout, config dict) of a checkpoint folder; a clear error naming what is missing."""
    path = Path(path)
    if not path.is_dir():
        raise NabraError(f"{path}: not a folder (expected a model checkpoint folder)")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise NabraError(f"{path}: no config.json: not a model checkpoint folder")
    config = read_json(config_file)
    fam, layout = detect(config, str(config_file))
    missing = []
    if not list(path.glob("*.safetensors")):
        missing.append("weights (*.safetensors)")
    if not (path / "tokenizer.json").is_file() and not (path / "vocab.json").is_file():
        missing.append("tokenizer (tokenizer.json or vocab.json + merges.txt)")
    if not (path / "preprocessor_config.json").is_file():
        missing.append("feature extractor (preprocessor_config.json)")
    if missing:
        raise NabraError(f"{path}: not a usable {fam.title} checkpoint: missing {', '.join(missing)}")
    for name in ("preprocessor_config.json", "tokenizer_config.json", "tokenizer.json", "generation_config.json",
                 "model.safetensors.index.json"):
        if (path / name).is_file():
            read_json(path / name)
    for weights in sorted(path.glob("*.safetensors")):
        check_safetensors(weights)
    return fam, layout, config


def check_safetensors(path: Path) -> None:
    """Read the header of a safetensors file (cheap: no tensor is loaded); a NabraError if it is not one."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            f.keys()
    except Exception as e:  # SafetensorError, OSError: a truncated or foreign file
        raise NabraError(f"{path}: not a readable safetensors file ({type(e).__name__}: {e})") from None


def torch_dtype(dtype: str):
    """The torch dtype named ``dtype`` (``float32``/``fp32``, ``bfloat16``/``bf16``, ``float16``/``fp16``),
    or ``"auto"``; a NabraError listing the names otherwise."""
    import torch

    if dtype not in _DTYPES:
        raise NabraError(f"unknown dtype {dtype!r}; choose one of {', '.join(sorted(_DTYPES))}")
    return _DTYPES[dtype] if _DTYPES[dtype] == "auto" else getattr(torch, _DTYPES[dtype])


def load(path: str | os.PathLike, *, dtype: str = "float32", device: str | None = None) -> ModelBundle:
    """Load the model, its tokenizer and feature extractor from ``path`` (local files only)."""

    path = Path(path)
    fam, layout, _ = inspect_family(path)
    dtype_ = torch_dtype(dtype)
    # The files parse (checked above); what transformers still refuses (a config of the wrong shape,
    # weights that do not fit it, a tokenizer of another kind) is the user's folder too: one line.
    model, tokenizer, feature_extractor = fam.load(path, layout, dtype_)
    if device is not None:
        model.to(device)
    return ModelBundle(model.eval(), tokenizer, feature_extractor, path, layout, fam)


def save_folder(out: str | os.PathLike, model, tokenizer, feature_extractor) -> Path:
    """Write a model folder :func:`load` reads back: the model's config and safetensors, its tokenizer
    and feature extractor, and tie flags that agree with the weights at every config level (what
    ``model init-tiny``, ``model compose``, ``model merge`` and ``export`` share)."""
    out = Path(out)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    feature_extractor.save_pretrained(out)
    fix_tie_flags(out)
    return out
