"""``nabra serve --model M``: the analysis over HTTP, and a page for people.

- ``POST /v1/analyze`` (multipart: ``file`` = the audio, ``tasks`` = ``asr,ssum,did,ser``) -> the JSON
  of ``nabra analyze --json`` for that recording; ``GET /healthz``; ``GET /openapi.json`` and a
  local ``/docs`` page listing the operations; ``GET /`` a page to upload or record a clip and see
  the transcript, the summary and the label probabilities as bars. Nothing is fetched from a CDN.
- Loopback by default; an upload over ``max_upload_mb`` (default 50) or longer than
  ``max_seconds`` (default 600) is refused with 413; what is not audio, empty, or sent in the wrong
  field gets a 4xx with the reason, never a 500. Uploads go to private temporary files under names
  Nabra makes; a client's file name never reaches a path or a shell.
- One model instance, one worker thread: requests wait in a queue and are **micro-batched** —
  the worker takes what arrived within ``batch_window_ms`` (up to ``max_batch``) and analyzes it
  as one batch. The endpoints are asynchronous: a slow or vanished client holds no worker.
"""

from __future__ import annotations

import asyncio
import os
import queue
import tempfile
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, File, Form, HTTPException, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse

from nabra.errors import NabraError
from nabra.use.analyze import Analyzer, Recording, check_tasks, plan_windows
from nabra.use.page import DOCS_HTML, PAGE_HTML

CHUNK = 1 << 16


@dataclass
class Limits:
    max_upload_mb: float = 50.0
    """Largest upload accepted, in MB."""
    max_seconds: float = 600.0
    """Longest recording accepted, in seconds."""
    batch_window_ms: float = 20.0
    """How long the worker waits for more requests to batch with the first (0: one at a time)."""
    max_batch: int = 8
    """Most recordings analyzed in one batch."""
    max_queue: int = 256
    """Requests waiting beyond this get 503 (the server is saturated)."""


@dataclass
class _Job:
    recording: Recording
    tasks: tuple[str, ...]
    future: Future = field(default_factory=Future)


class Engine:
    """The model behind the server: a queue and one worker thread that micro-batches it."""

    def __init__(self, analyzer: Analyzer, limits: Limits):
        self.analyzer, self.limits = analyzer, limits
        self.jobs: queue.Queue[_Job | None] = queue.Queue(maxsize=limits.max_queue)
        self.batches: list[int] = []
        """Size of every batch run (for /healthz and the bench)."""
        self.worker = threading.Thread(target=self._work, name="nabra-serve-worker", daemon=True)
        self.worker.start()

    def submit(self, recording: Recording, tasks: tuple[str, ...]) -> Future:
        job = _Job(recording, tasks)
        self.jobs.put_nowait(job)  # queue.Full -> 503
        return job.future

    def close(self) -> None:
        self.jobs.put(None)
        self.worker.join(timeout=30)
        self.analyzer.close()

    def _work(self) -> None:
        while True:
            first = self.jobs.get()
            if first is None:
                return
            batch = [first]
            deadline = time.monotonic() + self.limits.batch_window_ms / 1000
            while len(batch) < self.limits.max_batch:
                left = deadline - time.monotonic()
                try:
                    job = self.jobs.get(timeout=left) if left > 0 else self.jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    self.jobs.put(None)
                    break
                batch.append(job)
            self._run(batch)

    def _run(self, batch: list[_Job]) -> None:
        self.batches.append(len(batch))
        by_tasks: dict[tuple[str, ...], list[_Job]] = {}
        for job in batch:  # one analysis per task set (most requests ask the same)
            by_tasks.setdefault(job.tasks, []).append(job)
        for tasks, jobs in by_tasks.items():
            try:
                results = self.analyzer.run([j.recording for j in jobs], tasks, batch_size=len(jobs))
            except Exception as e:  # noqa: BLE001 - the clients get the error, the worker lives on
                for j in jobs:
                    j.future.set_exception(e)
                continue
            for job, result in zip(jobs, results, strict=True):
                job.future.set_result(result)


