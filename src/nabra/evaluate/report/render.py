"""The report as a document: blocks (headings, paragraphs, tables, images) built once and rendered
twice, to Markdown and to a self-contained HTML page, so both say the same."""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path

from nabra.errors import NabraError
from nabra.evaluate.claims import check_claims
from nabra.evaluate.claims import run_tasks as report_tasks
from nabra.evaluate.report.differs import differs
from nabra.evaluate.report.plots import plot_confusions, plot_curves, plot_task_weights, plot_volatility
from nabra.evaluate.report.prose import ranked, summary
from nabra.evaluate.report.robustness import by_field_blocks, robustness_blocks
from nabra.evaluate.report.runs import (
    Run,
    by_schedule,
    label_tasks,
    pct,
    read_run,
    schedule_stats,
    stat_cell,
    table_rows,
)
from nabra.evaluate.stats import TIE
from nabra.files import write_text

# ============================================================================================
# the document
# ============================================================================================

def _tables(groups: dict[str, list[Run]]) -> list[tuple]:
    """The per-schedule and per-run final-metric tables (values in %)."""
    rows = [(t, k, name, up) for t, k, name, up in table_rows(groups)
            if any(r.value(t, k) is not None for runs in groups.values() for r in runs)]
    if not rows:
        return [("p", "No final metrics to tabulate.")]
    sched_rows, run_rows = [], []
    runs = [r for rs in groups.values() for r in rs]
    for task, key, name, higher in rows:
        # The pretrained base is scored on the tasks it was pre-trained on: its composite is not comparable.
        shown = {s: rs for s, rs in groups.items() if not (task == "composite" and s == "base")}
        stats = schedule_stats(shown, task, key)
        best = _best_key(stats, higher, lambda s: s.mean)
        sched_rows.append([task, name] + [_bold(stat_cell(stats.get(s)), s == best) for s in groups])
        values = [r.value(task, key) if r.schedule in shown else None for r in runs]
        best_i = _best_key({i: v for i, v in enumerate(values) if v is not None}, higher, lambda v: v)
        run_rows.append([task, name] + [_bold(pct(v) if v is not None else "–", i == best_i)
                                        for i, v in enumerate(values)])
    seeds = {s: len(rs) for s, rs in groups.items()}
    return [
        ("table", ["task", "metric"] + [f"{s} (n={seeds[s]})" for s in groups], sched_rows),
        ("p", "Values in %, mean ± sample standard deviation over the seeds given; best of each row in bold. "
              "WER/CER and the unparsed rate: lower is better."),
        ("h3", "Per run"),
        ("table", ["task", "metric"] + [f"{r.name} ({r.schedule}, seed {r.seed}"
                                        f"{', dev' if r.final_source == 'dev' else ''})" for r in runs], run_rows),
    ]


def _best_key(values: dict, higher: bool, get):
    """The key of the best value; ``None`` when fewer than two or when the best is tied."""
    ranked = sorted(values, key=lambda k: get(values[k]), reverse=higher)
    if len(ranked) < 2 or abs(get(values[ranked[0]]) - get(values[ranked[1]])) < TIE:
        return None
    return ranked[0]


def _bold(text: str, yes: bool) -> str:
    return f"**{text}**" if yes else text


