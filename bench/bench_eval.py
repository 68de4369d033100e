"""Evaluation speed: metrics on large prediction sets, and batched generation sorted vs unsorted.

1. WER + CER (both normalizations, per-dialect breakdown) of 10,000 ASR predictions; target ≤ 2 s.
2. ROUGE-1/2/L of 1,000 summaries (~30 words each); target ≤ 5 s.
3. Utterances/s of the tiny thinker's greedy generation on clips of 1-20 s in random order, with
   length-sorted batches vs batches in input order (same answer budget for both), and their ratio.

    python bench/bench_eval.py [--utterances 10000] [--summaries 1000] [--clips 64]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from figures import record

from nabra.corpus.manifest import Utterance
from nabra.evaluate.metrics import Prediction, compute_metrics
from nabra.evaluate.runner import generate_predictions
from nabra.model import load
from nabra.model.collate import Collator
from nabra.tasks import make_example
from nabra.testing import tiny_model_dir

_TEXT = ("ذهب إلى المدرسة الجو جميل اليوم في القاهرة افتتح الوزير مستشفى جديدا مرحبا بكم قالَ المعلّم "
         "الحكومة أعلنت عن خطة جديدة لدعم الاقتصاد والتعليم والصحة في المناطق الريفية")
WORDS = tuple(_TEXT.split())


def _noisy(words: list[str], rng: random.Random) -> str:
    """A hypothesis: ~10% of the words dropped, ~5% replaced."""
    out = [w if rng.random() > 0.05 else rng.choice(WORDS) for w in words if rng.random() > 0.1]
    return " ".join(out)


def bench_wer(n: int) -> None:
    rng = random.Random(0)
    preds = []
    for i in range(n):
        ref = rng.choices(WORDS, k=rng.randint(5, 20))
        hyp = _noisy(ref, rng)
        preds.append(Prediction(f"u{i}#asr", "asr", reference=" ".join(ref), prediction=hyp, parsed=hyp,
                                dialect=("EGY", "GLF", "LAV", "NOR", "MSA")[i % 5]))
    t = time.perf_counter()
    m = compute_metrics(preds)["asr"]
    dt = time.perf_counter() - t
    print(f"WER+CER, {n:,} utterances (default + leaderboard, per dialect): {dt:.2f} s (target ≤ 2 s); "
          f"WER {m['wer']:.3f}, CER {m['cer']:.3f}")
    record("eval", f"WER+CER of {n:,} ASR predictions", dt * 10_000 / n, "s per 10k", at_most=2)


def bench_rouge(n: int) -> None:
    rng = random.Random(1)
    preds = []
    for i in range(n):
        ref = rng.choices(WORDS, k=rng.randint(20, 40))
        hyp = _noisy(ref, rng)
        preds.append(Prediction(f"s{i}#ssum", "ssum", reference=" ".join(ref), prediction=hyp, parsed=hyp))
    t = time.perf_counter()
    m = compute_metrics(preds)["ssum"]
    dt = time.perf_counter() - t
    print(f"ROUGE-1/2/L, {n:,} summaries: {dt:.2f} s (target ≤ 5 s); ROUGE-L {m['rougeL']:.3f}")
    record("eval", f"ROUGE-1/2/L of {n:,} summaries", dt * 1_000 / n, "s per 1k", at_most=5)


class MemoryStore:
    """AudioStore's interface over waveforms already in memory (file reads excluded)."""

    def __init__(self, waves: dict[str, np.ndarray]):
        self.waves = waves

    def samples(self, examples):
        return [(ex, self.waves[ex.utt_id]) for ex in examples]


def bench_generation(n_clips: int, batch_size: int, new_tokens: int, repeats: int) -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        bundle = load(tiny_model_dir(Path(tmp) / "tiny"))
    examples, waves = [], {}
    for i in range(n_clips):
        seconds = float(rng.uniform(1, 20))
        utt = Utterance(id=f"c{i}", audio="/mem.wav", transcript="الجو جميل اليوم", duration=seconds)
        examples.append(make_example(utt, "asr"))
        waves[utt.id] = (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)
    collator = Collator(bundle.tokenizer, bundle.feature_extractor)
    store = MemoryStore(waves)
    rates = {}
    for sort in (True, False, True, False)[: 2 * repeats]:
        t = time.perf_counter()
        generate_predictions(bundle.model, bundle, collator, examples, store, batch_size=batch_size,
                             max_new_tokens=new_tokens, sort_by_length=sort, progress=False)
        rates.setdefault(sort, []).append(n_clips / (time.perf_counter() - t))
    s, u = max(rates[True]), max(rates[False])
    print(f"tiny thinker, {n_clips} clips of 1-20 s, batch {batch_size}, {new_tokens} new tokens: "
          f"sorted {s:.1f} utt/s, unsorted {u:.1f} utt/s, ratio {s / u:.2f}x")
    record("eval", f"generation, {n_clips} clips of 1-20 s: length-sorted batches", s, "utt/s")
    record("eval", "generation: length-sorted / input-order batches", s / u, "x", at_least=1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--utterances", type=int, default=10_000)
    p.add_argument("--summaries", type=int, default=1_000)
    p.add_argument("--clips", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--new-tokens", type=int, default=16)
    p.add_argument("--repeats", type=int, default=2, help="runs of each order (the best is kept)")
    args = p.parse_args()
    torch.set_num_threads(2)
    bench_wer(args.utterances)
    bench_rouge(args.summaries)
    bench_generation(args.clips, args.batch_size, args.new_tokens, args.repeats)


if __name__ == "__main__":
    main()
