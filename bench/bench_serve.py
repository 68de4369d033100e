"""Serving speed: `/v1/analyze` on loopback with micro-batching vs one request at a time.

Starts the real server (`nabra serve`, in its own process) on the tiny thinker twice — with a batching window
(20 ms, up to 8 recordings a batch) and without (one at a time) — and sends the same requests from
8 concurrent clients. Prints requests/s and p50/p95 latency of each, the single-request latency (one
client, one request at a time), and the ratios against the targets: throughput with batching ≥ 2×
without, at 8 clients, with its p95 no more than 2× the single-request latency.

    python bench/bench_serve.py [--requests 96] [--clients 8] [--tasks asr,did]

With ``--vllm-export EXPORT`` (a merged or vllm-lora export; ``make check-vllm`` leaves some under
build/check-vllm/exports) it compares the two engines instead, with the same clients and clips: the
in-process engine serving the export's run, and ``--engine vllm`` serving the export (vLLM started from
``--vllm-python``) — requests/s and p50/p95 side by side.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf
from figures import record

from nabra.testing import tiny_manifest, tiny_model_dir
from nabra.use.serve import Limits


def start(model: Path, limits: Limits, port: int, extra: tuple[str, ...] = (), wait_s: float = 60):
    """``nabra serve`` in its own process (as a user runs it: the clients here do not share its GIL)."""
    proc = subprocess.Popen([sys.executable, "-m", "nabra", "serve", "--model", str(model), "--port", str(port),
                             "--batch-window-ms", str(limits.batch_window_ms), "--max-batch", str(limits.max_batch),
                             *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(int(wait_s / 0.05)):
        try:
            if httpx.get(url + "/healthz").status_code == 200:
                return url, proc
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the server did not start")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def send(url: str, clip: bytes, tasks: str) -> float:
    t0 = time.perf_counter()
    resp = httpx.post(url + "/v1/analyze", files={"file": ("c.wav", clip, "audio/wav")}, data={"tasks": tasks},
                      timeout=300)
    resp.raise_for_status()
    return time.perf_counter() - t0


def measure(url: str, clips: list[bytes], n: int, clients: int, tasks: str) -> dict:
    for c in clips[:2]:  # warm up
        send(url, c, tasks)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        lat = list(pool.map(lambda i: send(url, clips[i % len(clips)], tasks), range(n)))
    wall = time.perf_counter() - t0
    lat.sort()
    return {"rps": n / wall, "p50": statistics.median(lat), "p95": lat[int(0.95 * (len(lat) - 1))]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=96)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--tasks", default="asr,did")
    p.add_argument("--window-ms", type=float, default=20.0, help="the batching window of the batched server")
    p.add_argument("--vllm-export", type=Path, help="compare the nabra and vllm engines on this export")
    p.add_argument("--vllm-python", default=".venv-vllm/bin/python")
    args = p.parse_args()
    if args.vllm_export:
        return engines(args)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = tiny_model_dir(tmp / "tiny", tiny_manifest(tmp / "corpus", 8))
        rng = np.random.default_rng(0)
        clips = []
        for i in range(8):
            path = tmp / f"c{i}.wav"
            sf.write(path, (0.1 * rng.standard_normal(int(16000 * (1 + 0.25 * i)))).astype(np.float32), 16000)
            clips.append(path.read_bytes())
        rows = {}
        batched = f"batched ({args.window_ms:g} ms, <= 8)"
        for name, limits in ((batched, Limits(batch_window_ms=args.window_ms, max_batch=8)),
                             ("one at a time", Limits(batch_window_ms=0, max_batch=1))):
            url, proc = start(model, limits, free_port())
            try:
                if name == "one at a time":
                    single = statistics.median(send(url, clips[i % 8], args.tasks) for i in range(12))
                rows[name] = measure(url, clips, args.requests, args.clients, args.tasks)
                health = httpx.get(url + "/healthz").json()
                rows[name]["batch"] = health["requests"] / max(1, health["batches"])
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    print(f"{'mode':24s} {'req/s':>8s} {'p50 ms':>8s} {'p95 ms':>8s} {'batch':>6s}   ({args.clients} clients, "
          f"{args.requests} requests, tasks {args.tasks}, tiny thinker, CPU)")
    for name, r in rows.items():
        print(f"{name:24s} {r['rps']:8.1f} {1000 * r['p50']:8.0f} {1000 * r['p95']:8.0f} {r['batch']:6.1f}")
    print(f"single request, one client: {1000 * single:.0f} ms")
    b, o = rows[batched], rows["one at a time"]
    ratio, tail = b["rps"] / o["rps"], b["p95"] / single
    print(f"throughput batched / one at a time: {ratio:.2f}x (target >= 2x: {'met' if ratio >= 2 else 'NOT met'})")
    print(f"p95 batched / single request: {tail:.2f}x (target <= 2x: {'met' if tail <= 2 else 'NOT met'})")
    record("serve", f"/v1/analyze, {args.clients} clients, batched", b["rps"], "req/s")
    record("serve", "throughput batched / one at a time", ratio, "x", at_least=2)
    record("serve", "p95 batched / single request", tail, "x", at_most=2)


def engines(args) -> None:
    """The in-process engine on the export's run vs the vLLM engine on the export: same clients, same clips."""
    import json

    run = json.loads((args.vllm_export / "nabra_export.json").read_text())["run"]
    rng = np.random.default_rng(0)
    clips = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(8):
            path = Path(tmp) / f"c{i}.wav"
            sf.write(path, (0.1 * rng.standard_normal(int(16000 * (1 + 0.25 * i)))).astype(np.float32), 16000)
            clips.append(path.read_bytes())
    limits = Limits(batch_window_ms=args.window_ms, max_batch=8)
    python = str(Path(args.vllm_python).absolute())
    rows = {}
    for name, model, extra, wait in (("nabra (in-process)", Path(run), (), 120),
                                     ("vllm", args.vllm_export, ("--engine", "vllm", "--vllm-python", python), 900)):
        url, proc = start(model, limits, free_port(), extra, wait)
        try:
            single = statistics.median(send(url, clips[i % 8], args.tasks) for i in range(6))
            rows[name] = {**measure(url, clips, args.requests, args.clients, args.tasks), "single": single}
        finally:
            proc.terminate()
            proc.wait(timeout=90)
    print(f"{'engine':20s} {'req/s':>8s} {'p50 ms':>8s} {'p95 ms':>8s} {'single ms':>10s}   ({args.clients} clients, "
          f"{args.requests} requests, tasks {args.tasks}, {args.vllm_export.name}, CPU)")
    for name, r in rows.items():
        print(f"{name:20s} {r['rps']:8.2f} {1000 * r['p50']:8.0f} {1000 * r['p95']:8.0f} {1000 * r['single']:10.0f}")
    for name, r in rows.items():
        record("serve", f"/v1/analyze, {args.clients} clients, engine {name}", r["rps"], "req/s")


if __name__ == "__main__":
    main()
