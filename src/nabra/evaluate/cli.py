"""`nabra evaluate` and `nabra report`: thin layers over :mod:`nabra.evaluate.runner` and
:mod:`nabra.evaluate.report`."""

from __future__ import annotations

import argparse
from pathlib import Path

from nabra.corpus.augment import CONDITION_HELP
from nabra.corpus.manifest import SPLITS, TASKS
from nabra.errors import NabraError
from nabra.text.arabic import SCHEMES

# Metrics the evaluate table shows per task (all of them are in metrics.json).
SHOWN = {"asr": ("wer", "cer", "wer_leaderboard", "cer_leaderboard"),
         "ssum": ("rouge1", "rouge2", "rougeL", "bertscore_f1"),
         "tsum": ("rouge1", "rouge2", "rougeL", "bertscore_f1"), "did": ("accuracy", "macro_f1", "unparsed_rate"),
         "ser": ("accuracy", "macro_f1", "unparsed_rate")}


def register(top_subparsers) -> None:
    """Add the top-level verbs ``evaluate`` and ``report``."""
    ev = top_subparsers.add_parser("evaluate", help="generate answers on a manifest split and score them",
                                   description="Writes predictions.jsonl and metrics.json.")
    ev.add_argument("model", type=Path, metavar="RUN_OR_CHECKPOINT",
                    help="a run folder, a thinker checkpoint folder or a PEFT adapter folder")
    ev.add_argument("--manifest", type=Path, required=True, help="the manifest holding the split to score")
    ev.add_argument("--split", default="test", choices=SPLITS, help="which split of the manifest (default test)")
    ev.add_argument("--tasks", help=f"comma-separated subset of {','.join(TASKS)} and the run's declared tasks "
                    "(default: the run's tasks)")
    ev.add_argument("--out", type=Path, help="output folder (default RUN/eval-SPLIT)")
    ev.add_argument("--batch-size", type=int, default=16, help="examples per generation batch (default 16)")
    ev.add_argument("--batch-tokens", type=int,
                    help="also at most this many tokens per generation batch (prompt with audio + answer budget, "
                         "padding included; default: the run's train.micro_batch_tokens)")
    ev.add_argument("--scheme", default="default", choices=SCHEMES,
                    help="normalization of the headline WER/CER and ROUGE (the leaderboard's is always added)")
    ev.add_argument("--max-new-tokens", type=int, help="cap on every answer (default: per task)")
    ev.add_argument("--keep-loops", action="store_true",
                    help="let an answer caught in a repetition loop run to its budget (default: it ends there)")
    ev.add_argument("--bertscore-model", help="local model folder: adds BERTScore F1 to summaries (needs bert-score)")
    ev.add_argument("--base", help="base model folder of an adapter (default: the one the run recorded)")
    ev.add_argument("--device", help="e.g. cuda, cpu (default: cuda when available)")
    ev.add_argument("--dtype", help="float32, bfloat16 or float16 (default: the run's)")
    ev.add_argument("--by", action="append", metavar="FIELD", default=None,
                    help="also break every task's metrics down by this manifest field (speaker, dialect, source, or "
                         "an extra field such as l1); repeatable")
    ev.add_argument("--condition", action="append", metavar="SPEC", default=None,
                    help=f"score under this listening condition (repeatable; the same seeded corruption for every run; "
                         f"clean writes to --out, each other condition to a folder under it): {CONDITION_HELP}")
    ev.add_argument("--quiet", action="store_true", help="no progress bar")
    ev.set_defaults(func=cmd_evaluate)

    rep = top_subparsers.add_parser("report", help="compare runs: tables, learning curves, confusion matrices")
    rep.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run folders")
    rep.add_argument("--out", type=Path, required=True, help="output folder (report.md, report.html, PNGs)")
    rep.set_defaults(func=cmd_report)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from nabra.evaluate.runner import evaluate

    if args.batch_size <= 0:
        raise NabraError(f"--batch-size must be positive, got {args.batch_size}")
    if args.batch_tokens is not None and args.batch_tokens <= 0:
        raise NabraError(f"--batch-tokens must be positive, got {args.batch_tokens}")
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    result = evaluate(args.model, args.manifest, split=args.split, tasks=tasks, out_dir=args.out,
                      batch_size=args.batch_size, scheme=args.scheme, base=args.base, device=args.device,
                      dtype=args.dtype, max_new_tokens=args.max_new_tokens,
                      bertscore_model=args.bertscore_model, stop_loops=not args.keep_loops, progress=not args.quiet,
                      batch_tokens=args.batch_tokens, by=args.by, conditions=args.condition)
    for one in result.get("conditions", {"": result}).values():
        print_table(one)
        print_by(one)
        out = Path(one["out_dir"])
        print(f"wrote {out / 'predictions.jsonl'} and {out / 'metrics.json'}")
    if len(result.get("conditions", {})) > 1:
        print_conditions(result["conditions"])
    return 0


