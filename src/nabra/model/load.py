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
from contextlib import contextmanager
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
    config = read_json(config_file)
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
    for name in ("preprocessor_config.json", "tokenizer_config.json", "tokenizer.json", "generation_config.json",
                 "model.safetensors.index.json"):
        if (path / name).is_file():
            read_json(path / name)
    for weights in sorted(path.glob("*.safetensors")):
        check_safetensors(weights)
    return layout, config


def read_json(path: Path) -> dict:
    """The JSON object in ``path``, or a NabraError naming the file (never a decode traceback)."""
    try:
        value = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise NabraError(f"{path}: not a JSON file (not UTF-8 text: byte 0x{e.object[e.start]:02X} at "
                         f"offset {e.start})") from None
    except json.JSONDecodeError as e:
        raise NabraError(f"{path}: not a JSON file ({e.msg} at line {e.lineno} column {e.colno})") from None
    except RecursionError:
        raise NabraError(f"{path}: not a usable JSON file (nested too deeply)") from None
    if not isinstance(value, dict):
        raise NabraError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


def check_safetensors(path: Path) -> None:
    """Read the header of a safetensors file (cheap: no tensor is loaded); a NabraError if it is not one."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            f.keys()
    except Exception as e:  # SafetensorError, OSError: a truncated or foreign file
        raise NabraError(f"{path}: not a readable safetensors file ({type(e).__name__}: {e})") from None


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
    # The files parse (checked above); what transformers still refuses (a config of the wrong shape,
    # weights that do not fit it, a tokenizer of another kind) is the user's folder too: one line.
    with _loading(path, "config"):
        if layout == "release":
            config = Qwen2_5OmniConfig.from_pretrained(path, local_files_only=True).thinker_config
        else:
            config = Qwen2_5OmniThinkerConfig.from_pretrained(path, local_files_only=True)
    with _loading(path, "weights"):
        model = Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(
            path, config=config, dtype=torch_dtype, local_files_only=True, use_safetensors=True,
        )
    if device is not None:
        model.to(device)
    with _loading(path, "tokenizer"):
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    with _loading(path, "feature extractor"):
        feature_extractor = WhisperFeatureExtractor.from_pretrained(path, local_files_only=True)
    return ModelBundle(model.eval(), tokenizer, feature_extractor, path, layout)


@contextmanager
def _loading(path: Path, what: str):
    try:
        yield
    except NabraError:
        raise
    except Exception as e:  # noqa: BLE001 - transformers raises many kinds for a bad folder
        first = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
        if "ignore_mismatched_sizes" in first:
            first = "tensor sizes differ from config.json; transformers' load report above lists them"
        raise NabraError(f"{path}: cannot load the {what} ({type(e).__name__}: {first})") from e
