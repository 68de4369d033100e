"""Test dummies shared by the test suite and the benchmarks: tiny clips and manifests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from nabra.corpus.manifest import Utterance, write_manifest


def tone(seconds: float, sample_rate: int = 16_000, freq: float = 220.0, channels: int = 1) -> np.ndarray:
    """A sine tone with a little noise: ``(frames,)`` or ``(frames, channels)`` float32."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    rng = np.random.default_rng(int(freq))
    x = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)
    x = x.astype(np.float32)
    if channels > 1:
        x = np.stack([x * (0.5 + 0.5 * c / channels) for c in range(channels)], axis=1)
    return x


def write_clip(path: str | Path, seconds: float = 1.0, sample_rate: int = 16_000, channels: int = 1,
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
