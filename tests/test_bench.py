"""The bench harness: figures in one shape, `bench/run_all.py`'s table, and the GPU bench's paths
without a GPU (its skip line, and its step and collation code run on the CPU at tiny sizes)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def run(*args, env=None, timeout=600):
    env = {**os.environ, **(env or {}), "PYTHONPATH": str(BENCH)}
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout)


def test_figures_carry_their_target_and_verdict(tmp_path, monkeypatch):
    sys.path.insert(0, str(BENCH))
    try:
        import figures
    finally:
        sys.path.remove(str(BENCH))
    out = tmp_path / "f.jsonl"
    monkeypatch.setenv(figures.ENV, str(out))
    assert figures.record("x", "fast", 3.0, "x", at_least=2) is True
    assert figures.record("x", "slow", 3.0, "ms", at_most=2) is False
    assert figures.record("x", "plain", 1.5, "steps/s") is None
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["name"], r["target"], r["met"]) for r in rows] == [("fast", ">= 2", True), ("slow", "<= 2", False),
                                                                   ("plain", None, None)]
    with pytest.raises(ValueError):
        figures.record("x", "both", 1.0, "x", at_least=1, at_most=2)


def test_run_all_tabulates_with_the_machine_and_says_a_failed_bench(tmp_path):
    r = run(BENCH / "run_all.py", "--only", "gpu", "--out", tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads((tmp_path / "results.json").read_text())
    assert result["machine"]["cores"] == os.cpu_count() and result["versions"]["torch"]
    assert [b["bench"] for b in result["benches"]] == ["gpu"] and result["benches"][0]["status"] == "ok"
    md = (tmp_path / "results.md").read_text()
    assert md.startswith("Machine: ") and "| bench | figure | value | target | verdict |" in md
    assert "| gpu | — | — | — | skipped (see its output) |" in md and "no CUDA device" in r.stdout
    r = run(BENCH / "run_all.py", "--only", "gpu", "--out", tmp_path, "--timeout", "0.01")
    assert r.returncode == 1 and "failed (over 0 s)" in (tmp_path / "results.md").read_text()
    assert "unknown bench(es) nope" in run(BENCH / "run_all.py", "--only", "nope").stderr


def test_the_docs_figures_page_is_generated_from_the_results(tmp_path):
    sys.path.insert(0, str(BENCH))
    try:
        import run_all
    finally:
        sys.path.remove(str(BENCH))
    result = {"command": "python bench/run_all.py --only x", "seconds": 90.0,
              "machine": {"cores": 2, "cpu": "AMD EPYC", "memory_gib": 23.5, "gpu": None, "python": "3.11.7"},
              "versions": {"nabra": "0.1.0", "torch": "2.13.0+cpu", "av": None},
              "benches": [{"bench": "x", "args": ["--n", "3"], "status": "ok", "seconds": 80.2, "figures": [
                  {"bench": "x", "name": "fast", "value": 12345.6, "unit": "lines/s", "target": ">= 20000", "met": False,
                   "note": "noisy day"},
                  {"bench": "x", "name": "ratio", "value": 1.234, "unit": "x", "target": None, "met": None, "note": ""}]},
                  {"bench": "gpu", "args": [], "status": "ok", "seconds": 1.0, "figures": []}],
              "not_run": {"study": "a study"}}
    (tmp_path / "results.json").write_text(json.dumps(result))
    (tmp_path / "extra.md").write_text("| kind | result |\n|---|---|\n| merged | matches |\n")
    page = run_all.figures_page([("mine", tmp_path / "results.json"), ("absent", tmp_path / "nope.json")],
                                [("vllm", tmp_path / "extra.md")])
    assert "`python bench/run_all.py --only x` — 1.5 min in all; 2 figures, 0 of 1 targets met." in page
    assert "2 cores, AMD EPYC, 23.5 GiB memory, no GPU; Python 3.11.7" in page and "av" not in page.split("Versions")[1].split("\n")[0]
    assert "| fast (noisy day) | 12,346 lines/s | >= 20000 | NOT met |" in page
    assert "| ratio | 1.23 x | — | no target |" in page
    assert "### `gpu`" in page and "No figures" in page and "`study`: not run — a study" in page
    assert "`nope.json` is not there yet" in page and "| merged | matches |" in page


def test_the_gpu_bench_skips_without_cuda_and_its_code_runs_on_the_cpu(tmp_path):
    r = run(BENCH / "bench_gpu.py", env={"CUDA_VISIBLE_DEVICES": ""})
    assert r.returncode == 0 and r.stdout.strip().splitlines()[-1].startswith("bench_gpu: no CUDA device")
    figures = tmp_path / "f.jsonl"
    r = run(BENCH / "bench_gpu.py", "--dry-run", env={"NABRA_BENCH_JSON": str(figures), "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    for setting in ("SDPA ", "SDPA + gradient checkpointing", "eager attention"):
        assert any(line.startswith(setting) and "tokens/s" in line for line in r.stdout.splitlines()), r.stdout
    names = [json.loads(line)["name"] for line in figures.read_text().splitlines()]
    assert "collation: processor (300-s padding) / nabra" in names and any("MFU" in n for n in names)


def test_the_peer_bench_reads_swifts_speed_and_says_how_to_build_its_venv(tmp_path):
    sys.path.insert(0, str(BENCH))
    try:
        import bench_peer_swift as peer
    finally:
        sys.path.remove(str(BENCH))
    # The summary line ms-swift 4.6's trainer prints (its own format, quoted from a run).
    log = ("Train: 100%|##########| 8/8 [00:29<00:00,  3.44s/it] {'train_runtime': '29.28', "
           "'train_samples_per_second': '4.371', 'train_steps_per_second': '0.273', 'train_loss': '6.202'}")
    assert peer.swift_steps_per_second(log) == 0.273 and peer.swift_steps_per_second("no summary") is None
    evaluation = ("{'eval_rouge-1': '4.628', 'eval_rouge-2': '0', 'eval_rouge-l': '4.628', 'eval_bleu-4': '0.8325', "
                  "'eval_runtime': '3.697', 'epoch': '1.333', 'global_step/max_steps': '8/8'}")
    assert peer.swift_eval_metrics("x " + evaluation) == {"rouge-1": 4.628, "rouge-2": 0.0, "rouge-l": 4.628,
                                                          "bleu-4": 0.8325, "runtime": 3.697}
    r = run(BENCH / "bench_peer_swift.py", "--peer-python", tmp_path / "none" / "python")
    assert r.returncode == 2 and "run `make bench-peers`" in r.stdout
