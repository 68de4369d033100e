"""`nabra demo`: the main job on the embedded default, end to end, on the CPU.

Synthesize the Arabic corpus (once), build the tiny thinker (once), train it once per schedule
(uniform, tpc, ads, tpc_ads) and seed with the same budget, evaluate every run on the test split
(unseen voices and sentences), evaluate the untrained model as the baseline, and write the
schedule-comparison report. Finished runs are reused when the demo is run again.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from rich.console import Console
from rich.table import Table

from nabra.config import dump_config, load_config
from nabra.corpus.synth import SynthConfig, synthesize
from nabra.corpus.validate import ValidationReport, validate_manifest
from nabra.evaluate.report import make_report
from nabra.evaluate.runner import evaluate
from nabra.model.tiny import init_tiny
from nabra.schedule import SCHEDULE_NAMES
from nabra.train import train

# Corpus size, training steps per run and seeds. Few news paragraphs and few of them over 30 s (long
# audio is most of a CPU step, and ADS, giving SSUM a fifth of every batch, draws them often); dialect
# words only (a tiny model from scratch needs a dense lexical cue). The default measured 27 min 52 s
# on 2 cores (budget 30), --quick 2 min 50 s (budget 5).
QUICK = {"utterances": 600, "steps": 150, "seeds": 1, "summary_fraction": 0.05, "long_fraction": 0.1,
         "dialect_density": 1.0}
FULL = {**QUICK, "utterances": 1000, "steps": 500, "seeds": 3}


def ensure_corpus(corpus_dir: Path, plan: dict, console: Console) -> Path:
    """The synthetic corpus at ``corpus_dir``, generated once and validated."""
    manifest = corpus_dir / "manifest.jsonl"
    if not manifest.exists():
        console.print(f"synthesizing {plan['utterances']} clips with eSpeak NG -> {corpus_dir}")
        synthesize(corpus_dir, SynthConfig(utterances=plan["utterances"], seed=0, summary_fraction=plan["summary_fraction"],
                                           long_fraction=plan["long_fraction"], dialect_density=plan["dialect_density"]))
    report = ValidationReport()
    problems = [p for p in validate_manifest(manifest, report=report) if not p.warning]
    if problems:
        raise RuntimeError(f"the synthetic corpus is invalid (a bug): {problems[0].format(manifest)}")
    return manifest


def run_config(out: Path, manifest: Path, schedule: str, seed: int, steps: int):
    return load_config("demo", [f"output_dir={out / 'runs' / f'{schedule}-seed{seed}'}", f"data.manifest={manifest}",
                                f"model.path={out / 'tiny'}", f"schedule.name={schedule}", f"train.seed={seed}",
                                f"train.max_steps={steps}", f"train.eval_every={max(50, steps // 4)}",
                                f"train.save_every={max(50, steps // 4)}"])


def train_all(out: Path, manifest: Path, steps: int, seeds: int, console: Console) -> list[Path]:
    runs = []
    for seed in range(seeds):
        for schedule in SCHEDULE_NAMES:
            cfg = run_config(out, manifest, schedule, seed, steps)
            run = Path(cfg.output_dir)
            if not (run / "final" / "nabra_run.json").is_file():
                console.rule(f"[bold]train {schedule} (seed {seed}, {steps} steps)")
                train(cfg, log=console.print)
            runs.append(run)
    return runs


def evaluate_all(runs: list[Path], manifest: Path, console: Console) -> None:
    for run in runs:
        if not (run / "eval-test" / "metrics.json").is_file():
            console.rule(f"[bold]evaluate {run.name} on the test split")
            evaluate(run, manifest, split="test", progress=True, log=console.print)


def untrained_baseline(out: Path, manifest: Path, console: Console) -> Path:
    """The untrained tiny model, evaluated the same way: the floor every schedule must beat."""
    tiny = out / "tiny"
    if not (tiny / "config.json").is_file():
        init_tiny(tiny, manifest)
    base = out / "runs" / "untrained"
    if not (base / "eval-test" / "metrics.json").is_file():
        console.rule("[bold]evaluate the untrained model (baseline)")
        base.mkdir(parents=True, exist_ok=True)
        cfg = load_config("demo", [f"data.manifest={manifest}", f"model.path={tiny}", "schedule.name=uniform"])
        text = dump_config(cfg).replace("name: uniform", "name: untrained", 1)
        (base / "config.yaml").write_text(text, encoding="utf-8")
        evaluate(tiny, manifest, split="test", out_dir=base / "eval-test", progress=True, log=console.print)
    return base


def headline(runs: list[Path], console: Console) -> None:
    """Mean over seeds of the main test metrics, one row per schedule."""
    rows: dict[str, list[dict]] = {}
    for run in runs:
        data = json.loads((run / "eval-test" / "metrics.json").read_text())
        name = run.name.split("-seed")[0]
        rows.setdefault(name, []).append(data)
    cols = [("WER", "asr", "wer"), ("CER", "asr", "cer"), ("SSUM R-L", "ssum", "rougeL"),
            ("TSUM R-L", "tsum", "rougeL"), ("DID F1", "did", "macro_f1"), ("SER F1", "ser", "macro_f1")]
    table = Table(title="test split (unseen voices and sentences), mean over seeds")
    table.add_column("schedule")
    for title, _, _ in cols:
        table.add_column(title, justify="right")
    table.add_column("composite", justify="right")
    for name, results in rows.items():
        cells = [_mean([r["metrics"].get(task, {}).get(key) for r in results]) for _, task, key in cols]
        table.add_row(name, *cells, _mean([r.get("composite") for r in results]))
    console.print(table)


def _mean(values) -> str:
    values = [v for v in values if isinstance(v, int | float) and not math.isnan(v)]
    return f"{sum(values) / len(values):.3f}" if values else "-"


def run_demo(out: Path, quick: bool = False, seeds: int | None = None, plan: dict | None = None) -> int:
    """The whole main job; returns the exit code. ``plan`` overrides the sizes (tests)."""
    console = Console()
    plan = {**(QUICK if quick else FULL), **(plan or {})}
    out = Path(out)
    seeds = seeds or plan["seeds"]
    console.rule("[bold]Nabra demo: synthetic Arabic corpus, tiny Qwen2.5-Omni thinker, four schedules")
    manifest = ensure_corpus(out / "corpus", plan, console)
    baseline = untrained_baseline(out, manifest, console)
    runs = train_all(out, manifest, plan["steps"], seeds, console)
    evaluate_all(runs, manifest, console)
    report = make_report([*runs, baseline], out / "report")
    console.rule("[bold]Result")
    headline([baseline, *runs], console)
    console.print(f"report: {report} (and report.md and the PNGs beside it)")
    return 0
