"""vLLM as an engine: ``nabra serve --engine vllm`` and ``make check-vllm``.

vLLM pins its own torch and transformers, so it never runs in Nabra's process: :class:`VllmProcess` starts
its OpenAI server (``python -m vllm.entrypoints.openai.api_server``; the CPU build's ``vllm`` script does not
start) from its own virtualenv, on loopback, for an export Nabra wrote — a merged one (``--model EXPORT``)
or a ``vllm-lora`` one (its base, ``--enable-lora --lora-modules nabra=EXPORT``) — and :class:`VllmAnalyzer`
answers what :class:`~nabra.use.analyze.Analyzer` answers through it, with the same prompts:

- transcripts and summaries: ``/v1/chat/completions``, greedy, the audio as ``input_audio`` (WAV, base64),
  the answer budget ``nabra analyze`` gives (:func:`~nabra.evaluate.runner.answer_budget`);
- label probabilities: for each label, the conversation with the label as the assistant's answer
  (``continue_final_message``) and ``prompt_logprobs``: the log-probability of the answer's tokens (the label
  and ``<|im_end|>``), softmaxed over the label set — what Nabra's own scorer computes. vLLM's prefix cache
  keeps the audio's prompt between the labels.

Requests go out concurrently, so vLLM batches them itself (continuous batching).
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from nabra.corpus.audio import SAMPLE_RATE, load_audio
from nabra.corpus.manifest import Utterance
from nabra.errors import NabraError
from nabra.evaluate.runner import answer_budget
from nabra.files import read_json
from nabra.run.folder import EXPORTED_CONFIG, config_of
from nabra.tasks import prompt_example
from nabra.use.analyze import _classify, _header, analyze_tasks, check_tasks

SERVED_NAME = "nabra"
SHIM = Path(__file__).parent / "vllm_shim"
"""``sitecustomize.py`` for a vLLM virtualenv whose torchvision is a CUDA build that cannot load (the
CPU wheels on the registry): it declares the two operator schemas torchvision registers fake kernels for."""
WINDOW_SECONDS = 300.0
"""The audio one request carries at most: the Qwen-Omni feature extractor's window."""


def export_info(export: str | os.PathLike) -> dict:
    """``nabra_export.json`` of ``export``, with a clear error when it is not a servable export."""
    export = Path(export)
    marker = export / "nabra_export.json"
    if not marker.is_file():
        raise NabraError(f"{export}: not an export of Nabra's (no nabra_export.json): "
                         "write one with nabra export RUN --out DIR --merge (or --format vllm-lora)")
    info = read_json(marker)
    fmt = info.get("format") or ("merged" if info.get("dtype") else "peft")
    if fmt not in ("merged", "vllm-lora") or "release" not in info.get("layout", "") and fmt == "merged":
        raise NabraError(f"{export}: a {info.get('layout', fmt)} export, which vLLM does not serve: export the run with "
                         "--merge (the release layout) or --format vllm-lora")
    return {**info, "format": fmt}


