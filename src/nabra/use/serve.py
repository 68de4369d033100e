"""``nabra serve --model M``: the analysis over HTTP, and a page for people.

- ``POST /v1/analyze`` (multipart: ``file`` = the audio, ``tasks`` = ``asr,ssum,did,ser``) -> the JSON
  of ``nabra analyze --json`` for that recording; ``GET /healthz``; ``GET /openapi.json`` and a
  local ``/docs`` page listing the operations; ``GET /`` a page to upload or record a clip and see
  the transcript, the summary and the label probabilities as bars. Nothing is fetched from a CDN.
- Loopback by default, and safe on a desktop (:class:`Guard`, in front of the app): a request whose
  ``Host`` is a name other than ``localhost`` or an ``--allowed-host`` is refused (DNS rebinding), and
  one whose ``Origin`` is another site's (a page the user visits posting a form to the server) unless
  ``--allow-origin`` names it. The body is capped as it arrives: a ``Content-Length`` over the limit is
  refused before a byte is read, a body that grows past it is cut off there (413), one that stalls for
  ``body_timeout_s`` gets 408; headers are capped at 16 KiB. An upload longer than ``max_seconds``
  (from its header, before decoding; the decoder itself refuses rates over 192 kHz and more than 8
  channels) or shorter than ``min_seconds`` is refused; what is not audio, empty, or sent in the wrong
  field gets a 4xx with the reason, never a 500, and no reply shows a server path. Uploads go to
  private temporary files under names Nabra makes; a client's file name never reaches a path or a shell.
- One model instance, one worker thread: requests wait in a queue and are **micro-batched** —
  the worker takes what arrived within ``batch_window_ms`` (up to ``max_batch``) and analyzes it
  as one batch. The endpoints are asynchronous: a slow or vanished client holds no worker.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import queue
import tempfile
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import FastAPI, File, Form, HTTPException, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse

from nabra.errors import NabraError
from nabra.use.analyze import Analyzer, Recording, check_tasks, plan_windows
from nabra.use.page import DOCS_HTML, PAGE_HTML

CHUNK = 1 << 16
MAX_HEADER_BYTES = 16 * 1024
"""The request headers, at most: h11 refuses a header block it has to wait for past this size, and the
guard refuses a larger one that arrived whole (431)."""
FORM_OVERHEAD = 64 * 1024
"""Bytes of a multipart body besides the file: boundaries, part headers, the ``tasks`` field."""
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class Limits:
    max_upload_mb: float = 50.0
    """Largest upload accepted, in MB."""
    max_seconds: float = 600.0
    """Longest recording accepted, in seconds."""
    min_seconds: float = 0.1
    """Shortest recording accepted, in seconds (as ``data validate``'s ``--min-duration``)."""
    body_timeout_s: float = 15.0
    """A request body that sends nothing for this long is answered 408 and its connection closed."""
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


class _Refused(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


class Guard:
    """ASGI middleware in front of the app: the ``Host`` and ``Origin`` checks of a local server (as
    Jupyter does for its own: IP literals, ``localhost`` and the names allowed; the page's own origin
    and the origins allowed), and the request body capped in bytes and in idle time as it arrives —
    before Starlette's multipart parser spools any of it to disk."""

    def __init__(self, app, *, max_body: int, body_timeout: float, allowed_hosts: Iterable[str] = (),
                 allowed_origins: Iterable[str] = ()):
        self.app, self.max_body, self.body_timeout = app, max_body, body_timeout
        self.hosts = {h.lower() for h in allowed_hosts}
        self.origins = {o.lower().rstrip("/") for o in allowed_origins}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            if sum(len(k) + len(v) + 4 for k, v in scope["headers"]) > MAX_HEADER_BYTES:
                raise _Refused(431, f"request headers over {MAX_HEADER_BYTES:,} bytes")
            self._check(headers)
        except _Refused as e:
            return await _reply(send, e.status, e.detail)
        refused: list[_Refused] = []
        state = {"received": 0, "done": False, "started": False}

        async def guarded_receive():
            if state["done"]:  # the body is in: later receives (a disconnect) wait as long as they like
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), timeout=self.body_timeout)
            except TimeoutError:
                refused.append(_Refused(408, f"the request body stalled for {self.body_timeout:g} s"))
                raise refused[-1] from None
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                state["done"] = not message.get("more_body", False)
                if state["received"] > self.max_body:
                    refused.append(_Refused(413, f"request body over the limit of {self.max_body:,} bytes"))
                    raise refused[-1]
            return message

        async def guarded_send(message):
            if refused:  # whatever the app answers to the exception it got, the client gets the refusal
                if message["type"] == "http.response.start" and not state["started"]:
                    state["started"] = True
                    await _reply(send, refused[0].status, refused[0].detail)
                return
            state["started"] = state["started"] or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except Exception:
            if not refused:
                raise
            if not state["started"]:
                await _reply(send, refused[0].status, refused[0].detail)

    def _check(self, headers: dict[str, str]) -> None:
        host = headers.get("host")
        if host is not None and not self._host_allowed(host):
            raise _Refused(400, "this server answers only to its own address (Host header not allowed; "
                                "serve with --allowed-host NAME to add one)")
        origin = headers.get("origin")
        if origin is not None and not self._origin_allowed(origin, host):
            raise _Refused(403, "cross-origin request refused (serve with --allow-origin ORIGIN to allow one)")
        length = headers.get("content-length")
        if length is not None:
            if not length.strip().isdigit():
                raise _Refused(400, "Content-Length is not a number")
            if int(length) > self.max_body:
                raise _Refused(413, f"request body of {int(length):,} bytes is over the limit of {self.max_body:,}")

    def _host_allowed(self, host: str) -> bool:
        name = host.lower()
        if name.startswith("["):
            name = name[1:name.find("]")] if "]" in name else name
        elif name.count(":") == 1:
            name = name.split(":")[0]
        if "*" in self.hosts or name in self.hosts or name == "localhost":
            return True
        try:
            ipaddress.ip_address(name)  # an IP literal cannot be a rebound name
            return True
        except ValueError:
            return False

    def _origin_allowed(self, origin: str, host: str | None) -> bool:
        origin = origin.lower().rstrip("/")
        if "*" in self.origins or origin in self.origins:
            return True
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and host is not None and parts.netloc == host.lower()