def build_app(analyzer: Analyzer, limits: Limits | None = None):
    """The FastAPI application (with its engine at ``app.state.engine``)."""
    limits = limits or Limits()
    engine = Engine(analyzer, limits)
    app = FastAPI(title="Nabra", version="0.1", docs_url=None, redoc_url=None,
                  description="Arabic speech analysis: transcript, summary, dialect and emotion.")
    app.state.engine = engine
    app.router.on_shutdown.append(engine.close)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        return PAGE_HTML.replace("{{MAX_MB}}", f"{limits.max_upload_mb:g}").replace("{{MAX_S}}", f"{limits.max_seconds:g}")

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    async def docs() -> str:
        return DOCS_HTML

    @app.get("/healthz")
    async def healthz() -> dict:
        """Liveness, the model, the queue and the batches run so far."""
        return {"status": "ok", "model": analyzer.model_path, "queued": engine.jobs.qsize(),
                "batches": len(engine.batches), "requests": sum(engine.batches),
                "window_seconds": analyzer.window,
                "tasks": list(analyzer.tasks), "limits": vars(limits)}

    @app.post("/v1/analyze")
    async def analyze(file: Annotated[UploadFile, File(description="the audio (any format the loader reads)")],
                      tasks: Annotated[str, Form(description="comma-separated tasks (default: all the model's, "
                                                 "as /healthz lists them)")] = ""):
        """The answers for one recording: the JSON of ``nabra analyze --json``."""
        try:
            chosen = check_tasks([t.strip() for t in tasks.split(",") if t.strip()] or analyzer.tasks, analyzer.tasks)
        except NabraError as e:
            raise HTTPException(400, str(e)) from None
        path = await _receive(file, limits.max_upload_mb)
        try:
            recording = _recording(path, file.filename, limits.max_seconds, analyzer.window)
            try:
                future = engine.submit(recording, chosen)
            except queue.Full:
                raise HTTPException(503, "the server is saturated: retry later") from None
            try:
                result = await asyncio.wrap_future(future)
            except NabraError as e:
                raise HTTPException(422, str(e)) from None
        finally:
            path.unlink(missing_ok=True)
        if "error" in result:
            return JSONResponse(status_code=422, content={"detail": result["error"], "result": result})
        result["file"] = file.filename  # the client's name, as data only
        result.pop("where", None)
        return result

    return app


async def _receive(file, max_mb: float) -> Path:
    """The upload in a private temporary file (a name Nabra chose), or 413 past ``max_mb``."""
    limit = int(max_mb * 1_000_000)
    fd, name = tempfile.mkstemp(prefix="nabra-upload-", suffix=".audio")
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := await file.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise HTTPException(413, f"upload over the limit of {max_mb:g} MB")
                out.write(chunk)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    if size == 0:
        Path(name).unlink(missing_ok=True)
        raise HTTPException(400, "empty upload: the field 'file' holds no bytes")
    return Path(name)


def _recording(path: Path, filename: str | None, max_seconds: float, window: float) -> Recording:
    """The upload as a recording cut into windows (its header read once), or the 4xx why not."""
    skipped: list[str] = []
    planned = plan_windows([Recording(id=f"upload-{path.stem}", audio=str(path), where=filename or "upload")],
                           window, skipped)
    if not planned:
        reason = skipped[0].split(": ", 1)[-1] if skipped else "unreadable"
        if "no audio after" in reason:
            raise HTTPException(400, "the audio has no samples")
        raise HTTPException(415, f"not audio Nabra can read ({reason})")
    rec = planned[0]
    if rec.duration > max_seconds:
        raise HTTPException(413, f"audio of {rec.duration:.1f} s is over the limit of {max_seconds:g} s")
    return rec


def serve(model: str, *, host: str = "127.0.0.1", port: int = 8000, limits: Limits | None = None,
          language: str | None = None, device: str | None = None, log=print) -> None:
    """Load the model and serve it until interrupted."""
    import uvicorn

    if host not in ("127.0.0.1", "localhost", "::1"):
        log(f"warning: serving on {host}: reachable from other machines (there is no authentication)")
    app = build_app(Analyzer(model, language=language, device=device), limits)
    log(f"Nabra serving {model} on http://{host}:{port}/  (API: POST /v1/analyze, docs: /docs)")
    uvicorn.run(app, host=host, port=port, log_level="warning",
                limit_concurrency=(limits or Limits()).max_queue + 16)
