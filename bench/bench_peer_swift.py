"""Nabra against ms-swift on the same tiny Qwen2.5-Omni release checkpoint and the same data.

`make bench-peers` builds the peer virtualenv (bench/peers/setup.sh: torch 2.13.0, then ms-swift
4.6.0 from the registry; Nabra's .venv untouched) and runs this script, which

1. synthesizes a small Arabic corpus (eSpeak NG), builds the tiny thinker and writes it as a full
   release checkpoint (talker, token2wav and ``spk_dict.pt`` too: ms-swift loads the release), with
   the real 300-s ``preprocessor_config.json``; exports the training split's asr/did/ser examples
   with ``nabra data export swift`` (the rows ms-swift trains on);
2. the data pipeline, from rows on disk to model inputs, batches of 16, one process, no workers:
   ms-swift's Qwen2.5-Omni template encoding (librosa audio loading, the stock processor's
   features) + its data collator, vs Nabra's audio store + collator — examples/s;
3. the training step as whole processes: ``swift sft`` (LoRA r 16 / alpha 32 on all linear layers
   of the LM, batch 16, lr 1e-4, the same max steps) vs ``nabra train`` (LoRA r 16 / alpha 32 on the
   LM's projections, batch 16, the same steps) — steps/s counted alike: every step, the first one
   (set-up in it) included, as ms-swift's ``train_steps_per_second`` counts (Nabra's from its per-step
   times; its figure without the first step is printed beside), ``--runs`` runs of each and their
   spread; and wall time. On CPU this is the peer at its best: ms-swift 4.6's ``--packing`` and
   ``--padding_free`` refuse to run without flash-attention (no CPU build); the packed comparison is
   a GPU row.

4. what each computes during training, on the same dev examples at the same (last) step, in
   separate runs (an evaluation inside a timed run would count in ms-swift's steps/s): ms-swift's
   generation metrics (``--predict_with_generate``: ROUGE-1/L and BLEU-4 on jieba tokens, every task
   pooled) vs Nabra's dev evaluation (WER/CER, looped answers, accuracy, macro-F1, unparsed, per task).

    python bench/bench_peer_swift.py [--peer-python .venv-peers/bin/python] [--utterances 40] [--steps 8]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_loader import rate  # run from the repository root: bench/ is on the path
from figures import record

HERE = Path(__file__).resolve().parent
SHIM = HERE / "peers" / "shim"
TASKS = ("asr", "did", "ser")


def prepare(out: Path, utterances: int) -> dict:
    """The corpus, the release checkpoint and the exported rows (built once into ``out``)."""
    from nabra.corpus.importers import SkipReport
    from nabra.corpus.importers.swift import export
    from nabra.corpus.synth import SynthConfig, synthesize
    from nabra.testing import tiny_model_dir, write_release_checkpoint

    manifest = out / "corpus" / "manifest.jsonl"
    if not manifest.is_file():
        synthesize(manifest.parent, SynthConfig(utterances=utterances, seed=0, workers=2, long_fraction=0.0),
                   progress=False)
    release = out / "release"
    if not (release / "spk_dict.pt").is_file():
        write_release_checkpoint(tiny_model_dir(out / "thinker", manifest), release)
    rows = out / "rows.jsonl"
    written = export(manifest, rows, SkipReport(), tasks=TASKS, split="train")
    dev = out / "dev-rows.jsonl"
    n_dev = export(manifest, dev, SkipReport(), tasks=TASKS, split="dev")
    return {"manifest": manifest, "release": release, "rows": rows, "n_rows": written, "dev": dev, "n_dev": n_dev}


def nabra_pipeline(manifest: Path, release: Path, batch: int, repeats: int) -> dict:
    """Nabra's side of part 2: decode (one thread, no cache), features and collation per batch."""
    from nabra.corpus.manifest import read_manifest, resolve_audio
    from nabra.model import load
    from nabra.model.collate import Collator
    from nabra.model.loader import AudioStore
    from nabra.tasks import iter_examples

    bundle = load(release)
    collator = Collator(bundle.tokenizer, bundle.feature_extractor)
    utts = [resolve_audio(u, manifest.parent) for u in read_manifest(manifest)]
    examples = list(iter_examples(utts, tasks=TASKS, split="train"))
    per_s = rate(collator, examples, batch, workers=1, repeats=repeats)
    store = AudioStore(0, 1)
    longest = max(examples, key=lambda ex: ex.duration or 0.0)
    frames = int(collator(store.samples([longest]))["input_features"].shape[-1])
    store.close()
    return {"examples_per_s": per_s, "ms_per_batch": 1000 * batch / per_s, "frames": frames, "rows": len(examples)}


def peer_env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "USE_HF": "1", "PYTHONPATH": str(SHIM), "OMP_NUM_THREADS": "2"}


