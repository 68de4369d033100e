"""Collation + one tiny training step: Nabra's collator vs transformers' processor path.

16 clips of 2-8 s (already in memory: file reads excluded), the tiny thinker with the real
Qwen2.5-Omni preprocessor (300-s window: the stock path pads every clip to 30,000 frames), AdamW. Prints the
median of several repeats for collation alone and for collate + forward/backward/step, and the
ratio between the two paths.

    python bench/bench_collate.py [--clips 16] [--repeats 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from figures import record

from nabra.corpus.manifest import Utterance
from nabra.model import load
from nabra.model.collate import Collator
from nabra.model.reference import AudioOnlyOmniProcessor, reference_batch
from nabra.tasks import SYSTEM_PROMPT, make_example
from nabra.testing import tiny_model_dir

KEYS = ("input_ids", "attention_mask", "input_features", "feature_attention_mask", "labels")


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=16)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--seconds", default="2-8,1-2", help="clip length ranges to run, e.g. 2-8,1-2")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bundle = load(tiny_model_dir(Path(tmp) / "tiny"))
    for spec in args.seconds.split(","):
        lo, hi = (float(x) for x in spec.split("-"))
        run(bundle, args.clips, lo, hi, args.repeats)


def run(bundle, n_clips: int, lo: float, hi: float, repeats: int) -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    tasks = ("asr", "did", "ser")
    examples, waves = [], []
    for i in range(n_clips):
        seconds = float(rng.uniform(lo, hi))
        utt = Utterance(id=f"c{i}", audio="/mem.wav", transcript="الجو جميل اليوم في القاهرة", dialect="EGY",
                        emotion="happy", duration=seconds)
        examples.append(make_example(utt, tasks[i % 3]))
        waves.append((0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32))
    collator = Collator(bundle.tokenizer, bundle.feature_extractor)
    processor = AudioOnlyOmniProcessor.from_parts(bundle.feature_extractor, bundle.tokenizer)
    model = bundle.model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def ours():
        return collator(list(zip(examples, waves, strict=True)))

    def theirs():
        batch = reference_batch(processor, SYSTEM_PROMPT, examples, waves)
        # Same labels rule (answer only), so both steps learn the same thing.
        batch["labels"] = _labels_like(batch, ours_batch)
        return batch

    def step(make):
        batch = make()
        loss = model(**{k: batch[k] for k in KEYS}).loss
        loss.backward()
        opt.step()
        opt.zero_grad()

    ours_batch = ours()
    c_ours, c_theirs = median_ms(ours, repeats), median_ms(theirs, repeats)
    s_ours, s_theirs = median_ms(lambda: step(ours), repeats), median_ms(lambda: step(theirs), repeats)
    print(f"\n{n_clips} clips of {lo:g}-{hi:g} s, tiny thinker ({sum(p.numel() for p in model.parameters()):,} params), "
          f"{torch.get_num_threads()} threads")
    print(f"{'':24} {'nabra':>10} {'transformers':>13} {'ratio':>7}")
    print(f"{'collate (ms)':24} {c_ours:>10.1f} {c_theirs:>13.1f} {c_theirs / c_ours:>6.1f}x")
    print(f"{'collate + step (ms)':24} {s_ours:>10.1f} {s_theirs:>13.1f} {s_theirs / s_ours:>6.1f}x")
    where = f"{n_clips} clips of {lo:g}-{hi:g} s"
    record("collate", f"collate, {where}: nabra", c_ours, "ms")
    record("collate", f"collate, {where}: transformers processor / nabra", c_theirs / c_ours, "x", at_least=1)
    record("collate", f"collate + step, {where}: transformers processor / nabra", s_theirs / s_ours, "x", at_least=1)
    ref_frames = reference_batch(processor, SYSTEM_PROMPT, examples[:1], waves[:1])["input_features"].shape[-1]
    print(f"features: {tuple(ours_batch['input_features'].shape)} vs (..., {ref_frames}) frames: the stock path pads "
          f"every clip to the checkpoint's {bundle.feature_extractor.chunk_length} s window")


def _labels_like(batch, ours_batch):
    """Answer-only labels for the reference batch (its text layout is the same as ours)."""
    labels = torch.full_like(batch["input_ids"], -100)
    for row in range(labels.shape[0]):
        answer = ours_batch["labels"][row][ours_batch["labels"][row] != -100]
        n = int(batch["attention_mask"][row].sum())
        start = int(batch["attention_mask"][row].nonzero()[0])
        labels[row, start + n - answer.numel() : start + n] = answer
    return labels


if __name__ == "__main__":
    main()