def build_blocks(runs: list[Run], out: Path) -> list[tuple]:
    """Write the PNGs into ``out`` and return the document as blocks."""
    groups = by_schedule(runs)
    opening, _ = differs(groups)
    blocks: list[tuple] = [
        ("h1", "Nabra: schedule comparison"),
        ("p", f"{len(runs)} run(s): " + "; ".join(f"{s}: {', '.join(r.name for r in rs)}" for s, rs in groups.items())),
        *([("h2", "What the schedules change"), *opening] if opening else []),
        ("h2", "Summary"), ("ul", summary(groups)),
        ("h2", "The paper's claims on these runs"),
        ("p", "Each claim with its figures and a verdict: supported, not supported (the other way, beyond the "
              "seed spread), within seed spread, or not testable on these runs. Spread: the larger sample "
              "standard deviation over the seeds of the two sides compared."),
        ("ul", [c.sentence() for c in check_claims(ranked(groups))]),
        ("h2", "Final metrics"), *_tables(groups),
        *robustness_blocks(groups, out),
        *by_field_blocks(groups),
        ("h2", "Learning curves"),
    ]
    for task in report_tasks(groups):
        if plot_curves(groups, task, out / f"curves-{task}.png"):
            blocks.append(("img", f"curves-{task}.png", f"{task}: learning curves, seeds averaged (band: ± 1 std)"))
    if plot_volatility(groups, out / "grad-norm-volatility.png"):
        blocks += [("h2", "Gradient-norm volatility"),
                   ("img", "grad-norm-volatility.png", "Sliding-window variance of the gradient norm per schedule")]
    adaptive = plot_task_weights(groups, out / "task-weights.png")
    if adaptive:
        blocks += [("h2", "Task shares of the adaptive schedules"),
                   ("img", "task-weights.png", f"{', '.join(adaptive)}: share of each task in a batch at each dev "
                    "evaluation, seeds averaged (band: ± 1 std)")]
    confusion = [(t, plot_confusions(groups, t, out / f"confusion-{t}.png")) for t in label_tasks(groups)]
    if any(names for _, names in confusion):
        blocks.append(("h2", "Confusion matrices (best run of each schedule)"))
        blocks += [("img", f"confusion-{t}.png", f"{t}: {', '.join(names)}; colour = share of the reference row")
                   for t, names in confusion if names]
    notes = [n for r in runs for n in r.notes]
    if notes:
        blocks += [("h2", "Notes"), ("ul", notes)]
    return blocks


def render_markdown(blocks: list[tuple]) -> str:
    """The blocks as Markdown (images linked by file name)."""
    parts = []
    for kind, *rest in blocks:
        if kind in ("h1", "h2", "h3"):
            parts.append("#" * int(kind[1]) + " " + rest[0])
        elif kind == "p":
            parts.append(rest[0])
        elif kind == "ul":
            parts.append("\n".join(f"- {item}" for item in rest[0]))
        elif kind == "table":
            header, rows = rest
            lines = [header, ["---"] * len(header), *rows]
            parts.append("\n".join("| " + " | ".join(str(c).replace("|", "\\|") for c in line) + " |" for line in lines))
        elif kind == "img":
            parts.append(f"![{rest[1]}]({rest[0]})\n\n*{rest[1]}*")
    return "\n\n".join(parts) + "\n"


_CSS = ("body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:1em 0;font-size:14px}td,th{border:1px solid #ccc;padding:4px 8px;"
        "text-align:right}td:first-child,td:nth-child(2),th{text-align:left}th{background:#f3f3f3}"
        "img{max-width:100%}figure{margin:1em 0}figcaption{color:#555;font-size:13px}")


def _inline(text: str) -> str:
    """HTML of a text with Markdown's **bold**."""
    parts = html.escape(text).split("**")
    return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))


def render_html(blocks: list[tuple], folder: Path) -> str:
    """The blocks as one self-contained HTML page (PNG files from ``folder`` embedded as base64)."""
    body = []
    for kind, *rest in blocks:
        if kind in ("h1", "h2", "h3"):
            body.append(f"<{kind}>{_inline(rest[0])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{_inline(rest[0])}</p>")
        elif kind == "ul":
            body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in rest[0]) + "</ul>")
        elif kind == "table":
            header, rows = rest
            head = "".join(f"<th>{_inline(h)}</th>" for h in header)
            cells = "".join("<tr>" + "".join(f"<td>{_inline(str(c))}</td>" for c in row) + "</tr>" for row in rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>")
        elif kind == "img":
            data = base64.b64encode((folder / rest[0]).read_bytes()).decode("ascii")
            body.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(rest[1])}">'
                        f"<figcaption>{_inline(rest[1])}</figcaption></figure>")
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Nabra report</title>"
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def make_report(run_paths: list[str | os.PathLike], out: str | os.PathLike) -> Path:
    """Write ``report.md``, ``report.html`` and the PNGs into ``out``; returns ``out/report.html``."""
    if not run_paths:
        raise NabraError("no run folders given")
    runs = [read_run(p) for p in run_paths]
    names = [r.name for r in runs]
    for r in runs:
        if names.count(r.path.name) > 1:
            r.name = f"{r.path.parent.name}/{r.path.name}"
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    blocks = build_blocks(runs, out)
    write_text(out / "report.md", render_markdown(blocks))
    write_text(out / "report.html", render_html(blocks, out))
    return out / "report.html"

