"""``nabra analyze AUDIO_OR_FOLDER... --model RUN``: answers on new, unlabelled recordings.

Per recording: the transcript (``asr``), a summary (``ssum``), the dialect (``did``) and the emotion
(``ser``) with a probability for every label of the run's label sets, the duration, the model and
the prompt language. A label's probability is that of its whole answer (every token of the label
and the end token, given the prompt), normalized over the label set — not the first token's logit.

A recording longer than the model's audio window (300 s for Qwen2.5-Omni) is cut into windows:
each is transcribed on its own and the transcripts are joined in order (their times are in the
JSON); its summary is that of the joined transcript with the text-summarization (TSUM) prompt, and
its label probabilities are the mean over its windows. The JSON says which path was taken.
"""

from __future__ import annotations

import copy
import errno
import json
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from nabra.corpus.audio import audio_info
from nabra.corpus.importers.common import AUDIO_SUFFIXES, audio_files
from nabra.corpus.manifest import ManifestLineError, Utterance, iter_lines, parse_line, resolve_audio
from nabra.errors import AudioError, NabraError
from nabra.evaluate.runner import generate_predictions, load_for_eval
from nabra.files import check_output_file
from nabra.model.collate import Collator, to_device
from nabra.model.families import family_of_model
from nabra.model.loader import AudioStore
from nabra.model.loss import AnswerLoss, thinker_of
from nabra.progress import progress_bar
from nabra.run.folder import RunFolder, config_of
from nabra.tasks import Example, prompt_example

MANIFEST_SUFFIXES = (".jsonl", ".jsonl.gz")


@dataclass
class Recording:
    """One input: a file, or a manifest line (a segment of a file, perhaps)."""

    id: str
    audio: str
    offset: float = 0.0
    duration: float | None = None
    where: str = ""
    """The path given, or ``MANIFEST:LINE``."""
    windows: list[tuple[float, float]] = field(default_factory=list)
    """``(start, end)`` in seconds of the file, one per window the recording is cut into."""

    @property
    def long(self) -> bool:
        return len(self.windows) > 1


# ============================================================================================
# inputs
# ============================================================================================

def collect(paths: list[str | os.PathLike], skipped: list[str]) -> list[Recording]:
    """The recordings named by ``paths``: audio files, folders (walked for audio files) and
    manifests (``.jsonl``: every line with audio, annotated or not). What cannot be used goes to
    ``skipped`` with the reason."""
    out: list[Recording] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            unreadable: list[tuple[str, str]] = []
            found = list(audio_files(path, unreadable))
            skipped += [f"{folder}: cannot list the folder ({reason})" for folder, reason in unreadable]
            if not found and not unreadable:
                skipped.append(f"{path}: no audio files ({', '.join(sorted(AUDIO_SUFFIXES))}) in the folder")
            out += [Recording(str(p), str(p), where=str(p)) for p in found]
        elif path.name.endswith(MANIFEST_SUFFIXES):
            out += _manifest(path, skipped)
        elif path.is_file():
            out.append(Recording(str(path), str(path), where=str(path)))
        else:
            skipped.append(f"{path}: {_why_not_there(path)}")
    seen: dict[str, int] = {}
    for rec in out:  # the same file named twice, or ids shared by two manifests: each answered apart
        n = seen[rec.id] = seen.get(rec.id, 0) + 1
        if n > 1:
            rec.id = f"{rec.id}#{n}"
    return out


def _why_not_there(path: Path) -> str:
    try:
        path.stat()
    except OSError as e:  # a loop of symbolic links, a folder without permission: not "not found"
        return "not found" if e.errno == errno.ENOENT else f"cannot read it ({e.strerror or e})"
    return "not a file or a folder"


def _manifest(path: Path, skipped: list[str]) -> list[Recording]:
    root = path.resolve().parent
    out = []
    for lineno, line in iter_lines(path):
        where = f"{path}:{lineno}"
        try:
            utt = parse_line(line)  # no annotation needed: these are to be analyzed
        except ManifestLineError as e:
            skipped.append(f"{where}: {e}")
            continue
        if utt.audio is None:
            skipped.append(f"{where}: no audio")
            continue
        utt = resolve_audio(utt, root)
        out.append(Recording(utt.id, utt.audio, utt.offset, utt.duration, where))
    return out


