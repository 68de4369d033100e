"""Test dummies shared by the test suite and the benchmarks: tiny clips and manifests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from nabra.corpus.audio import SAMPLE_RATE
from nabra.corpus.manifest import Utterance, write_manifest


def tone(seconds: float, sample_rate: int = SAMPLE_RATE, freq: float = 220.0, channels: int = 1) -> np.ndarray:
    """A sine tone with a little noise: ``(frames,)`` or ``(frames, channels)`` float32."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    rng = np.random.default_rng(int(freq))
    x = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)
    x = x.astype(np.float32)
    if channels > 1:
        x = np.stack([x * (0.5 + 0.5 * c / channels) for c in range(channels)], axis=1)
    return x


def write_clip(path: str | Path, seconds: float = 1.0, sample_rate: int = SAMPLE_RATE, channels: int = 1,
               fmt: str | None = None, subtype: str | None = None, freq: float = 220.0) -> Path:
    """Write a tone clip to ``path`` in the format its suffix (or ``fmt``) names."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), tone(seconds, sample_rate, freq, channels), sample_rate, format=fmt, subtype=subtype)
    return path


def tiny_manifest(folder: str | Path, n: int = 10, with_audio: bool = True) -> Path:
    """A small valid manifest under ``folder`` covering all five tasks, with 16 kHz clips."""
    folder = Path(folder)
    dialects = ("EGY", "GLF", "LAV", "NOR", "MSA")
    emotions = ("neutral", "happy", "sad", "angry", "surprised")
    utts = []
    for i in range(n):
        audio = None
        if with_audio:
            audio = str(write_clip(folder / "audio" / f"u{i:03d}.wav", 0.5 + 0.1 * i, freq=200 + 20 * i))
        utts.append(Utterance(
            id=f"u{i:03d}", audio=audio, duration=round(0.5 + 0.1 * i, 3) if with_audio else None,
            language="ar", transcript="مرحبا بكم في نبرة", summary="ترحيب" if i % 3 == 0 else None,
            dialect=dialects[i % 5], emotion=emotions[i % 5], speaker=f"spk{i % 3}",
            source="test", split=("train", "dev", "test")[i % 3],
        ))
    path = folder / "manifest.jsonl"
    write_manifest(path, utts)
    return path


def write_lines(path: str | Path, records: list) -> Path:
    """Write raw manifest lines: dicts become JSON, strings are written as they are."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n")
    return path


# -- tiny models ---------------------------------------------------------------------------------

TINY_TEXTS = ("مرحبا بكم في نبرة", "الجو جميل اليوم في القاهرة", "افتتح الوزير مستشفى جديدا", "ترحيب")


def tiny_model_dir(folder: str | Path, manifest: str | Path | None = None, **sizes) -> Path:
    """A tiny thinker checkpoint in ``folder`` (built once: reused when already there)."""
    from nabra.model.tiny import TinyConfig, init_tiny

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        init_tiny(folder, manifest, TinyConfig(**{"vocab_size": 512, **sizes}))
    return folder


def write_release_checkpoint(thinker_dir: str | Path, out_dir: str | Path, *, talker_mb: int = 8) -> Path:
    """Re-pack a thinker-only checkpoint in the official Qwen2.5-Omni release layout: a
    ``qwen2_5_omni`` config with thinker/talker/token2wav parts and sharded safetensors whose
    talker and token2wav tensors (``talker_mb`` of random data) sit in their own shard."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    thinker_dir, out_dir = Path(thinker_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # transformers saves a thinker under the release's own names; the release prefixes them "thinker.".
    state = {"thinker." + k: v for k, v in load_file(str(thinker_dir / "model.safetensors")).items()}
    n = talker_mb * (1 << 20) // 4
    extra = {"talker.model.embed_tokens.weight": torch.randn(n // 256, 256),
             "token2wav.code_embedding.weight": torch.randn(16, 8)}
    save_file(state, str(out_dir / "model-00001-of-00002.safetensors"), metadata={"format": "pt"})
    save_file(extra, str(out_dir / "model-00002-of-00002.safetensors"), metadata={"format": "pt"})
    weight_map = {k: "model-00001-of-00002.safetensors" for k in state}
    weight_map |= {k: "model-00002-of-00002.safetensors" for k in extra}
    (out_dir / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    thinker_config = json.loads((thinker_dir / "config.json").read_text())
    config = {"model_type": "qwen2_5_omni", "architectures": ["Qwen2_5OmniModel"], "enable_audio_output": True,
              "thinker_config": thinker_config, "talker_config": {}, "token2wav_config": {}}
    (out_dir / "config.json").write_text(json.dumps(config, indent=2))
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "preprocessor_config.json",
                 "generation_config.json"):
        if (thinker_dir / name).is_file():
            shutil.copy(thinker_dir / name, out_dir / name)
    return out_dir
