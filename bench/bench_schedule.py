"""Per-batch cost and memory of the schedules at 10k, 100k and 1M examples.

Every registered schedule, batch 32, all five tasks with labels; the aligner schedules (ads,
tpc_ads) with random 256-d float16 embeddings, tpc_ads timed mostly past its switch, adaptive with
its shares moved. For each N (in its own process, so peak RSS is per N): median and p95 time per
batch, state_dict size, set_embeddings time (normalisation + k-means), embedding bytes, peak RSS.
Target: every schedule <= 2 ms per batch at 1M, flat in N; embeddings held as float16.

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
from figures import record

from nabra.schedule import SCHEDULE_NAMES, build_schedule
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


def build(name: str, table, cfg: dict, vectors: np.ndarray):
    """Schedule ``name`` in the state it spends a run in: ADS with embeddings, tpc_ads mostly past
    its switch, adaptive with shares moved off their start."""
    knobs = {"switch": 0.02} if name == "tpc_ads" else {}
    s = build_schedule(name, table, **cfg, **knobs)
    t = time.perf_counter()
    if s.uses_embeddings:
        s.set_embeddings(vectors)
    set_s = time.perf_counter() - t
    if name == "adaptive":
        s.observe(0, {"asr": 2.0, "ssum": 3.0, "tsum": 3.0, "did": 1.6, "ser": 1.6})
        s.observe(100, {"asr": 1.2, "ssum": 2.9, "tsum": 2.0, "did": 0.3, "ser": 0.5})
    return s, set_s


def measure(n: int, batches: int) -> dict:
    table = random_table(n, probs=[0.4, 0.1, 0.1, 0.25, 0.15])
    cfg = {"batch_size": BATCH, "seed": 0, "total_steps": 10 * batches}
    vectors = random_embeddings(n)
    out = {"n": n, "schedules": {}}
    for name in SCHEDULE_NAMES:
        s, set_s = build(name, table, cfg, vectors)
        ms = per_batch_ms(s, batches)
        out["schedules"][name] = {"median_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95)),
                                  "state_mb": state_bytes(s) / 2**20, "set_embeddings_s": set_s}
        if name == "ads":
            out["embeddings_mb"], out["embeddings_dtype"] = s.embeddings.nbytes / 2**20, str(s.embeddings.dtype)
        del s
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


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
    print(f"batch {BATCH}, {DIM}-d float16 embeddings, {args.batches} batches timed (target: <= 2 ms per batch)")
    head = ("N", "schedule", "median ms", "p95 ms", "state MB", "set_emb s")
    print(" | ".join(f"{h:>11}" for h in head))
    for r in rows:
        for name, m in r["schedules"].items():
            cells = (r["n"], name, m["median_ms"], m["p95_ms"], m["state_mb"], m["set_embeddings_s"])
            print(" | ".join(f"{c:>11,}" if isinstance(c, int) else f"{c:>11}" if isinstance(c, str)
                             else f"{c:>11.2f}" for c in cells))
    for r in rows:
        print(f"N {r['n']:,}: ADS embeddings {r['embeddings_mb']:.1f} MB {r['embeddings_dtype']}, "
              f"peak RSS {r['peak_rss_mb']:.0f} MB")
    largest = max(rows, key=lambda r: r["n"])
    for name, m in largest["schedules"].items():
        record("schedule", f"{name}: batch of {BATCH} at N = {largest['n']:,}", m["median_ms"], "ms", at_most=2)
    smallest = min(rows, key=lambda r: r["n"])
    if smallest is not largest:
        worst = max(largest["schedules"][s]["median_ms"] / max(smallest["schedules"][s]["median_ms"], 1e-9)
                    for s in largest["schedules"])
        record("schedule", f"flat in N: worst ms ratio N {largest['n']:,} / N {smallest['n']:,}", worst, "x", at_most=2)

if __name__ == "__main__":
    main()
