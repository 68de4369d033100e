"""Benchmark the data layer: validate/stat a large metadata-only manifest, and synthesis speed.

Prints lines/s and peak memory (RSS of a fresh subprocess) at two manifest sizes, so that a
memory that grows with the manifest shows, and clips/s of `nabra synth`.

    python bench/bench_data.py [--lines 1000000] [--synth 300]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from figures import record

CHILD = r"""
import resource, sys, time, json
from nabra.corpus.validate import ValidationReport, validate_manifest
from nabra.corpus.stats import manifest_stats
path, what = sys.argv[1], sys.argv[2]
t = time.perf_counter()
if what == "validate":
    report = ValidationReport()
    n_problems = sum(1 for _ in validate_manifest(path, report=report))
    lines = report.lines
else:
    lines = manifest_stats(path).utterances
    n_problems = 0
dt = time.perf_counter() - t
print(json.dumps({"lines": lines, "seconds": dt, "problems": n_problems,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

WORDS = ["مرحبا", "كيف", "حالك", "اليوم", "الجو", "جميل", "في", "القاهرة", "والرياض", "وبيروت", "والرباط", "الطلاب", "يدرسون"]


def make_manifest(path: Path, n: int) -> None:
    rng = random.Random(0)
    dialects, emotions = ("EGY", "GLF", "LAV", "NOR", "MSA"), ("neutral", "happy", "sad", "angry", "surprised")
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            rec = {"id": f"utt-{i:08d}", "audio": f"clips/{i % 1000:04d}/{i:08d}.wav",
                   "duration": round(rng.uniform(1, 20), 3), "language": "ar",
                   "transcript": " ".join(rng.choices(WORDS, k=rng.randint(4, 12))),
                   "speaker": f"spk-{i % 5000}", "source": "bench", "split": "train"}
            if i % 3 == 0:
                rec["dialect"] = dialects[i % 5]
            if i % 4 == 0:
                rec["emotion"] = emotions[i % 5]
            if i % 10 == 0:
                rec["summary"] = " ".join(rng.choices(WORDS, k=5))
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")


def run_child(path: Path, what: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), what], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def bench_manifest(n_lines: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sizes = sorted({max(n_lines // 10, 1000), n_lines})
        print(f"{'lines':>10} {'what':>9} {'lines/s':>12} {'peak RSS MB':>12}")
        for n in sizes:
            path = Path(tmp) / f"m{n}.jsonl"
            make_manifest(path, n)
            for what in ("validate", "stats"):
                r = run_child(path, what)
                assert r["lines"] == n and r["problems"] == 0, r
                print(f"{n:>10,} {what:>9} {n / r['seconds']:>12,.0f} {r['peak_rss_mb']:>12.0f}")
                record("data", f"{what} of {n:,} manifest lines", n / r["seconds"], "lines/s")
                record("data", f"{what} of {n:,} manifest lines: peak RSS", r["peak_rss_mb"], "MB")


def bench_synth(n: int) -> None:
    from nabra.corpus.synth import SynthConfig, synthesize

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        result = synthesize(Path(tmp) / "synth", SynthConfig(utterances=n, seed=0, workers=2), progress=False)
        dt = time.perf_counter() - t
        print(f"synth: {result.utterances} clips ({result.paragraphs} paragraphs, {result.audio_seconds / 60:.1f} min "
              f"of audio) in {dt:.1f} s = {result.utterances / dt:.0f} clips/s with 2 workers")
    record("data", "nabra synth (eSpeak NG, 2 workers)", result.utterances / dt, "clips/s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lines", type=int, default=1_000_000)
    p.add_argument("--synth", type=int, default=300, help="clips to synthesize (0 = skip)")
    args = p.parse_args()
    bench_manifest(args.lines)
    if args.synth:
        bench_synth(args.synth)


if __name__ == "__main__":
    main()
