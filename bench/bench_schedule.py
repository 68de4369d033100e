"""Per-batch cost and memory of the schedules at 10k, 100k and 1M examples.

ADS: random 256-d float16 aligner embeddings, batch 32, all five tasks with labels. For each N (in
its own process, so peak RSS is per N): time of set_embeddings (normalisation + k-means), median
and p95 time per ADS batch, embedding bytes, state_dict size, peak RSS; median per-batch time of
uniform and tpc. Target: ADS <= 2 ms per batch at every N, embeddings held as float16.

    python bench/bench_schedule.py [--sizes 10000 100000 1000000] [--batches 500]
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import subprocess
import sys
import time

import numpy as np
import torch

from nabra.schedule import build_schedule
from nabra.schedule.testing import random_table

DIM, BATCH = 256, 32


def per_batch_ms(schedule, batches: int) -> np.ndarray:
    for _ in range(20):  # warm-up
        schedule.next_batch()
    times = np.empty(batches)
    for i in range(batches):
        t = time.perf_counter()
        schedule.next_batch()
        times[i] = time.perf_counter() - t
    return 1000 * times


def random_embeddings(n: int, seed: int = 0) -> np.ndarray:
    rng, out = np.random.default_rng(seed), np.empty((n, DIM), np.float16)
    for i in range(0, n, 65_536):  # chunks: a float64 draw of 1M x 256 would take 2 GB
        out[i:i + 65_536] = rng.standard_normal((min(65_536, n - i), DIM), dtype=np.float32)
    return out


def state_bytes(schedule) -> int:
    buf = io.BytesIO()
    torch.save(schedule.state_dict(), buf)
    return buf.tell()


def measure(n: int, batches: int) -> dict:
    table = random_table(n, probs=[0.4, 0.1, 0.1, 0.25, 0.15])
    cfg = {"batch_size": BATCH, "seed": 0, "total_steps": 10 * batches}
    ads = build_schedule("ads", table, **cfg)
    vectors = random_embeddings(n)
    t = time.perf_counter()
    ads.set_embeddings(vectors)
    set_s = time.perf_counter() - t
    del vectors
    ads_ms = per_batch_ms(ads, batches)
    return {
        "n": n, "set_embeddings_s": set_s, "ads_median_ms": float(np.median(ads_ms)),
        "ads_p95_ms": float(np.percentile(ads_ms, 95)), "embeddings_mb": ads.embeddings.nbytes / 2**20,
        "embeddings_dtype": str(ads.embeddings.dtype), "state_mb": state_bytes(ads) / 2**20,
        "uniform_median_ms": float(np.median(per_batch_ms(build_schedule("uniform", table, **cfg), batches))),
        "tpc_median_ms": float(np.median(per_batch_ms(build_schedule("tpc", table, **cfg), batches))),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--batches", type=int, default=500)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.batches)))
        return
    rows = []
    for n in args.sizes:
        out = subprocess.run([sys.executable, __file__, "--one", str(n), "--batches", str(args.batches)],
                             check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    head = ("N", "ADS med ms", "ADS p95 ms", "uniform ms", "tpc ms", "set_emb s", "emb MB", "state MB", "peak RSS MB")
    print(f"batch {BATCH}, {DIM}-d float16 embeddings, {args.batches} batches timed")
    print(" | ".join(f"{h:>11}" for h in head))
    for r in rows:
        cells = (r["n"], r["ads_median_ms"], r["ads_p95_ms"], r["uniform_median_ms"], r["tpc_median_ms"],
                 r["set_embeddings_s"], r["embeddings_mb"], r["state_mb"], r["peak_rss_mb"])
        print(" | ".join(f"{c:>11,}" if isinstance(c, int) else f"{c:>11.2f}" for c in cells))


if __name__ == "__main__":
    main()
