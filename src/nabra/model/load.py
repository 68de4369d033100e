"""Loading Qwen2.5-Omni's thinker from a folder on disk: never a hub, never the talker.

Two layouts are accepted:

- the official release (``config.json`` with ``model_type: qwen2_5_omni`` and thinker, talker and
  token2wav parts): only the thinker's weights are read. transformers reads safetensors lazily, so
  the talker's and token2wav's tensors are never materialised;
- a thinker-only folder (``model_type: qwen2_5_omni_thinker``), which is what ``nabra model
  init-tiny`` and ``nabra model merge`` write.

Either way the folder must also hold the tokenizer and the Whisper feature extractor
(``preprocessor_config.json``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nabra.errors import NabraError

_DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
           "float16": "float16", "fp16": "float16", "auto": "auto"}


@dataclass
class ModelBundle:
    """The thinker with what it needs to read inputs."""

    model: Any
    """``Qwen2_5OmniThinkerForConditionalGeneration``."""
    tokenizer: Any
    feature_extractor: Any
    """``WhisperFeatureExtractor`` (128 mel bins, 16 kHz)."""
    path: Path
    layout: str
    """``release`` or ``thinker``."""

    @property
    def audio_token_id(self) -> int:
        return self.model.config.audio_token_id


def inspect_checkpoint(path: str | os.PathLike) -> tuple[str, dict]:
    """(layout, config dict) of a checkpoint folder; a clear error naming what is missing."""
    path = Path(path)
    if not path.is_dir():
        raise NabraError(f"{path}: not a folder (expected a Qwen2.5-Omni checkpoint folder)")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise NabraError(f"{path}: no config.json: not a Qwen2.5-Omni checkpoint folder")
    config = json.loads(config_file.read_text(encoding="utf-8"))
    model_type = config.get("model_type")
    if model_type == "qwen2_5_omni" and "thinker_config" in config:
        layout = "release"
    elif model_type == "qwen2_5_omni_thinker":
        layout = "thinker"
    else:
        raise NabraError(f"{config_file}: model_type is {model_type!r}; expected 'qwen2_5_omni' (with a "
                         "thinker_config) or 'qwen2_5_omni_thinker'")
    missing = []
    if not list(path.glob("*.safetensors")):
        missing.append("weights (*.safetensors)")
    if not (path / "tokenizer.json").is_file() and not (path / "vocab.json").is_file():
        missing.append("tokenizer (tokenizer.json or vocab.json + merges.txt)")
    if not (path / "preprocessor_config.json").is_file():
        missing.append("feature extractor (preprocessor_config.json)")
    if missing:
        raise NabraError(f"{path}: not a usable Qwen2.5-Omni checkpoint: missing {', '.join(missing)}")
    return layout, config


def load(path: str | os.PathLike, *, dtype: str = "float32", device: str | None = None) -> ModelBundle:
    """Load the thinker, its tokenizer and feature extractor from ``path`` (local files only)."""
    import torch
    from transformers import (
        AutoTokenizer,
        Qwen2_5OmniConfig,
        Qwen2_5OmniThinkerConfig,
        Qwen2_5OmniThinkerForConditionalGeneration,
        WhisperFeatureExtractor,
    )

    path = Path(path)
    layout, _ = inspect_checkpoint(path)
    if dtype not in _DTYPES:
        raise NabraError(f"unknown dtype {dtype!r}; choose one of {', '.join(sorted(_DTYPES))}")
    torch_dtype = _DTYPES[dtype] if _DTYPES[dtype] == "auto" else getattr(torch, _DTYPES[dtype])
    if layout == "release":
        config = Qwen2_5OmniConfig.from_pretrained(path, local_files_only=True).thinker_config
    else:
        config = Qwen2_5OmniThinkerConfig.from_pretrained(path, local_files_only=True)
    model = Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(
        path, config=config, dtype=torch_dtype, local_files_only=True, use_safetensors=True,
    )
    if device is not None:
        model.to(device)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    feature_extractor = WhisperFeatureExtractor.from_pretrained(path, local_files_only=True)
    return ModelBundle(model.eval(), tokenizer, feature_extractor, path, layout)