def vllm_args(export: str | os.PathLike, *, port: int, dtype: str = "bfloat16", max_model_len: int | None = None) -> list[str]:
    """The server's arguments for ``export`` (after ``python -m vllm.entrypoints.openai.api_server``);
    ``max_model_len`` default: the model's own (its ``max_position_embeddings``)."""
    export = Path(export).resolve()
    info = export_info(export)
    common = ["--host", "127.0.0.1", "--port", str(port), "--dtype", dtype,
              *(["--max-model-len", str(max_model_len)] if max_model_len else [])]
    if info["format"] == "merged":
        return ["--model", str(export), "--served-model-name", SERVED_NAME, *common]
    base = export / "base" if (export / "base" / "config.json").is_file() else Path(info["base_model"])
    rank = int(read_json(export / "adapter_config.json").get("r", 8))
    return ["--model", str(base), "--served-model-name", "base", *common, "--enable-lora",
            "--lora-modules", f"{SERVED_NAME}={export}", "--max-lora-rank", str(max(8, rank))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def needs_shim(python: str) -> bool:
    """Whether ``python``'s torchvision fails to import (a CUDA build on a CPU machine)."""
    done = subprocess.run([python, "-c", "import torchvision"], capture_output=True, text=True)
    return done.returncode != 0 and "torchvision::nms" in done.stderr


class VllmProcess:
    """vLLM's OpenAI server for an export, in its own virtualenv (``python``), on 127.0.0.1; a context manager.
    Its log goes to ``log_path``; a server that dies or does not come up says so with the log's end."""

    def __init__(self, export: str | os.PathLike, *, python: str, port: int | None = None, dtype: str = "bfloat16",
                 max_model_len: int | None = None, log_path: str | os.PathLike | None = None, startup_s: float = 900):
        if not Path(python).is_file():
            raise NabraError(f"{python}: no such Python: build vLLM's virtualenv first (bash bench/vllm/setup.sh "
                             ".venv-vllm) or pass --vllm-python / --vllm-url")
        self.port = port or free_port()
        self.args = vllm_args(export, port=self.port, dtype=dtype, max_model_len=max_model_len)
        self.python, self.startup_s = python, startup_s
        self.log_path = Path(log_path) if log_path else Path(os.environ.get("TMPDIR", "/tmp")) / f"nabra-vllm-{self.port}.log"
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.startup_seconds: float | None = None

    def __enter__(self) -> VllmProcess:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1",
               "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2")}
        if needs_shim(self.python):
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SHIM), env.get("PYTHONPATH")]))
        t0 = time.perf_counter()
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen([self.python, "-m", "vllm.entrypoints.openai.api_server", *self.args],
                                         stdout=log, stderr=subprocess.STDOUT, env=env)
        while time.perf_counter() - t0 < self.startup_s:
            if self.proc.poll() is not None:
                raise NabraError(f"vLLM exited ({self.proc.returncode}) before serving: {self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=5) as r:
                    if r.status == 200:
                        self.startup_seconds = time.perf_counter() - t0
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(2)
        self.__exit__()
        raise NabraError(f"vLLM did not serve within {self.startup_s:.0f} s: {self.log_tail()}")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_tail(self, lines: int = 8) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return f"(no log at {self.log_path})"
        errors = [t for t in text if "Error" in t and "ulimit" not in t]
        return " | ".join((errors or text)[-lines:]) + f" (log: {self.log_path})"


class VllmClient:
    """The few calls of vLLM's OpenAI API Nabra makes (stdlib HTTP: nothing to install)."""

    def __init__(self, url: str, model: str = SERVED_NAME, timeout: float = 600):
        self.url, self.model, self.timeout = url.rstrip("/"), model, timeout

    def post(self, path: str, body: dict) -> dict:
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            detail = e.read()[:500].decode(errors="replace")
            raise NabraError(f"vLLM at {self.url} answered {e.code} to {path}: {detail}") from None
        except (urllib.error.URLError, OSError) as e:
            raise NabraError(f"vLLM at {self.url} cannot be reached: {getattr(e, 'reason', e)}") from None

    def chat(self, messages: list[dict], *, max_tokens: int, top_logprobs: int = 0, **extra) -> dict:
        body = {"model": self.model, "messages": messages, "temperature": 0, "max_tokens": max_tokens,
                "return_tokens_as_token_ids": True, **extra}
        if top_logprobs:
            body.update(logprobs=True, top_logprobs=top_logprobs)
        return self.post("/v1/chat/completions", body)

    def answer_logprob(self, messages: list[dict], answer: str, n_tokens: int) -> float:
        """log P(``answer``, its last ``n_tokens`` tokens | the conversation): the answer as the assistant's
        turn, scored as a prompt (``prompt_logprobs``), nothing generated that matters."""
        out = self.chat([*messages, {"role": "assistant", "content": answer}], max_tokens=1,
                        add_generation_prompt=False, continue_final_message=True, prompt_logprobs=0)
        rows = out.get("prompt_logprobs") or []
        picked = [row for row in rows[-n_tokens:] if row]
        if len(picked) != n_tokens:
            raise NabraError(f"vLLM gave {len(picked)} prompt log-probabilities for an answer of {n_tokens} tokens")
        # Each row maps token id -> {logprob, rank}; with prompt_logprobs=0 the prompt's own token is there,
        # and when it is not the top one the top one is too: the prompt's token is the one of rank > 1, or the only.
        total = 0.0
        for row in picked:
            entries = list(row.values())
            own = max(entries, key=lambda e: e.get("rank", 1)) if len(entries) > 1 else entries[0]
            total += own["logprob"]
        return total


def wav_base64(path: str, offset: float = 0.0, duration: float | None = None) -> str:
    """The span of ``path`` as 16-kHz 16-bit WAV, base64 (what ``input_audio`` takes)."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, load_audio(path, offset=offset, duration=duration), SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return base64.b64encode(buf.getvalue()).decode()


class VllmAnalyzer:
    """What :class:`~nabra.use.analyze.Analyzer` does, with vLLM answering: the same results, for ``serve``.
    ``export``: a merged or vllm-lora export of a run (its ``nabra_export.json`` names the run, whose
    config gives the tasks, labels and system prompt). ``url``: a vLLM already serving it; else one is
    started from ``python``."""

    def __init__(self, export: str | os.PathLike, *, url: str | None = None, python: str | None = None,
                 language: str | None = None, concurrency: int = 16, log=print):
        from transformers import AutoTokenizer

        self.export = Path(export)
        info = export_info(self.export)
        self.model_path = str(self.export)
        cfg = config_of(self.export) if (self.export / EXPORTED_CONFIG).is_file() else config_of(info["run"])
        self.system = info.get("system_prompt") or cfg.collate.system_prompt
        self.language = language or cfg.data.language or "ar"
        self.task_set = cfg.task_set()
        self.tasks = analyze_tasks(self.task_set)
        self.window = WINDOW_SECONDS
        tok_dir = self.export if (self.export / "tokenizer.json").is_file() else (
            self.export / "base" if (self.export / "base").is_dir() else Path(info["base_model"]))
        self.tokenizer = AutoTokenizer.from_pretrained(tok_dir, local_files_only=True)
        self.process = None
        if url is None:
            python = python or str(Path(".venv-vllm/bin/python").absolute())
            self.process = VllmProcess(self.export, python=python).__enter__()
            url = self.process.url
            log(f"vLLM serving {self.export} at {url} (started in {self.process.startup_seconds:.0f} s)")
        self.client = VllmClient(url)
        self.pool = ThreadPoolExecutor(concurrency)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        if self.process is not None:
            self.process.__exit__()

    def messages(self, utt: Utterance, task: str, audio_b64: str | None) -> list[dict]:
        ex = prompt_example(utt, task, language=self.language, task_set=self.task_set)
        if audio_b64 is None:
            user: str | list = ex.instruction
        else:
            user = [{"type": "input_audio", "input_audio": {"data": audio_b64, "format": "wav"}},
                    {"type": "text", "text": ex.instruction}]
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]

    def generate(self, utt: Utterance, task: str, audio_b64: str | None) -> str:
        ex = prompt_example(utt, task, language=self.language, task_set=self.task_set)
        out = self.client.chat(self.messages(utt, task, audio_b64), max_tokens=answer_budget(ex))
        return (out["choices"][0]["message"]["content"] or "").strip()

    def label_probabilities(self, utt: Utterance, task: str, audio_b64: str) -> dict[str, float]:
        names = self.task_set.labels(task).names
        messages = self.messages(utt, task, audio_b64)
        end = "<|im_end|>"
        scores = []
        for name in names:
            n = len(self.tokenizer(name + end, add_special_tokens=False)["input_ids"])
            scores.append(self.client.answer_logprob(messages, name + end, n))
        top = max(scores)
        exp = [math.exp(s - top) for s in scores]
        return {name: e / sum(exp) for name, e in zip(names, exp, strict=True)}

    def run(self, recordings, tasks=None, *, batch_size: int = 8, progress: bool = False) -> list[dict]:
        tasks = check_tasks(tasks or self.tasks, self.tasks)
        results = {rec.id: _header(rec, self.model_path, self.language, self.window) for rec in recordings}
        windows = [(rec, i, Utterance(f"{rec.id}@{i}", audio=rec.audio, offset=s, duration=e - s))
                   for rec in recordings for i, (s, e) in enumerate(rec.windows)]
        audio = list(self.pool.map(lambda w: wav_base64(w[2].audio, w[2].offset, w[2].duration), windows))
        jobs = {}
        if "asr" in tasks or "ssum" in tasks:
            jobs["asr"] = [self.pool.submit(self.generate, u, "asr", a) for (_, _, u), a in zip(windows, audio, strict=True)]
        if "ssum" in tasks:
            jobs["ssum"] = [self.pool.submit(self.generate, u, "ssum", a) if not rec.long else None
                            for (rec, _, u), a in zip(windows, audio, strict=True)]
        for task in self.task_set.label_tasks():
            if task in tasks:
                jobs[task] = [self.pool.submit(self.label_probabilities, u, task, a)
                              for (_, _, u), a in zip(windows, audio, strict=True)]
        if "asr" in jobs:
            for (rec, i, _), job in zip(windows, jobs["asr"], strict=True):
                asr = results[rec.id].setdefault("asr", {"text": "", "segments": []})
                start, end = rec.windows[i]
                asr["segments"].append({"start": round(start, 3), "end": round(end, 3), "text": job.result()})
            for r in results.values():
                r["asr"]["text"] = " ".join(s["text"] for s in r["asr"]["segments"] if s["text"])
        if "ssum" in jobs:
            for (rec, _, _), job in zip(windows, jobs["ssum"], strict=True):
                if job is not None:
                    results[rec.id]["ssum"] = {"text": job.result(), "source": "speech", "how": "speech (SSUM)"}
                elif "ssum" not in results[rec.id]:
                    text = results[rec.id]["asr"]["text"]
                    summary = self.generate(Utterance(rec.id, transcript=text), "tsum", None) if text else ""
                    results[rec.id]["ssum"] = {"text": summary, "source": "transcript",
                                               "how": "the joined transcript (TSUM): the recording is longer than "
                                                      f"the {self.window:.0f}-s window"}
        for task in self.task_set.label_tasks():
            if task in jobs:
                _classify(task, windows, [j.result() for j in jobs[task]], self.task_set.labels(task).names, results)
        if "asr" not in tasks:
            for r in results.values():
                r.pop("asr", None)
        return list(results.values())

