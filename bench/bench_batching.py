"""How a step lays its global batch onto micro-batches: equal counts vs a token budget vs packing.

Three length mixes, each example's tokens = prompt + audio placeholders (25 a second, Qwen-Omni) + answer:

- (a) MGB-2-like ASR segments of 1-20 s with 2-10-s DID/SER clips;
- (b) (a) with 30 % long examples: spoken articles of 60-300 s for SSUM and TSUM texts;
- (c) the demo corpus (its manifest's durations and texts through the tiny model's own token count).

For each, over ``--steps`` global batches of ``--batch`` drawn at random (seeded) and laid out for
``--world`` processes: equal counts of ``--micro`` unsorted, equal counts sorted by length (Nabra's
``micro_batch_size``), a token budget (``micro_batch_tokens``, the 7B recipe's 32,768 by default), the
budget with packing. Printed: tokens computed (padding included) / useful tokens, the largest
micro-batch, micro-batches per step. Then the tiny model's CPU training examples/s on mix (b) (tone
clips of those lengths), for today's layout, the budget and the budget with packing.

    python bench/bench_batching.py [--steps 200] [--train-steps 6]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
from figures import record

from nabra.schedule.base import group_by_length
from nabra.schedule.micro import cost, plan_micro_batches

AUDIO_PER_S = 25
PROMPT = 40
TARGETS = {"packing": 1.02, "budget": 1.15}


def mix(kind: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """``(tokens, has_audio, seconds, task)`` of ``n`` examples of mix ``a`` or ``b``."""
    rng = np.random.default_rng(seed)
    p = [0.7, 0.3, 0.0, 0.0] if kind == "a" else [0.49, 0.21, 0.2, 0.1]
    task = rng.choice(["asr", "label", "ssum", "tsum"], n, p=p)
    seconds = np.select([task == "asr", task == "label", task == "ssum"],
                        [rng.uniform(1, 20, n), rng.uniform(2, 10, n), rng.uniform(60, 300, n)], 0.0)
    answer = np.select([task == "asr", task == "label", task == "ssum"], [4 * seconds, 3, 80], 80).astype(int)
    text = np.where(task == "tsum", rng.integers(300, 1500, n), 0)
    tokens = PROMPT + text + (AUDIO_PER_S * seconds).astype(int) + np.where(seconds > 0, 2, 0) + answer
    return tokens.astype(np.int64), seconds > 0, seconds, list(task)


def layouts(batch, lengths, audio, world: int, micro: int, budget: int) -> dict[str, list[list[int]]]:
    """Each strategy's micro-batches (lists of lengths) of one global batch."""
    out = {"equal counts, unsorted": [lengths[batch[k : k + micro]].tolist() for k in range(0, len(batch), micro)]}
    sorted_ = group_by_length(batch, lengths, world, len(batch) // (world * micro))
    out["equal counts, sorted (micro_batch_size)"] = [lengths[sorted_[k : k + micro]].tolist()
                                                      for k in range(0, len(batch), micro)]
    for name, packing in (("token budget", False), ("token budget + packing", True)):
        plan = plan_micro_batches(batch, lengths, audio, world, budget, packing=packing)
        out[name] = [lengths[m].tolist() for m in plan.micro_batches()]
    return out


def simulate(name: str, lengths, audio, args) -> dict[str, dict]:
    rng = np.random.default_rng(1)
    acc: dict[str, dict] = {}
    over = 0
    for _ in range(args.steps):
        batch = rng.choice(len(lengths), args.batch, replace=False)
        useful = int(lengths[batch].sum())
        for strategy, micros in layouts(batch, lengths, audio, args.world, args.micro, args.budget).items():
            packing = strategy.endswith("packing")
            a = acc.setdefault(strategy, {"computed": 0, "useful": 0, "largest": 0, "per_step": []})
            costs = [cost(m, packing) for m in micros]
            a["computed"] += sum(costs)
            a["useful"] += useful
            a["largest"] = max(a["largest"], max(costs))
            a["per_step"].append(len(micros))
            if packing:
                over = max(over, len(micros) - math.ceil(useful / args.budget))
    print(f"\nmix {name}: {len(lengths):,} examples, mean {lengths.mean():,.0f} tokens (max {lengths.max():,}); "
          f"global batch {args.batch}, {args.world} process(es); budget {args.budget:,}")
    print(f"  {'':42} {'computed/useful':>16} {'largest micro-batch':>20} {'micro-batches a step':>21}")
    for strategy, a in acc.items():
        ratio = a["computed"] / a["useful"]
        print(f"  {strategy:42} {ratio:>16.3f} {a['largest']:>20,} {statistics.mean(a['per_step']):>14.1f} "
              f"(max {max(a['per_step'])})")
        key = "packing" if strategy.endswith("packing") else "budget" if strategy.startswith("token") else None
        target = TARGETS[key] if key and name.startswith("b") else None
        record("batching", f"mix {name}, {strategy}: computed/useful tokens", ratio, "x", at_most=target)
        record("batching", f"mix {name}, {strategy}: largest micro-batch", a["largest"], "tokens",
               at_most=args.budget if key else None)
        record("batching", f"mix {name}, {strategy}: micro-batches per step", statistics.mean(a["per_step"]), "")
    record("batching", f"mix {name}: token budget + packing, micro-batches beyond ceil(useful / budget)", over, "",
           at_most=args.world)
    print(f"  packed: at most {over} micro-batch(es) a step beyond ceil(useful tokens / budget)")
    return acc


def demo_lengths(args) -> tuple[np.ndarray, np.ndarray] | None:
    """The demo corpus's training examples' token estimates, through the tiny model's collator."""
    from nabra import data as run_data
    from nabra.config import RunConfig, from_dict
    from nabra.corpus.synth import SynthConfig, synthesize
    from nabra.demo import FULL
    from nabra.model import load
    from nabra.model.collate import Collator
    from nabra.testing import tiny_model_dir

    with tempfile.TemporaryDirectory() as tmp:
        manifest = Path(args.demo_manifest)
        if not manifest.is_file():  # the demo's corpus, synthesized as `make demo` does
            synthesize(Path(tmp) / "demo", SynthConfig(
                utterances=FULL["utterances"], seed=0, long_fraction=FULL["long_fraction"],
                dialect_density=FULL["dialect_density"], summary_fraction=FULL["summary_fraction"]), progress=False)
            manifest = Path(tmp) / "demo" / "manifest.jsonl"
        cfg = from_dict(RunConfig, {"data": {"manifest": str(manifest)}, "collate": {"max_length": None}})
        utts = run_data.read_valid(str(manifest), cfg, None, lambda *_: None)
        bundle = load(tiny_model_dir(Path(tmp) / "tiny", manifest))
        d = run_data.prepare(cfg, Collator.for_bundle(bundle, cfg.collate), run_data.Manifests(utts, utts, {}),
                             lambda *_: None)
        return np.asarray(d.lengths, dtype=np.int64), np.asarray(d.table.has_audio)


def write_mix_b(folder: Path, n: int) -> Path:
    """A manifest of tone clips with mix (b)'s durations (SSUM articles with summaries, TSUM from their transcripts)."""
    from nabra.corpus.manifest import Utterance, write_manifest
    from nabra.testing import write_clip

    tokens, _, seconds, task = mix("b", n, seed=2)
    dialects, emotions = ("EGY", "GLF", "LAV", "NOR", "MSA"), ("neutral", "happy", "sad", "angry", "surprised")
    utts = []
    for k, (s, t) in enumerate(zip(seconds, task, strict=True)):
        words = max(2, int(2.5 * (s or 60)))
        transcript = " ".join(["كلمة", "عربية", "في", "نشرة", "الأخبار"][i % 5] for i in range(words))
        if t == "tsum":
            utts.append(Utterance(id=f"t{k}", audio=None, language="ar", transcript=transcript, summary="ملخص الخبر",
                                  split="train"))
            continue
        audio = str(write_clip(folder / "audio" / f"u{k}.wav", float(s), freq=180 + k % 200))
        utts.append(Utterance(id=f"u{k}", audio=audio, duration=round(float(s), 3), language="ar",
                              transcript=transcript if t != "label" else None,
                              summary="ملخص المقال" if t == "ssum" else None,
                              dialect=dialects[k % 5] if t == "label" else None,
                              emotion=emotions[k % 5] if t == "label" else None, split="train"))
    path = folder / "manifest.jsonl"
    write_manifest(path, utts)
    return path


def train_speed(args) -> None:
    """Examples/s of the tiny model's CPU training on mix (b): today's layout, the budget, the budget + packing."""
    from nabra.config import RunConfig, from_dict
    from nabra.testing import tiny_model_dir
    from nabra.train import train

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        manifest = write_mix_b(tmp / "corpus", args.train_utterances)
        model = tiny_model_dir(tmp / "tiny", manifest)
        layouts_ = {"equal counts, sorted (micro_batch_size)": {"micro_batch_size": args.micro},
                    "token budget": {"micro_batch_tokens": args.cpu_budget},
                    "token budget + packing": {"micro_batch_tokens": args.cpu_budget}}
        speeds: dict[str, list[float]] = {}
        for run in range(args.runs):
            for name, train_keys in layouts_.items():
                cfg = from_dict(RunConfig, {
                    "output_dir": str(tmp / f"run-{run}-{len(speeds.get(name, []))}-{name[:5]}{name[-4:]}"),
                    "data": {"manifest": str(manifest), "tasks": ["asr", "ssum", "tsum", "did", "ser"],
                             "load_workers": 2},
                    "model": {"path": str(model), "finetune": "full"}, "schedule": {"name": "uniform"},
                    "collate": {"max_length": "window", "packing": name.endswith("packing")},
                    "train": {"max_steps": args.train_steps, "batch_size": args.batch, "lr": 1e-3, "save_every": 0,
                              "eval_every": 0, "seed": run, **train_keys}})
                folder = train(cfg, progress=False, log=lambda *_: None)
                records = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
                per_s = [r["examples_per_s"] for r in records if "loss" in r][1:]  # the first step warms caches
                speeds.setdefault(name, []).append(statistics.mean(per_s))
        base = speeds["equal counts, sorted (micro_batch_size)"]
        print(f"\ntiny model, CPU training on mix (b) ({args.train_utterances} utterances, batch {args.batch}, "
              f"{args.train_steps} steps, first left out; {args.runs} runs):")
        for name, values in speeds.items():
            ratio = [v / b for v, b in zip(values, base, strict=True)]
            print(f"  {name:42} {min(values):6.2f}-{max(values):6.2f} examples/s   x{min(ratio):.2f}-{max(ratio):.2f}")
            record("batching", f"mix b, {name}: tiny model CPU training", statistics.mean(values), "examples/s")
            if name != "equal counts, sorted (micro_batch_size)":
                record("batching", f"mix b, {name}: CPU speed vs equal counts sorted", statistics.mean(ratio), "x",
                       at_least=1.15 if name.endswith("packing") else None)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--examples", type=int, default=20_000)
    p.add_argument("--steps", type=int, default=200, help="global batches simulated per mix")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--micro", type=int, default=4, help="examples per micro-batch of the equal-count layouts")
    p.add_argument("--world", type=int, default=1)
    p.add_argument("--budget", type=int, default=32_768, help="micro_batch_tokens (the 7B recipe's)")
    p.add_argument("--demo-manifest", default="demo/corpus/manifest.jsonl",
                   help="the demo corpus (absent: synthesized as make demo does)")
    p.add_argument("--train-steps", type=int, default=6, help="CPU training steps per layout (0: skip)")
    p.add_argument("--train-utterances", type=int, default=160)
    p.add_argument("--cpu-budget", type=int, default=16_384, help="micro_batch_tokens of the CPU training runs")
    p.add_argument("--runs", type=int, default=1)
    args = p.parse_args()
    for name in ("a", "b"):
        lengths, audio, _, _ = mix(name, args.examples)
        simulate(f"{name} ({'MGB-2-like' if name == 'a' else 'with 60-300-s articles and TSUM'})", lengths, audio, args)
    demo = demo_lengths(args)
    if demo is not None:
        simulate("c (the demo corpus)", *demo, args)
    if args.train_steps:
        train_speed(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
