"""Do TPC's stage-boundary gradient spikes shrink with ``blend_steps``? Measured on the demo.

For each seed, the demo recipe's tpc run with ``blend_steps: 0`` and with ``blend_steps: B``, from the
demo's base (built by ``nabra demo``), without dev or test evaluations. The spike of a boundary is the largest
gradient norm within ``--around`` steps after it, over the median gradient norm of the
``--context`` steps before it; printed per seed and boundary, then the mean per setting.

    python bench/bench_tpc_blend.py --demo demo --blend 20 [--seeds 3] [--jobs 2]
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from nabra.demo import FULL, default_jobs, run_overrides, train_and_evaluate
from nabra.evaluate.claims import stage_starts
from nabra.evaluate.report import read_run


def spikes(run, around: int, context: int) -> list[float]:
    run = read_run(run)
    train = sorted(run.train, key=lambda r: r["step"])
    steps = np.array([r["step"] for r in train])
    norms = np.array([r["grad_norm"] for r in train])
    out = []
    for b, _ in stage_starts(run):
        before = norms[(steps >= b - context) & (steps < b)]
        after = norms[(steps >= b) & (steps < b + around)]
        if len(before) and len(after):
            out.append(float(after.max() / np.median(before)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, default=Path("demo"), help="the demo's output folder (corpus, base)")
    parser.add_argument("--blend", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=FULL["steps"])
    parser.add_argument("--around", type=int, default=10)
    parser.add_argument("--context", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=default_jobs())
    args = parser.parse_args()
    manifest, base = args.demo / "corpus" / "manifest.jsonl", args.demo / "runs" / "base-pretrain" / "final"
    out = args.demo / "bench-tpc-blend"
    todo = []
    for blend in (0, args.blend):
        for seed in range(args.seeds):
            where = out / f"blend{blend}"
            overrides = run_overrides(where, manifest, base, "tpc", seed, args.steps)
            overrides += [f"schedule.tpc.blend_steps={blend}", "train.eval_every=0"]
            run = where / "runs" / f"tpc-seed{seed}"
            if not (run / "final" / "nabra_run.json").is_file():
                todo.append(overrides)
    with ProcessPoolExecutor(max(1, args.jobs), mp_context=get_context("spawn")) as pool:
        list(pool.map(train_and_evaluate, todo, [str(manifest)] * len(todo), [1] * len(todo), [False] * len(todo)))
    print(f"tpc, {args.steps} steps, spike = max grad norm in {args.around} steps after a stage boundary / "
          f"median of the {args.context} before")
    for blend in (0, args.blend):
        values = []
        for seed in range(args.seeds):
            s = spikes(out / f"blend{blend}" / "runs" / f"tpc-seed{seed}", args.around, args.context)
            values += s
            print(f"blend_steps {blend:>3}, seed {seed}: " + ", ".join(f"×{v:.2f}" for v in s))
        print(f"blend_steps {blend:>3}: mean spike ×{np.mean(values):.2f} (max ×{np.max(values):.2f})")


if __name__ == "__main__":
    main()
