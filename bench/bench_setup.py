"""Set-up at scale: seconds and peak memory of `nabra train`'s set-up (validation, examples, overlong
filter, metadata table, dev subset, schedule build) on a large metadata-only manifest.

The manifest's lines point at a few real clips (set-up opens no audio but the one stand-in batch),
with durations, transcripts and labels as a real corpus has them: 60 % ASR + DID + SER clips, 30 %
ASR-only, 10 % summarized paragraphs. Targets on this 2-core machine: <= 60 s and <= 3 GB at 1 M.

    .venv/bin/python bench/bench_setup.py [--utterances 1000000] [--schedule uniform|ads]
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

from nabra.testing import tiny_manifest, tiny_model_dir

WORDS = ["الجو", "جميل", "اليوم", "في", "المدينة", "وقال", "الرئيس", "إن", "الاجتماع", "سيعقد", "غدا", "بعد", "الظهر"]
DIALECTS = ("EGY", "GLF", "LAV", "NOR", "MSA")
EMOTIONS = ("neutral", "happy", "sad", "angry", "surprised")


def write_manifest(path: Path, n: int, clips: list[str]) -> None:
    rng = random.Random(0)
    splits = ("train",) * 18 + ("dev", "test")
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            kind = rng.random()
            rec = {"id": f"u{i:07d}", "audio": clips[i % len(clips)], "duration": round(rng.uniform(1, 9), 2),
                   "transcript": " ".join(rng.choices(WORDS, k=rng.randint(4, 14))), "split": rng.choice(splits),
                   "speaker": f"s{i % 5000}"}
            if kind < 0.6:
                rec |= {"dialect": rng.choice(DIALECTS), "emotion": rng.choice(EMOTIONS)}
            elif kind > 0.9:
                rec |= {"summary": " ".join(rng.choices(WORDS, k=6)), "duration": round(rng.uniform(20, 60), 2)}
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")


CHILD = """
import json, resource, sys, time
from nabra.config import RunConfig, from_dict
from nabra.train import setup
cfg = from_dict(RunConfig, json.loads(sys.argv[1]))
t = time.perf_counter()
recipe = setup(cfg, log=lambda *_: None)
seconds = time.perf_counter() - t
print(json.dumps({"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "examples": len(recipe.data.train), "dev": len(recipe.data.dev)}))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--utterances", type=int, default=1_000_000)
    p.add_argument("--schedule", default="uniform")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        small = tiny_manifest(tmp / "clips", 4)
        tiny = tiny_model_dir(tmp / "tiny", small)
        clips = sorted(str(c) for c in (tmp / "clips").rglob("*.wav"))
        manifest = tmp / "big.jsonl"
        t = time.perf_counter()
        write_manifest(manifest, args.utterances, clips)
        print(f"wrote {args.utterances:,} lines in {time.perf_counter() - t:.1f} s ({manifest.stat().st_size / 2**20:.0f} MB)")
        cfg = {"output_dir": str(tmp / "run"), "data": {"manifest": str(manifest), "load_workers": 2},
               "model": {"path": str(tiny), "finetune": "lora"}, "schedule": {"name": args.schedule},
               "train": {"max_steps": 1000, "batch_size": 32}}
        out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cfg)], capture_output=True, text=True,
                             env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "2"})
        if out.returncode:
            sys.exit(out.stderr[-3000:])
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"set-up of {args.utterances:,} utterances ({r['examples']:,} training examples, {r['dev']} dev, "
              f"schedule {args.schedule}): {r['seconds']:.1f} s, peak RSS {r['peak_rss_mb']:.0f} MB "
              f"(targets <= 60 s, <= 3072 MB)")
    scale = 1_000_000 / args.utterances  # the targets are for 1 M utterances
    note = "" if scale == 1 else f"measured at {args.utterances:,}, scaled to 1 M linearly"
    record("setup", f"train set-up, 1 M utterances ({args.schedule})", r["seconds"] * scale, "s", at_most=60, note=note)
    record("setup", f"train set-up peak RSS ({args.utterances:,} utterances)", r["peak_rss_mb"], "MB", at_most=3072)


if __name__ == "__main__":
    main()