def print_conditions(results: dict) -> None:
    """One row per condition, each task's headline metric (%), and its change from clean where clean was scored."""
    from rich.console import Console
    from rich.table import Table

    from nabra.evaluate.metrics import primary

    tasks = list(dict.fromkeys(t for r in results.values() for t in r["metrics"]))
    clean = results.get("clean")
    table = Table(title="by condition (%): each task's headline metric" + (", change from clean" if clean else ""))
    table.add_column("condition")
    for task in tasks:
        table.add_column(f"{task} {primary(task)[0]}", justify="right")
    for name, r in results.items():
        cells = []
        for task in tasks:
            key = primary(task)[0]
            v = r["metrics"].get(task, {}).get(key)
            c = clean["metrics"].get(task, {}).get(key) if clean and name != "clean" else None
            cells.append("-" if v is None else f"{100 * v:.1f}" + (f" ({100 * (v - c):+.1f})" if c is not None else ""))
        table.add_row(name, *cells)
    Console().print(table)


def print_by(result: dict) -> None:
    """The ``--by`` breakdowns: one table per field, a row per value, each task's headline metric (%)."""
    from rich.console import Console
    from rich.table import Table

    from nabra.evaluate.metrics import primary

    for name, groups in result.get("by", {}).items():
        tasks = list(dict.fromkeys(t for metrics in groups.values() for t in metrics))
        table = Table(title=f"{result['split']} metrics (%) by {name}")
        table.add_column(name)
        for task in tasks:
            table.add_column(f"{task} {primary(task)[0]}", justify="right")
        for value, metrics in groups.items():
            cells = []
            for task in tasks:
                m, key = metrics.get(task), primary(task)[0]
                cells.append("-" if not m or m.get(key) is None else f"{100 * m[key]:.1f} (n {m['n']:,})")
            table.add_row(value, *cells)
        Console().print(table)


def print_table(result: dict) -> None:
    """A compact table of the metrics: one row per task, values in %."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{result['split']} metrics (%), {result['scheme']} normalization")
    for col, justify in (("task", "left"), ("n", "right"), ("metrics", "left")):
        table.add_column(col, justify=justify)
    for task, m in result["metrics"].items():
        keys = SHOWN.get(task, SHOWN["did"])  # a declared task is a label task
        shown = "  ".join(f"{k} {100 * m[k]:.1f}" for k in keys if m.get(k) is not None)
        table.add_row(task, f"{m['n']:,}", shown)
    composite = result.get("composite")
    if composite is not None and composite == composite:  # not NaN
        table.add_row("composite", "", f"{100 * composite:.1f}")
    console = Console()
    console.print(table)
    for message in result.get("skipped", []):
        console.print(f"[yellow]{message}")


def cmd_report(args: argparse.Namespace) -> int:
    from nabra.evaluate.report import make_report

    page = make_report(args.runs, args.out)
    print(f"wrote {page}, {page.with_suffix('.md')} and the plots beside them")
    return 0