def check_results_file(out: str | os.PathLike, *, force: bool = False) -> Path:
    """``analyze --out``: a file to write (not a folder, in a writable folder); an existing file is
    replaced only when it holds an earlier analyze's results and ``force`` says so."""
    out = check_output_file(out, what="results file")
    if not out.is_file() or out.stat().st_size == 0:
        return out
    try:
        with open(out, encoding="utf-8") as f:
            first = json.loads(f.readline())
        earlier = isinstance(first, dict) and {"id", "model", "duration"} <= set(first)
    except (ValueError, UnicodeDecodeError):
        earlier = False
    if not earlier:
        raise NabraError(f"{out}: exists and does not hold analyze results: Nabra never replaces what it did not "
                         "write; choose another --out")
    if not force:
        raise NabraError(f"{out}: holds the results of an earlier analyze: pass --force to replace them")
    return out


def plan_windows(recordings: list[Recording], window: float, skipped: list[str]) -> list[Recording]:
    """Fill in durations (from the audio headers) and cut each recording into windows of at most
    ``window`` seconds; a recording whose audio cannot be read is skipped with the reason."""
    kept = []
    for rec in recordings:
        try:
            info = audio_info(rec.audio)
        except AudioError as e:
            skipped.append(f"{rec.where}: {e.reason}")
            continue
        if rec.duration is None:
            rec.duration = max(0.0, info.duration - rec.offset)
        if rec.duration <= 0:
            skipped.append(f"{rec.where}: no audio after offset {rec.offset} s")
            continue
        n = max(1, math.ceil(rec.duration / window - 1e-9))
        step = rec.duration / n  # equal windows: no stub of a few frames at the end
        rec.windows = [(rec.offset + i * step, rec.offset + (i + 1) * step) for i in range(n)]
        kept.append(rec)
    return kept


# ============================================================================================
# the analysis
# ============================================================================================

class Analyzer:
    """A loaded model ready to analyze recordings (what ``analyze`` and ``serve`` share). One
    thread at a time: the server runs every batch on its one worker."""

    def __init__(self, model_path: str | os.PathLike, *, language: str | None = None,
                 segment_seconds: float | None = None, device: str | None = None):
        self.model_path = str(model_path)
        run = RunFolder.find(model_path)
        cfg = config_of(model_path)  # a run's, an export's (the run's copy), else the defaults
        self.language = language or cfg.data.language or "ar"
        if self.language not in ("ar", "en"):
            raise NabraError(f"--language must be ar or en, got {self.language!r}")
        self.model, self.bundle = load_for_eval(model_path, device=device, run=run)
        collator = Collator.for_bundle(self.bundle, replace(cfg.collate, packing=False))  # padded rows: one per label
        self.window = min(segment_seconds or collator.window_seconds, collator.window_seconds)
        # A window's audio placeholders plus a prompt and a long answer must fit: the run's max_length
        # was sized for its training clips, not for a 300-s window.
        room = collator.audio_tokens(self.window) + 4096
        if collator.max_length is not None and collator.max_length < room:
            collator = Collator.for_bundle(self.bundle, replace(cfg.collate, max_length=room))
        self.collator = collator
        self.task_set = cfg.task_set()
        self.tasks = analyze_tasks(self.task_set)
        """What this model can be asked: asr, ssum and every label task of its run (declared ones too)."""
        # Every task of a run reads the same windows: each is decoded once per run (cleared after it).
        self.store = AudioStore(cfg.data.audio_cache_mb, cfg.data.load_workers)

    def close(self) -> None:
        self.store.close()

    def run(self, recordings: list[Recording], tasks=None, *, batch_size: int = 8,
            progress: bool = False) -> list[dict]:
        """One result per recording (``plan_windows`` done), in order; ``tasks`` default: all of :attr:`tasks`."""
        tasks = check_tasks(tasks or self.tasks, self.tasks)
        language, task_set = self.language, self.task_set
        model, bundle, collator, store = self.model, self.bundle, self.collator, self.store
        results = {rec.id: _header(rec, self.model_path, language, self.window) for rec in recordings}
        mark = len(collator.skipped)
        windows = [(rec, i, Utterance(f"{rec.id}@{i}", audio=rec.audio, offset=start, duration=end - start))
                   for rec in recordings for i, (start, end) in enumerate(rec.windows)]
        need_asr = "asr" in tasks or ("ssum" in tasks and any(rec.long for rec in recordings))
        if need_asr:
            _transcribe(model, bundle, collator, store, windows, results, language, batch_size, progress)
        if "ssum" in tasks:
            _summarize(model, bundle, collator, store, recordings, results, language, batch_size, progress)
        for task in task_set.label_tasks():
            if task in tasks:
                labels = task_set.labels(task)
                examples = [prompt_example(u, task, language=language, task_set=task_set) for _, _, u in windows]
                probs = label_probabilities_cached(model, bundle, collator, store, examples, labels.names,
                                                   batch_size=batch_size, progress=progress)
                _classify(task, windows, probs, labels.names, results)
        if "asr" not in tasks:
            for r in results.values():
                r.pop("asr", None)
        # Audio that failed to decode, examples left out: said, and their answers missing.
        problems = [(ex.utt_id, f"audio failed to decode: {reason}") for ex, reason in store.take_failures()]
        problems += [(eid.split("#", 1)[0], f"left out: {reason}")
                     for eid, reason in zip(collator.skipped.ids[mark:], collator.skipped.reasons[mark:], strict=True)]
        for uid, reason in problems:
            rid = uid if uid in results else uid.rsplit("@", 1)[0]
            if rid in results:
                results[rid].setdefault("error", reason)
        store.clear()
        return list(results.values())


