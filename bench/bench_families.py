"""Per model family: collate ms per batch and tiny-model training steps/s on this CPU, as ratios to
Qwen2.5-Omni.

Every family's tiny model at the same sizes (``TinyConfig`` defaults: LM width 128, 2 layers; the
MoE family with 4 experts, top-2), the same 16 clips of 2-8 s (in memory), AdamW, full fine-tuning
and LoRA (r 16, the attention and MLP projections the family's LM has). Prints the median of
several repeats.

    python bench/bench_families.py [--clips 16] [--repeats 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from bench_collate import median_ms  # run from the repository root: bench/ is on the path
from figures import record

from nabra.corpus.manifest import Utterance
from nabra.model import load
from nabra.model.collate import Collator
from nabra.model.config import LoraConfig
from nabra.model.families import FAMILIES
from nabra.model.lora import trainable
from nabra.model.tiny import TinyConfig, init_tiny
from nabra.tasks import make_example


def samples(n_clips: int):
    rng = np.random.default_rng(0)
    out = []
    for i in range(n_clips):
        seconds = float(rng.uniform(2, 8))
        task = ("asr", "did", "ser")[i % 3]
        utt = Utterance(id=f"b{i}", audio="/x.wav", transcript="الجو جميل اليوم في المدينة", dialect="EGY",
                        emotion="sad", duration=seconds)
        out.append((make_example(utt, task), (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)))
    return out


def measure(folder: Path, batch, repeats: int) -> dict[str, float]:
    bundle = load(folder)
    collator = Collator.for_bundle(bundle)
    figures = {"collate ms": median_ms(lambda: collator(batch), repeats)}
    inputs = {k: v for k, v in collator(batch).items() if isinstance(v, torch.Tensor)}
    for mode in ("full", "lora"):
        torch.manual_seed(0)
        model = trainable(load(folder).model, mode, LoraConfig(r=16))
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

        def step(model=model, opt=opt):
            model(**inputs).loss.backward()
            opt.step()
            opt.zero_grad()

        figures[f"{mode} steps/s"] = 1000 / median_ms(step, repeats)
    return figures


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=16)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    batch = samples(args.clips)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, fam in FAMILIES.items():
            folder = init_tiny(Path(tmp) / name, None, TinyConfig(vocab_size=512), fam)
            params = sum(p.numel() for p in load(folder).model.parameters())
            results[name] = measure(folder, batch, args.repeats) | {"parameters": params}
    ref = results["qwen2_5_omni"]
    print(f"{args.clips} clips of 2-8 s, {args.threads} threads, median of {args.repeats}")
    print(f"{'family':<14} {'params':>9} {'collate ms':>11} {'full steps/s':>13} {'lora steps/s':>13}  ratios to qwen2_5_omni")
    for name, r in results.items():
        ratios = ", ".join(f"{k.split()[0]} {r[k] / ref[k]:.2f}x" for k in ("collate ms", "full steps/s", "lora steps/s"))
        print(f"{name:<14} {r['parameters']:>9,} {r['collate ms']:>11.1f} {r['full steps/s']:>13.2f} "
              f"{r['lora steps/s']:>13.2f}  {ratios}")
        record("families", f"{name}: LoRA training", r["lora steps/s"], "steps/s")
        if name != "qwen2_5_omni":
            record("families", f"{name} / qwen2_5_omni: LoRA steps/s", r["lora steps/s"] / ref["lora steps/s"], "x")


if __name__ == "__main__":
    main()
