"""Data-loader headroom: examples/s the CPU side of a step delivers — read, decode, resample to 16 kHz,
log-mel features, collate — against what the GPU step consumes.

Clips of ``--seconds`` s written at 44.1 kHz (resampled on loading, as L2-ARCTIC's are) in WAV and
FLAC, ASR examples, batches of ``--batch``, no cache (every epoch decodes again), with 1 and 2
decoding threads (``data.load_workers``; features and collation run in the training process), without and
with ``data.augment`` (speed, reverberation and noise on every clip, in the training process). The
GPU side: ``--gpu-examples-per-s``, by default an estimate to be replaced by bench_gpu.py's figure:
a 7B LoRA step of 8 clips of 10 s (~8,400 tokens) is ~4·N·T = 2.4e14 FLOPs (forward, and the
backward's activation gradients; the frozen weights get none) — 0.87 s at 35 % MFU of an H200's
~790 TFLOP/s, ~9 examples/s; 16 leaves margin. The bench prints how many CPU cores one GPU needs.

    python bench/bench_loader.py [--clips 64] [--seconds 10] [--batch 8] [--gpu-examples-per-s 16]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from figures import record

from nabra.corpus.augment import AugmentConfig, Augmenter
from nabra.corpus.manifest import Utterance
from nabra.model import load
from nabra.model.collate import Collator
from nabra.model.loader import AudioStore
from nabra.tasks import make_example
from nabra.testing import tiny_model_dir


def rate(collator, examples, batch: int, workers: int, repeats: int = 2, augmenter=None) -> float:
    """Examples/s of decode (+ ``augmenter``) + features + collation over ``examples``, no cache (the best of
    ``repeats`` passes)."""
    best = 0.0
    for _ in range(repeats):
        store = AudioStore(0, workers)
        t = time.perf_counter()
        for i in range(0, len(examples), batch):
            samples = store.samples(examples[i : i + batch])
            collator(augmenter.batch(samples, 0) if augmenter else samples)
        best = max(best, len(examples) / (time.perf_counter() - t))
        store.close()
    return best


def _mkdir(path: Path) -> Path:
    path.mkdir(exist_ok=True)
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=64)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--gpu-examples-per-s", type=float, default=16.0,
                   help="what one GPU's step consumes (default: an estimate for a 7B LoRA step of 8 clips)")
    args = p.parse_args()
    torch.set_num_threads(1)  # one core for the features and collation: the per-core figure
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        bundle = load(tiny_model_dir(tmp / "tiny"))
        collator = Collator(bundle.tokenizer, bundle.feature_extractor)
        # every knob on, every clip: the data path's worst case (speed 0.9/1.1, a room, babble or coloured noise)
        augmenter = Augmenter(AugmentConfig(speed={"prob": 1.0, "factors": [0.9, 1.1]}, reverb={"prob": 1.0},
                                            noise={"prob": 1.0}))
        # the same with MUSAN-like noise read from disk (a stretch of one of 8 one-minute 16-kHz WAVs per clip) and
        # real-room responses (16 of 0.5 s, decoded once and kept)
        for i in range(8):
            sf.write(_mkdir(tmp / "noise") / f"noise-free-sound-{i:04d}.wav",
                     (0.1 * rng.standard_normal(16000 * 60)).astype(np.float32), 16000)
        for i in range(16):
            rir = np.zeros(8000, np.float32)
            rir[0], rir[1:] = 1.0, 0.05 * rng.standard_normal(7999) * np.exp(-np.arange(7999) / 1500)
            sf.write(_mkdir(tmp / "rirs") / f"Room{i:03d}-00001.wav", rir, 16000)
        recorded = Augmenter.from_config(AugmentConfig(
            speed={"prob": 1.0, "factors": [0.9, 1.1]}, reverb={"prob": 1.0, "rirs": [str(tmp / "rirs")]},
            noise={"prob": 1.0, "sources": ["recordings"], "recordings": [str(tmp / "noise")]}))
        for fmt in ("wav", "flac"):
            examples = []
            for i in range(args.clips):
                path = tmp / f"c{i}.{fmt}"
                sf.write(path, (0.1 * rng.standard_normal(int(44100 * args.seconds))).astype(np.float32), 44100)
                utt = Utterance(f"{fmt}{i}", audio=str(path), transcript="الجو جميل اليوم", duration=args.seconds)
                examples.append(make_example(utt, "asr"))
            for aug, workers in ((None, 1), (None, 2), (augmenter, 1), (augmenter, 2), (recorded, 1)):
                r = rate(collator, examples, args.batch, workers, augmenter=aug)
                cores = args.gpu_examples_per_s / r
                what = ("" if aug is None else ", augmented (speed + reverb + noise)" if aug is augmenter
                        else ", augmented (speed + recorded rooms + noise recordings from disk)")
                print(f"{fmt:>4}, {args.seconds:g}-s clips at 44.1 kHz, {workers} decoding thread(s){what}: {r:7.1f} "
                      f"examples/s -> {cores:.2f} such pipelines per GPU at {args.gpu_examples_per_s:g} examples/s")
                record("loader", f"{fmt} {args.seconds:g}-s clips, {workers} decoding thread(s){what}", r, "examples/s")
                if workers == 1:
                    record("loader", f"{fmt}{what}: CPU cores one GPU needs at {args.gpu_examples_per_s:g} examples/s",
                           math.ceil(cores * 10) / 10, "cores", at_most=4)


if __name__ == "__main__":
    main()