async def _reply(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def build_app(analyzer: Analyzer, limits: Limits | None = None, *, allowed_hosts: Iterable[str] = (),
              allowed_origins: Iterable[str] = ()):
    """The FastAPI application (with its engine at ``app.state.engine``) behind its :class:`Guard`."""
    limits = limits or Limits()
    engine = Engine(analyzer, limits)
    app = FastAPI(title="Nabra", version="0.1", docs_url=None, redoc_url=None,
                  description="Arabic speech analysis: transcript, summary, dialect and emotion.")
    app.state.engine = engine
    app.router.on_shutdown.append(engine.close)
    app.add_middleware(Guard, max_body=int(limits.max_upload_mb * 1_000_000) + FORM_OVERHEAD,
                       body_timeout=limits.body_timeout_s, allowed_hosts=allowed_hosts, allowed_origins=allowed_origins)

    @app.exception_handler(RequestValidationError)
    async def invalid(_, exc: RequestValidationError):  # FastAPI's own echoes the input: an internal object
        problems = [f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg', 'invalid')}"
                    for e in exc.errors()]
        return JSONResponse(status_code=422, content={"detail": "; ".join(problems) + " (send the audio as the "
                                                      "multipart field 'file')"})

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> str:
        return PAGE_HTML.replace("{{MAX_MB}}", f"{limits.max_upload_mb:g}").replace("{{MAX_S}}", f"{limits.max_seconds:g}")

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    async def docs() -> str:
        return DOCS_HTML

    @app.get("/healthz")
    async def healthz() -> dict:
        """Liveness, the model, the queue and the batches run so far."""
        return {"status": "ok", "model": Path(str(analyzer.model_path)).name, "queued": engine.jobs.qsize(),
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
            recording = _recording(path, file.filename, limits, analyzer.window)
            try:
                future = engine.submit(recording, chosen)
            except queue.Full:
                raise HTTPException(503, "the server is saturated: retry later") from None
            try:
                result = await asyncio.wrap_future(future)
            except NabraError as e:
                raise HTTPException(422, _public(str(e), path)) from None
        except HTTPException as e:
            e.detail = _public(str(e.detail), path)
            raise
        finally:
            path.unlink(missing_ok=True)
        if "error" in result:
            error = _public(str(result["error"]), path)
            return JSONResponse(status_code=422, content={"detail": error, "result": {"error": error}})
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


def _public(text: str, path: Path) -> str:
    """A message for the client: the upload's temporary path (and the temporary folder) never shown."""
    return text.replace(str(path), "the upload").replace(str(path.parent) + os.sep, "")


def _recording(path: Path, filename: str | None, limits: Limits, window: float) -> Recording:
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
    if rec.duration > limits.max_seconds:
        raise HTTPException(413, f"audio of {rec.duration:.1f} s is over the limit of {limits.max_seconds:g} s")
    if rec.duration < limits.min_seconds:
        raise HTTPException(400, f"audio of {rec.duration * 1000:.2f} ms is shorter than the minimum of "
                                 f"{limits.min_seconds:g} s")
    return rec


def serve(model: str, *, host: str = "127.0.0.1", port: int = 8000, limits: Limits | None = None,
          language: str | None = None, device: str | None = None, allowed_hosts: Iterable[str] = (),
          allowed_origins: Iterable[str] = (), engine: str = "nabra", vllm_url: str | None = None,
          vllm_python: str | None = None, log=print) -> None:
    """Load the model and serve it until interrupted. ``engine``: ``nabra`` (the model in this process)
    or ``vllm`` (``model`` a merged or vllm-lora export, answered by vLLM: at ``vllm_url``, or a server
    started from ``vllm_python``; :mod:`nabra.use.vllm_engine`) — the same API and page either way."""
    import uvicorn

    if host not in LOOPBACK:
        log(f"warning: serving on {host}: reachable from other machines (there is no authentication); "
            "requests by name need --allowed-host NAME")
    if engine == "vllm":
        from nabra.use.vllm_engine import VllmAnalyzer  # only this engine needs it (and its HTTP client)

        analyzer = VllmAnalyzer(model, url=vllm_url, python=vllm_python, language=language, log=log)
    elif engine == "nabra":
        analyzer = Analyzer(model, language=language, device=device)
    else:
        raise NabraError(f"--engine must be nabra or vllm, got {engine!r}")
    app = build_app(analyzer, limits, allowed_hosts=allowed_hosts, allowed_origins=allowed_origins)
    log(f"Nabra serving {model} on http://{host}:{port}/ with the {engine} engine (API: POST /v1/analyze, docs: /docs)")
    try:
        uvicorn.Server(server_config(app, host=host, port=port, limits=limits)).run()
    finally:
        analyzer.close()


def server_config(app, *, host: str = "127.0.0.1", port: int = 8000, limits: Limits | None = None):
    """uvicorn's settings for ``app``: h11 with the header cap, a bound on concurrent connections."""
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, log_level="warning", http="h11",
                          h11_max_incomplete_event_size=MAX_HEADER_BYTES,
                          limit_concurrency=(limits or Limits()).max_queue + 16)