def swift_pipeline(python: str, release: Path, rows: Path, batch: int, repeats: int) -> dict:
    out = subprocess.run([python, str(HERE / "peers" / "swift_side.py"), "pipeline", "--model", str(release),
                          "--rows", str(rows), "--batch", str(batch), "--repeats", str(repeats)],
                         capture_output=True, text=True, env=peer_env(), timeout=1800)
    if out.returncode:
        raise SystemExit(f"ms-swift's pipeline failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


SWIFT_SPEED = re.compile(r"'train_steps_per_second': '([0-9.]+)'")


def swift_steps_per_second(log: str) -> float | None:
    """``train_steps_per_second`` of the summary line ms-swift's trainer prints at the end."""
    found = SWIFT_SPEED.findall(log)
    return float(found[-1]) if found else None


SWIFT_EVAL = re.compile(r"\{'eval_[^}]*\}")


def swift_eval_metrics(log: str) -> dict[str, float]:
    """The last ``{'eval_...': ...}`` line ms-swift's trainer prints, as numbers."""
    found = SWIFT_EVAL.findall(log)
    if not found:
        return {}
    pairs = re.findall(r"'eval_([^']+)': '([^']*)'", found[-1])
    return {k: float(v) for k, v in pairs if re.fullmatch(r"-?[0-9.]+(e-?[0-9]+)?", v)}


def swift_train(python: str, release: Path, rows: Path, steps: int, out: Path, dev: Path | None = None) -> dict:
    swift = str(Path(python).with_name("swift"))
    cmd = [swift, "sft", "--model", str(release), "--tuner_type", "lora", "--dataset", str(rows),
           "--max_steps", str(steps), "--per_device_train_batch_size", "16", "--gradient_accumulation_steps", "1",
           "--lora_rank", "16", "--lora_alpha", "32", "--target_modules", "all-linear", "--learning_rate", "1e-4",
           "--warmup_ratio", "0", "--check_model", "false", "--save_strategy", "no", "--report_to", "none",
           "--logging_steps", "1", "--output_dir", str(out), "--dataloader_num_workers", "0",
           "--torch_dtype", "float32", "--split_dataset_ratio", "0", "--use_hf", "true"]
    if dev is not None:
        cmd += ["--val_dataset", str(dev), "--eval_strategy", "steps", "--eval_steps", str(steps),
                "--predict_with_generate", "true", "--max_new_tokens", "16", "--per_device_eval_batch_size", "16"]
    t = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True, env=peer_env(), timeout=3600)
    wall = time.perf_counter() - t
    log = run.stdout + run.stderr
    name = "swift-sft-eval.log" if dev else "swift-sft.log"
    (out.parent / name).write_text(log)
    if run.returncode:
        raise SystemExit(f"swift sft failed (log: {out.parent / name}):\n{log[-3000:]}")
    return {"steps_per_s": swift_steps_per_second(log), "wall_s": wall, "eval": swift_eval_metrics(log)}