def analyze_tasks(task_set) -> tuple[str, ...]:
    """The tasks ``analyze`` answers for a run's :class:`~nabra.tasks.TaskSet`: asr, ssum, its label tasks."""
    return ("asr", "ssum", *task_set.label_tasks())


def check_tasks(tasks, allowed) -> tuple[str, ...]:
    tasks = tuple(tasks)
    bad = [t for t in tasks if t not in allowed]
    if bad or not tasks:
        raise NabraError(f"tasks: unknown task(s) {', '.join(bad) or '(none)'}; analyze does {', '.join(allowed)}")
    return tasks


def analyze(paths: list[str | os.PathLike], model_path: str | os.PathLike, *, tasks=None,
            language: str | None = None, batch_size: int = 8, segment_seconds: float | None = None,
            device: str | None = None, progress: bool = True, log=print) -> tuple[list[dict], list[str]]:
    """``(one result per recording, the inputs skipped with their reasons)``; ``tasks`` default: all
    the model's (:func:`analyze_tasks` of its run)."""
    allowed = analyze_tasks(config_of(model_path).task_set())
    tasks = check_tasks(tasks or allowed, allowed)
    skipped: list[str] = []
    recordings = collect(list(paths), skipped)
    if not recordings:
        raise NabraError("nothing to analyze: " + ("; ".join(skipped) or "no inputs"))
    analyzer = Analyzer(model_path, language=language, segment_seconds=segment_seconds, device=device)
    try:
        recordings = plan_windows(recordings, analyzer.window, skipped)
        results = analyzer.run(recordings, tasks, batch_size=batch_size, progress=progress and len(recordings) > 3)
    finally:
        analyzer.close()
    return results, skipped


def _header(rec: Recording, model_path, language: str, window: float) -> dict:
    return {"id": rec.id, "file": rec.audio, "where": rec.where, "offset": rec.offset, "duration": rec.duration,
            "model": str(model_path), "prompt_language": language,
            "windows": len(rec.windows), "window_seconds": window}


def _generate(model, bundle, collator, store, examples: list[Example], batch_size: int, progress: bool):
    return generate_predictions(model, bundle, collator, examples, store, batch_size=batch_size, progress=progress)


def _transcribe(model, bundle, collator, store, windows, results, language, batch_size, progress) -> None:
    examples = [prompt_example(u, "asr", language=language) for _, _, u in windows]
    preds = _generate(model, bundle, collator, store, examples, batch_size, progress)
    for (rec, i, _), pred in zip(windows, preds, strict=True):
        asr = results[rec.id].setdefault("asr", {"text": "", "segments": []})
        start, end = rec.windows[i]
        asr["segments"].append({"start": round(start, 3), "end": round(end, 3), "text": pred.prediction.strip()})
    for r in results.values():
        if "asr" in r:
            r["asr"]["text"] = " ".join(s["text"] for s in r["asr"]["segments"] if s["text"])


