"""The same schedule trained with and without ``data.augment`` on the demo's corpus and base, scored on the test
split clean and under listening conditions: what augmentation buys, with seeds.

Needs a finished full demo (``make demo`` or ``nabra demo``): its corpus, its base and its runs of ``--schedule``
are the "without" side (evaluated under the conditions they lack); the "with" side is trained here, into
``DEMO/runs-augment/``, with the demo's own overrides (steps, packing) plus the augmentation. Then one table per
task — condition × {without, with} — and a report of both sides (``DEMO/report-augment``)::

    python bench/bench_augment_pair.py --demo demo --schedule ads --seeds 3
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

from nabra.corpus.augment import Condition
from nabra.evaluate.report.runs import read_run
from nabra.evaluate.stats import Stat
from nabra.files import read_json

AUGMENT = ["data.augment.speed.prob=0.3", "data.augment.reverb.prob=0.3", "data.augment.noise.prob=0.5",
           "data.augment.noise.snr=[0,20]", "data.augment.gain.prob=0.3"]
"""docs/augment.md's example: speed 0.9/1/1.1, a synthetic room, coloured noise or babble at 0-20 dB, gain."""
CONDITIONS = ["noise:snr=10,source=babble", "noise:snr=10,source=white", "noise:snr=0,source=white", "reverb"]


def main() -> int:
    from nabra import demo

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--demo", type=Path, default=Path("demo"), help="a finished full demo's folder (default demo)")
    p.add_argument("--schedule", default="ads")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--jobs", type=int, default=2)
    args = p.parse_args()
    plan = demo.demo_plan() | {k: v for k, v in read_json(args.demo / "demo-plan.json").items() if k != "family"}
    manifest, base = args.demo / "corpus" / "manifest.jsonl", args.demo / "runs" / "base-pretrain" / "final"
    if not manifest.is_file() or not base.is_dir():
        raise SystemExit(f"{args.demo}: no finished demo here (corpus/manifest.jsonl, runs/base-pretrain/final/)")
    packed = demo.packing_overrides(plan, base)
    jobs = []
    for seed in range(args.seeds):
        plain = demo.run_overrides(args.demo, manifest, base, args.schedule, seed, plan["steps"])
        augmented = [o.replace(str(args.demo / "runs"), str(args.demo / "runs-augment"))
                     if o.startswith("output_dir=") else o for o in plain]
        jobs += [(plain + packed, "without"), (augmented + packed + AUGMENT, "with")]
    t0 = time.perf_counter()
    runs = {"without": [], "with": []}
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(demo.train_and_evaluate, overrides, str(manifest), 1, True, CONDITIONS): side
                   for overrides, side in jobs}
        for future in as_completed(futures):
            run, seconds = future.result()
            runs[futures[future]].append(Path(run))
            print(f"{futures[future]:>8} {run}: {seconds:.0f} s", flush=True)
    print(f"trained and evaluated in {time.perf_counter() - t0:.0f} s")
    read = {side: [read_run(r) for r in sorted(paths)] for side, paths in runs.items()}
    for task, key in (("asr", "cer"), ("ssum", "rougeL"), ("did", "macro_f1"), ("ser", "macro_f1")):
        print(f"\n{task} {key} (%), mean ± std over {args.seeds} seeds, {args.schedule}")
        print("| condition | without data.augment | with data.augment |\n|---|---|---|")
        for cond in ["clean", *(Condition.parse(c).name for c in CONDITIONS)]:
            cells = [Stat.of([r.value(task, key, cond) for r in read[side]]) for side in ("without", "with")]
            print(f"| {cond} | " + " | ".join(c.text(100) if c else "–" for c in cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
