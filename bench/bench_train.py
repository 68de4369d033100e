"""Recipe overhead: steps/s of `nabra train` vs a bare PyTorch loop over the same tiny model and
the same batches (same schedule order, same audio store and collator, same optimizer).

The first ``--warmup`` steps of each (audio decoding, allocator warm-up) are not timed.

    python bench/bench_train.py [--steps 60] [--warmup 20]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from figures import record

from nabra.config import RunConfig, from_dict
from nabra.corpus.synth import SynthConfig, synthesize
from nabra.testing import tiny_model_dir
from nabra.train import setup, train


def make_config(tmp: Path, steps: int) -> RunConfig:
    corpus = tmp / "corpus" / "manifest.jsonl"
    if not corpus.is_file():
        synthesize(corpus.parent, SynthConfig(utterances=120, seed=0, workers=2, long_fraction=0.0), progress=False)
    model = tiny_model_dir(tmp / "tiny", corpus)
    return from_dict(RunConfig, {
        "output_dir": str(tmp / "run"), "data": {"manifest": str(corpus)},
        "model": {"path": str(model), "finetune": "full"}, "schedule": {"name": "uniform"},
        "train": {"max_steps": steps, "batch_size": 16, "lr": 1e-3, "save_every": 0, "eval_every": 0, "seed": 0},
    })


def time_recipe(cfg: RunConfig, warmup: int) -> float:
    """Seconds per step of `nabra train`, from its metrics (steps after the warm-up)."""
    run = train(cfg, progress=False, log=lambda *_: None)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    per_step = [cfg.train.batch_size / r["examples_per_s"] for r in records if "loss" in r][warmup:]
    return sum(per_step) / len(per_step)


def time_bare(cfg: RunConfig, warmup: int) -> float:
    """Seconds per step of a plain loop: next batch -> decode -> collate -> forward -> backward -> step.

    Its forward is the recipe's own answer-only loss (:class:`nabra.model.loss.AnswerLoss`), so the
    ratio measures the recipe's bookkeeping (schedule, accelerate, logging), not a different loss."""
    cfg.output_dir = cfg.output_dir + "-bare"
    loop = setup(cfg, log=lambda *_: None)
    model, opt, data = loop.acc.unwrap_model(loop.model), loop.optimizer, loop.data  # AnswerLoss(thinker)
    times = []
    for _ in range(cfg.train.max_steps):
        t = time.perf_counter()
        batch = loop.collator(data.store.samples([data.train[i] for i in loop.schedule.next_batch()]))
        sums, counts = model(batch)  # the same answer-only loss as the recipe: mean over answer tokens
        loss = sums.sum() / counts.sum()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.max_grad_norm)
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t)
    times = times[warmup:]
    return sum(times) / len(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--warmup", type=int, default=20)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        recipe = time_recipe(make_config(Path(tmp), args.steps), args.warmup)
        bare = time_bare(make_config(Path(tmp), args.steps), args.warmup)
    print(f"tiny thinker, batch 16, {args.steps - args.warmup} timed steps, {torch.get_num_threads()} threads")
    print(f"nabra train : {1 / recipe:6.2f} steps/s ({1000 * recipe:.1f} ms/step)")
    print(f"bare loop   : {1 / bare:6.2f} steps/s ({1000 * bare:.1f} ms/step)")
    print(f"ratio (recipe / bare steps/s): {bare / recipe:.3f}  (target >= 0.95)")
    record("train", "nabra train, tiny thinker, batch 16", 1 / recipe, "steps/s")
    record("train", "nabra train / bare loop, steps/s", bare / recipe, "x", at_least=0.95)


if __name__ == "__main__":
    main()