def _summarize(model, bundle, collator, store, recordings, results, language, batch_size, progress) -> None:
    examples, sources = [], []
    for rec in recordings:
        if rec.long:  # longer than the window: the summary of the joined transcript (TSUM)
            text = results[rec.id].get("asr", {}).get("text", "")
            if not text:
                results[rec.id]["ssum"] = {"text": "", "source": "transcript",
                                           "how": "the joined transcript (TSUM): it is empty, nothing to summarize"}
                continue
            utt = Utterance(rec.id, transcript=text)
            examples.append(prompt_example(utt, "tsum", language=language))
            sources.append((rec, "transcript"))
        else:  # the window's very span: the audio the other tasks decoded is reused
            (start, end), = rec.windows
            utt = Utterance(rec.id, audio=rec.audio, offset=start, duration=end - start)
            examples.append(prompt_example(utt, "ssum", language=language))
            sources.append((rec, "speech"))
    preds = _generate(model, bundle, collator, store, examples, batch_size, progress) if examples else []
    for (rec, source), pred in zip(sources, preds, strict=True):
        how = ("speech (SSUM)" if source == "speech" else
               f"the joined transcript (TSUM): the recording is longer than the {rec.windows[0][1] - rec.windows[0][0]:.0f}-s window")
        results[rec.id]["ssum"] = {"text": pred.prediction.strip(), "source": source, "how": how}


def _classify(task: str, windows, probs: list[dict[str, float] | None], names, results) -> None:
    by_rec: dict[str, list[dict[str, float]]] = {}
    for (rec, _, _), p in zip(windows, probs, strict=True):
        if p is not None:
            by_rec.setdefault(rec.id, []).append(p)
    for rid, parts in by_rec.items():
        mean = {n: sum(p[n] for p in parts) / len(parts) for n in names}
        results[rid][task] = {"label": max(mean, key=mean.get), "probabilities": mean,
                              **({"windows_averaged": len(parts)} if len(parts) > 1 else {})}


@torch.no_grad()
def label_probabilities(model, bundle, collator, store, examples: list[Example], names, *, batch_size: int = 8,
                        progress: bool = True) -> list[dict[str, float] | None]:
    """For every example (a did/ser prompt with its audio), ``label -> probability``: the softmax over
    the label set of each label's whole-answer log-likelihood (``None`` where the audio failed).
    The reference: every label scored as a training example would be (the whole sequence, the audio
    once per label); :func:`label_probabilities_cached` is what analyze uses."""
    scorer = AnswerLoss(model)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    per_batch = max(1, batch_size)  # clips per forward, each with every label (batch_size x labels rows)
    out: list[dict[str, float] | None] = []
    try:
        with progress_bar(examples[0].task if examples else "labels", len(examples), enabled=progress,
                          unit="clips") as advance:
            for k in range(0, len(examples), per_batch):
                chunk = examples[k : k + per_batch]
                variants = [replace(ex, id=f"{ex.id}={name}", target=name, label=name) for ex in chunk for name in names]
                batch = collator(store.samples(variants))
                logp: dict[str, float] = {}
                if batch["example_ids"]:
                    batch = to_device(batch, device)
                    if "input_features" in batch:
                        batch["input_features"] = batch["input_features"].to(next(model.parameters()).dtype)
                    losses, _ = scorer(batch)
                    logp = dict(zip(batch["example_ids"], (-losses.double()).tolist(), strict=True))
                for ex in chunk:
                    scores = [logp.get(f"{ex.id}={name}") for name in names]
                    if any(s is None for s in scores):
                        out.append(None)
                        continue
                    probs = torch.softmax(torch.tensor(scores, dtype=torch.float64), 0).tolist()
                    out.append(dict(zip(names, probs, strict=True)))
                advance(len(chunk))
    finally:
        model.train(was_training)
    return out


