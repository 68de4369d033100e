"""Every bench in one run (what `make bench` runs): one table of figures with their targets.

Each bench runs in its own process, at sizes that fit the whole run in about 10 minutes on 2 cores
(``--full``: the benches' own defaults, the sizes their docstrings quote), and hands its figures
over through :mod:`figures`. Writes ``bench/results.json`` and ``bench/results.md`` — the machine
(cores, CPU model, memory, GPU if any), the library versions, and per figure its value, target and
met / not met. A bench that fails is a row saying so (the others still run) and makes the exit
status 1. GPU benches skip with one line where CUDA is absent.

    python bench/run_all.py [--only collate,eval] [--full] [--out bench]
    python bench/run_all.py --only peer_swift --out bench/peers    # what `make bench-peers` runs
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from figures import ENV, verdict

HERE = Path(__file__).resolve().parent
BENCHES: dict[str, list[str]] = {  # name -> quick arguments (--full: none, the bench's defaults)
    "schedule": ["--sizes", "10000", "1000000", "--batches", "200"],
    "collate": ["--repeats", "5", "--seconds", "2-8"],
    "train": ["--steps", "30", "--warmup", "10"],
    "eval": ["--clips", "32", "--repeats", "1"],
    "families": ["--repeats", "3"],
    "serve": ["--requests", "48"],
    "data": ["--lines", "200000", "--synth", "40"],
    "import": ["--rows", "50000", "--mgb2", "20000", "--ssum", "4"],
    "setup": ["--utterances", "200000"],
    "loader": ["--clips", "32"],
    "batching": ["--steps", "100", "--train-steps", "3", "--train-utterances", "120"],
    "gpu": [],
}
PEERS: dict[str, list[str]] = {"peer_swift": ["--peer-python", ".venv-peers/bin/python"]}
"""Run only when named in --only (they need the peer virtualenv `make bench-peers` builds)."""
STUDIES = {"tpc_blend": "a study on the demo's runs (python bench/bench_tpc_blend.py --demo demo), not a speed figure"}
LIBRARIES = ("torch", "transformers", "peft", "accelerate", "numpy", "soundfile", "soxr", "jiwer", "rouge-score",
             "scikit-learn", "fastapi")


def machine() -> dict:
    info = {"cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}
    try:
        cpu = Path("/proc/cpuinfo").read_text()
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in cpu.splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        info["cpu"] = platform.processor() or "unknown"
    try:
        kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
        info["memory_gib"] = round(kb / 2**20, 1)
    except (OSError, StopIteration):
        pass
    try:
        import torch

        info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        info["gpu"] = None
    return info


def versions() -> dict:
    out = {}
    for name in ("nabra", *LIBRARIES):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    try:
        out["nabra_commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True,
                                             text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        out["nabra_commit"] = None
    return out


def run_bench(name: str, args: list[str], timeout: float) -> dict:
    """One bench in its own process, its output shown as it comes; its figures, seconds and status."""
    print(f"\n== bench_{name}.py {' '.join(args)}", flush=True)
    with tempfile.NamedTemporaryFile("r", suffix=".jsonl", delete=False) as f:
        figures_path = f.name
    env = {**os.environ, ENV: figures_path, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE),
                                                                                        os.environ.get("PYTHONPATH")]))}
    t = time.perf_counter()
    try:
        rc = subprocess.run([sys.executable, str(HERE / f"bench_{name}.py"), *args], env=env, timeout=timeout).returncode
        status = "ok" if rc == 0 else f"failed (exit {rc})"
    except subprocess.TimeoutExpired:
        status = f"failed (over {timeout:.0f} s)"
    seconds = time.perf_counter() - t
    lines = Path(figures_path).read_text(encoding="utf-8").splitlines()
    os.unlink(figures_path)
    return {"bench": name, "args": args, "status": status, "seconds": round(seconds, 1),
            "figures": [json.loads(line) for line in lines if line.strip()]}


def markdown(result: dict) -> str:
    m, v = result["machine"], result["versions"]
    lines = [f"Machine: {m['cores']} cores, {m['cpu']}, {m.get('memory_gib', '?')} GiB"
             + (f", GPU {m['gpu']}" if m.get("gpu") else ", no GPU") + f"; Python {m['python']}",
             "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val),
             f"Run: `{result['command']}`, {result['seconds'] / 60:.1f} min in all", "",
             "| bench | figure | value | target | verdict |", "|---|---|---:|---|---|"]
    for b in result["benches"]:
        if not b["figures"]:
            lines.append(f"| {b['bench']} | — | — | — | {b['status'] if b['status'] != 'ok' else 'skipped (see its output)'} |")
        for fig in b["figures"]:
            note = f" ({fig['note']})" if fig.get("note") else ""
            status = verdict(fig["met"]) if b["status"] == "ok" else b["status"]
            lines.append(f"| {b['bench']} | {fig['name']}{note} | {_fmt(fig['value'])} {fig['unit']} | "
                         f"{fig['target'] or '—'} | {status} |")
    for name, why in result["not_run"].items():
        lines.append(f"| {name} | — | — | — | not run: {why} |")
    return "\n".join(lines) + "\n"


def figures_page(sources: list[tuple[str, Path]], extra: list[tuple[str, Path]] = ()) -> str:
    """The docs site's *Latest figures* page (Markdown), generated from the committed results: per source
    (a ``results.json`` that ``run_all.py`` wrote) the machine, versions and command, then each bench's
    figures with target and verdict; ``extra`` pages (Markdown tables other scripts wrote) follow as they
    are. A source not on disk is a line saying how to make it."""
    lines = ["# Latest figures", "",
             "Generated at build time from the committed results files (never edited by hand); how each is "
             "measured and how to read it: [Benchmarks](../benchmarks.md).", ""]
    for title, path in sources:
        lines += [f"## {title}", ""]
        if not path.is_file():
            lines += [f"`{path.name}` is not there yet: run the command that writes it.", ""]
            continue
        result = json.loads(path.read_text(encoding="utf-8"))
        m, v = result["machine"], result["versions"]
        figures = [f for b in result["benches"] for f in b["figures"]]
        met = sum(f["met"] is True for f in figures)
        targets = sum(f["met"] is not None for f in figures)
        lines += [f"`{result['command']}` — {result['seconds'] / 60:.1f} min in all; {len(figures)} figures, "
                  f"{met} of {targets} targets met.", "",
                  f"- **Machine**: {m['cores']} cores, {m['cpu']}, {m.get('memory_gib', '?')} GiB memory, "
                  + (f"GPU {m['gpu']}" if m.get("gpu") else "no GPU") + f"; Python {m['python']}",
                  "- **Versions**: " + ", ".join(f"{k} {val}" for k, val in v.items() if val), ""]
        for b in result["benches"]:
            lines += [f"### `{b['bench']}`", "", f"`bench_{b['bench']}.py {' '.join(b['args'])}` — {b['status']}, "
                      f"{b['seconds']:.0f} s", ""]
            if not b["figures"]:
                lines += ["No figures (skipped: see its output; the GPU bench skips without CUDA).", ""]
                continue
            lines += ["| figure | value | target | verdict |", "|---|---:|---|---|"]
            for fig in b["figures"]:
                note = f" ({fig['note']})" if fig.get("note") else ""
                status = verdict(fig["met"]) if b["status"] == "ok" else b["status"]
                lines.append(f"| {fig['name']}{note} | {_fmt(fig['value'])} {fig['unit']} | {fig['target'] or '—'} "
                             f"| {status} |".replace("\n", " "))
            lines.append("")
        for name, why in result.get("not_run", {}).items():
            lines += [f"- `{name}`: not run — {why}"]
        lines.append("")
    for title, path in extra:
        lines += [f"## {title}", "", path.read_text(encoding="utf-8") if path.is_file() else
                  f"`{path.name}` is not there yet: run the command that writes it.", ""]
    return "\n".join(lines)


def _fmt(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", help="comma-separated bench names (default: all)")
    p.add_argument("--full", action="store_true", help="the benches' own default sizes (longer)")
    p.add_argument("--out", type=Path, default=HERE, help="folder of results.json and results.md (default bench/)")
    p.add_argument("--timeout", type=float, default=600, help="seconds one bench may take (default 600)")
    args = p.parse_args(argv)
    chosen = [n.strip() for n in args.only.split(",")] if args.only else list(BENCHES)
    known = {**BENCHES, **PEERS}
    unknown = [n for n in chosen if n not in known]
    if unknown:
        p.error(f"unknown bench(es) {', '.join(unknown)}; benches are {', '.join(known)}")
    t = time.perf_counter()
    benches = [run_bench(n, PEERS.get(n, []) if args.full else known[n], args.timeout) for n in chosen]
    result = {"command": " ".join(["python bench/run_all.py", *(argv if argv is not None else sys.argv[1:])]),
              "machine": machine(), "versions": versions(), "seconds": round(time.perf_counter() - t, 1),
              "benches": benches, "not_run": STUDIES if not args.only else {}}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    table = markdown(result)
    (args.out / "results.md").write_text(table, encoding="utf-8")
    print("\n" + table + f"\nwrote {args.out / 'results.json'} and {args.out / 'results.md'}")
    return 1 if any(b["status"] != "ok" for b in benches) else 0


if __name__ == "__main__":
    sys.exit(main())