def nabra_train(manifest: Path, release: Path, steps: int, out: Path, evaluate: bool = False) -> dict:
    import yaml

    cfg = {"output_dir": str(out), "data": {"manifest": str(manifest), "tasks": list(TASKS), "load_workers": 1,
                                             "dev_per_task": 4},
           "model": {"path": str(release), "finetune": "lora", "lora": {"r": 16, "alpha": 32}},
           "schedule": {"name": "uniform"},
           "train": {"max_steps": steps, "batch_size": 16, "lr": 1e-4, "warmup_steps": 0, "save_every": 0,
                     "eval_every": steps if evaluate else 0, "seed": 0}}
    if evaluate:
        cfg["data"]["dev_per_task"] = 10_000  # every dev example, as ms-swift's val_dataset
    path = out.parent / f"nabra-peer{'-eval' if evaluate else ''}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    t = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "nabra", "train", str(path), "--quiet"], capture_output=True,
                         text=True, env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "2"}, timeout=3600)
    wall = time.perf_counter() - t
    if run.returncode:
        raise SystemExit(f"nabra train failed:\n{run.stderr[-3000:]}")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    per_step = [16 / r["examples_per_s"] for r in records if "loss" in r]
    evals = [r["metrics"] for r in records if r.get("event") == "dev_eval"]
    # Counted as ms-swift counts (its train_runtime covers every step, the first included).
    return {"steps_per_s": len(per_step) / sum(per_step), "steps_per_s_after_first": 1 / statistics.mean(per_step[1:] or per_step),
            "wall_s": wall, "eval": evals[-1] if evals else {}}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peer-python", default=".venv-peers/bin/python", help="the peer virtualenv's python")
    p.add_argument("--utterances", type=int, default=40, help="synthetic utterances (x3 tasks in the train split)")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--runs", type=int, default=3, help="training runs of each side (their spread is reported)")
    p.add_argument("--work", type=Path, help="keep the data and runs here (default: a temporary folder)")
    args = p.parse_args()
    if not Path(args.peer_python).is_file():
        print(f"bench_peer_swift: no peer virtualenv at {args.peer_python}: run `make bench-peers` "
              "(bash bench/peers/setup.sh .venv-peers builds it)")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        data = prepare(work, args.utterances)
        print(f"{data['n_rows']} rows ({', '.join(TASKS)}) of {data['manifest']}; release checkpoint {data['release']}")
        ours = nabra_pipeline(data["manifest"], data["release"], 16, args.repeats)
        theirs = swift_pipeline(args.peer_python, data["release"], data["rows"], 16, args.repeats)
        runs_ours = [nabra_train(data["manifest"], data["release"], args.steps, work / f"nabra-run-{k}")
                     for k in range(args.runs)]
        runs_theirs = [swift_train(args.peer_python, data["release"], data["rows"], args.steps, work / f"swift-run-{k}")
                       for k in range(args.runs)]
        m_ours = nabra_train(data["manifest"], data["release"], args.steps, work / "nabra-eval", evaluate=True)["eval"]
        m_theirs = swift_train(args.peer_python, data["release"], data["rows"], args.steps, work / "swift-eval",
                               dev=data["dev"])["eval"]
    peer = ", ".join(f"{k} {v}" for k, v in theirs.get("versions", {}).items())
    print(f"\npeer virtualenv: {peer}")
    print(f"{'':36} {'nabra':>10} {'ms-swift':>10} {'ratio':>7}")
    print(f"{'pipeline examples/s (batches of 16)':36} {ours['examples_per_s']:>10.1f} {theirs['examples_per_s']:>10.1f} "
          f"{ours['examples_per_s'] / theirs['examples_per_s']:>6.1f}x")
    print(f"{'pipeline ms per batch':36} {ours['ms_per_batch']:>10.0f} {theirs['ms_per_batch']:>10.0f}")
    print(f"{'feature frames per clip (batch max)':36} {ours['frames']:>10} {theirs['frames']:>10}")
    ours_s = [r["steps_per_s"] for r in runs_ours]
    theirs_s = [r["steps_per_s"] for r in runs_theirs]
    ratios = [a / b for a in ours_s for b in theirs_s]
    print(f"{f'training steps/s ({args.steps} LoRA steps, batch 16)':36} {min(ours_s):>5.2f}-{max(ours_s):<4.2f} "
          f"{min(theirs_s):>5.3f}-{max(theirs_s):<5.3f} {min(ratios):.1f}-{max(ratios):.1f}x")
    print(f"{'':36} (every step counted, the first included, on both sides; {args.runs} runs each; Nabra "
          f"without its first step: {min(r['steps_per_s_after_first'] for r in runs_ours):.2f}-"
          f"{max(r['steps_per_s_after_first'] for r in runs_ours):.2f})")
    print(f"{'whole process, wall s':36} {min(r['wall_s'] for r in runs_ours):>5.0f}-{max(r['wall_s'] for r in runs_ours):<4.0f} "
          f"{min(r['wall_s'] for r in runs_theirs):>5.0f}-{max(r['wall_s'] for r in runs_theirs):<5.0f}")
    print(f"\nwhat each reports on the same {data['n_dev']} dev examples at step {args.steps}:")
    print("  ms-swift (all tasks pooled): " + ", ".join(f"{k} {v:g}" for k, v in m_theirs.items()
                                                       if k.startswith(("rouge", "bleu"))))
    for task, m in m_ours.items():
        keys = ("wer", "cer", "looped") if task == "asr" else ("accuracy", "macro_f1", "unparsed_rate")
        print(f"  nabra {task} (n {m.get('n')}): " + ", ".join(f"{k} {m[k]:.3g}" for k in keys if k in m))
    record("peers", "pipeline: nabra", ours["examples_per_s"], "examples/s")
    record("peers", "pipeline: ms-swift", theirs["examples_per_s"], "examples/s", note=peer)
    record("peers", "pipeline: nabra / ms-swift", ours["examples_per_s"] / theirs["examples_per_s"], "x", at_least=1)
    alike = f"every step, first included; mean of {args.runs} runs (min-max {min(ratios):.2f}-{max(ratios):.2f})"
    record("peers", "training: nabra", statistics.mean(ours_s), "steps/s", note=alike)
    record("peers", "training: ms-swift", statistics.mean(theirs_s), "steps/s", note=f"{peer}; {alike}")
    record("peers", "training: nabra / ms-swift", statistics.mean(ours_s) / statistics.mean(theirs_s), "x", at_least=1,
           note=alike)
    return 0


if __name__ == "__main__":
    sys.exit(main())