@torch.no_grad()
def label_probabilities_cached(model, bundle, collator, store, examples: list[Example], names, *,
                               batch_size: int = 8, progress: bool = True) -> list[dict[str, float] | None]:
    """What :func:`label_probabilities` computes, with the audio and the prompt run once per clip:
    one prefill of the prompts (their KV cache kept), then one short pass per label over its tokens
    from a copy of that cache, at the 3-D (M-RoPE) positions a whole-sequence forward gives them."""
    thinker = thinker_of(model)
    tokenizer = bundle.tokenizer
    label_ids = [tokenizer(bundle.family.answer_text(name), add_special_tokens=False)["input_ids"] for name in names]
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out: list[dict[str, float] | None] = []
    try:
        with progress_bar(examples[0].task if examples else "labels", len(examples), enabled=progress,
                          unit="clips") as advance:
            for k in range(0, len(examples), max(1, batch_size)):
                chunk = examples[k : k + max(1, batch_size)]
                batch = collator(store.samples(chunk), for_generation=True)  # left-padded prompts
                scores: dict[str, list[float]] = {}
                if batch["example_ids"]:
                    scores = _score_labels(thinker, to_device(batch, device), label_ids)
                for ex in chunk:
                    row = scores.get(ex.id)
                    out.append(None if row is None else dict(zip(
                        names, torch.softmax(torch.tensor(row, dtype=torch.float64), 0).tolist(), strict=True)))
                advance(len(chunk))
    finally:
        model.train(was_training)
    return out


def _score_labels(thinker, batch: dict, label_ids: list[list[int]]) -> dict[str, list[float]]:
    """``example id -> [log P(label answer | prompt) for each label]`` for one left-padded batch."""
    dtype = next(thinker.parameters()).dtype
    inputs = {k: v for k, v in batch.items() if isinstance(v, torch.Tensor) and k != "labels"}
    if "input_features" in inputs:
        inputs["input_features"] = inputs["input_features"].to(dtype)
    prompt_ids, prompt_mask = inputs["input_ids"], inputs["attention_mask"]
    fam = family_of_model(thinker)
    pre = thinker(**inputs, use_cache=True)
    first = torch.log_softmax(pre.logits[:, -1].float(), -1)
    rows, width = prompt_ids.shape
    totals = torch.zeros(rows, len(label_ids), dtype=torch.float64)
    for j, ids in enumerate(label_ids):
        tokens = torch.tensor(ids, device=prompt_ids.device).expand(rows, -1)
        full_ids = torch.cat([prompt_ids, tokens], 1)
        full_mask = torch.cat([prompt_mask, torch.ones_like(tokens)], 1)
        positions = fam.positions(thinker, full_ids, full_mask, inputs)
        total = first[:, ids[0]].double()
        if len(ids) > 1:
            extra = {} if positions is None else {"position_ids": positions[..., width:]}
            step = thinker(input_ids=tokens, attention_mask=full_mask, cache=copy.deepcopy(pre.cache), use_cache=True,
                           **extra)
            logp = torch.log_softmax(step.logits[:, :-1].float(), -1)
            total = total + logp.gather(-1, tokens[:, 1:, None]).squeeze(-1).double().sum(1)
        totals[:, j] = total.cpu()
    return {eid: totals[i].tolist() for i, eid in enumerate(batch["example_ids"])}


def render(results: list[dict]) -> str:
    """A human-readable account of each recording's answers."""
    lines = []
    for r in results:
        lines.append(f"{r['where']}  ({r['duration']:.1f} s" + (f", {r['windows']} windows" if r["windows"] > 1 else "") + ")")
        if "error" in r:
            lines.append(f"  error: {r['error']}")
        if "asr" in r:
            lines.append(f"  transcript: {r['asr']['text']}")
        if "ssum" in r:
            lines.append(f"  summary ({r['ssum']['source']}): {r['ssum']['text']}")
        for task, value in r.items():
            if isinstance(value, dict) and "probabilities" in value:
                name = {"did": "dialect", "ser": "emotion"}.get(task, task)
                probs = sorted(r[task]["probabilities"].items(), key=lambda kv: -kv[1])
                lines.append(f"  {name}: {r[task]['label']}  (" + ", ".join(f"{k} {v:.2f}" for k, v in probs) + ")")
    return "\n".join(lines)
