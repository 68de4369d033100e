"""AraMega-SSum: Arabic text-summarization pairs spoken by a multi-voice TTS (``nabra ssum build``).

Following Mega-SSum (Interspeech 2024), every (document, summary) pair becomes a (speech,
transcript, summary) triplet, which serves ASR, SSUM and TSUM. A document is cleaned for the TTS
(Latin letters would switch eSpeak to English), split into sentences, spoken sentence by sentence
by a voice that rotates across documents, and the sentences are joined with short seeded pauses
into one 16 kHz mono WAV. The transcript is exactly the spoken text.

Every choice (sentences, voice, pauses, split) is made up front from the seed and the input, so a
document's WAV depends on nothing else. That is what makes the build resumable: a journal
(``.ssum-progress.jsonl``) gets one line per finished document, flushed as it finishes; a rerun
skips the documents whose plan is in the journal and whose WAV exists, and the manifest is built
from the journal in input order through the importers' checks
(:func:`~nabra.corpus.importers.common.run_import`), so an interrupted and resumed build writes
the same manifest as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np

from nabra.corpus.audio import SAMPLE_RATE, save_wav
from nabra.corpus.importers.common import (
    ImportOptions,
    Row,
    SkipReport,
    counted_lines,
    run_import,
    safe_name,
    skip_sink,
    skipped_path,
)
from nabra.corpus.manifest import ManifestLineError, Utterance, decode_json
from nabra.corpus.ssum_text import split_sentences
from nabra.corpus.synth import SPLIT_SHARES
from nabra.corpus.tts import SPLIT_VOICES, TTS, CommandTTS, EspeakTTS, TTSError
from nabra.errors import NabraError
from nabra.files import atomic_path, open_append, read_records
from nabra.progress import progress_bar

DEFAULT_SOURCE = "aramega-ssum"
MANIFEST_NAME = "manifest.jsonl"
JOURNAL_NAME = ".ssum-progress.jsonl"
# The synthetic corpus's order (train voices, then dev, then test), so that `--split-by voice`
# holds out the same voices as `nabra synth` does.
ESPEAK_VOICES: tuple[str, ...] = tuple(v for voices in SPLIT_VOICES.values() for v in voices)
SPLIT_ALIASES = {"train": "train", "training": "train", "dev": "dev", "validation": "dev", "valid": "dev",
                 "val": "dev", "test": "test"}  # fmt: skip
"""Split names in the input -> manifest splits (XL-Sum calls dev ``validation``)."""


@dataclass
class SsumConfig:
    """How to speak the pairs. Every field has a default; the checks run on construction."""

    tts: str = "espeak"
    """TTS backend: ``espeak`` (eSpeak NG, built in) or ``command`` (an external program)."""
    tts_command: str | None = None
    """The external TTS (``--tts command``), with ``{wav}`` and optionally ``{txt}``, ``{voice}``."""
    voices: tuple[str, ...] | None = None
    """Voices to rotate over (default: the 12 eSpeak variants, or ``default`` for a command)."""
    workers: int = 0
    """Documents spoken in parallel (0 = one per CPU core)."""
    limit: int | None = None
    """Stop after this many accepted documents (None = all)."""
    split_by: str = "doc"
    """Split of pairs without one: ``doc`` (seeded 80/10/10 per document, every voice in every
    split) or ``voice`` (the same, but each split has its own voices: speaker-disjoint)."""
    seed: int = 0
    """Seed of the voice order, the pauses and the document splits."""
    source: str = DEFAULT_SOURCE
    """Value of the manifest's ``source`` field."""
    document_field: str | None = None
    """Input field holding the document (None: ``document``, else ``text``)."""
    summary_field: str = "summary"
    """Input field holding the summary."""
    max_sentence_chars: int = 200
    """Longer sentences are split at a comma or semicolon (else a space) near this length."""
    pause_ms: tuple[int, int] = (250, 450)
    """Silence between two sentences, drawn uniformly per gap (min, max) in milliseconds."""
    check_audio: bool = False
    """Read every written WAV's header again before the manifest is written."""

    def __post_init__(self) -> None:
        if self.tts not in ("espeak", "command"):
            raise NabraError(f"--tts must be espeak or command, got {self.tts!r}")
        if (self.tts == "command") != bool(self.tts_command):
            raise NabraError("--tts command needs --tts-command '...' (and --tts-command needs --tts command)")
        if self.voices is None:
            self.voices = ESPEAK_VOICES if self.tts == "espeak" else ("default",)
        self.voices, self.pause_ms = tuple(self.voices), tuple(self.pause_ms)
        if not self.voices or len(set(self.voices)) != len(self.voices) or not all(v.strip() for v in self.voices):
            raise NabraError(f"voices must be a non-empty list without duplicates, got {list(self.voices)}")
        if self.split_by not in ("doc", "voice"):
            raise NabraError(f"--split-by must be doc or voice, got {self.split_by!r}")
        if self.split_by == "voice" and len(self.voices) < 3:
            raise NabraError(f"--split-by voice needs at least 3 voices (train, dev, test), got {len(self.voices)}")
        if self.workers < 0 or (self.limit is not None and self.limit < 1):
            raise NabraError("--workers must be >= 0 and --limit >= 1")
        if self.max_sentence_chars < 20:
            raise NabraError(f"max_sentence_chars must be at least 20, got {self.max_sentence_chars}")
        lo, hi = self.pause_ms
        if not 0 <= lo <= hi:
            raise NabraError(f"pause_ms must be (min, max) with 0 <= min <= max, got {(lo, hi)}")


# ---------------------------------------------------------------------------------------------
# Text: what the TTS is given


def make_tts(config: SsumConfig) -> EspeakTTS | CommandTTS:
    """The backend ``config`` names, checked (program found, voices usable)."""
    tts = EspeakTTS() if config.tts == "espeak" else CommandTTS(config.tts_command)
    tts.check(config.voices)
    return tts


# ---------------------------------------------------------------------------------------------
# Planning: every choice, no audio


@dataclass(frozen=True)
class DocPlan:
    """Everything needed to speak one document and write its manifest line."""

    id: str
    where: str
    sentences: tuple[str, ...]
    pauses_ms: tuple[int, ...]
    """Silence before each sentence but the first."""
    voice: str
    summary: str
    split: str
    digest: str
    """Hash of what decides the audio (backend, sentences, pauses, voice): the journal's key."""
    title: str | None = None

    @property
    def transcript(self) -> str:
        """Exactly what is spoken."""
        return " ".join(self.sentences)

    @property
    def wav_name(self) -> str:
        return f"{safe_name(self.id)}.wav"

    def utterance(self, audio: str, duration: float, source: str) -> Utterance:
        """The manifest record of this document once spoken."""
        return Utterance(id=self.id, audio=audio, duration=duration, language="ar", transcript=self.transcript,
                         summary=self.summary, speaker=self.voice, source=source, split=self.split,
                         extra={"title": self.title} if self.title else {})


@dataclass
class _Pair:
    """A pair read from the input, cleaned, before voice and split are chosen."""

    id: str
    where: str
    sentences: list[str]
    summary: str
    split: str | None
    title: str | None


def plan_documents(pairs: Path, config: SsumConfig, tts_key: str, report: SkipReport) -> list[DocPlan]:
    """The plan of every usable pair, in input order; the others are skipped with a reason."""
    pools = _voice_pools(config)
    turns = dict.fromkeys(pools, 0)
    plans = []
    for pair in _read_pairs(pairs, config, report):
        split = pair.split or _doc_split(config.seed, pair.id)
        pool = split if config.split_by == "voice" else "all"
        voice = pools[pool][turns[pool] % len(pools[pool])]
        turns[pool] += 1
        plans.append(_plan(pair, split, voice, config, tts_key))
        if config.limit is not None and len(plans) >= config.limit:
            break
    return plans


def _voice_pools(config: SsumConfig) -> dict[str, tuple[str, ...]]:
    """Voices to rotate over: one pool (``all``), or with ``split_by="voice"`` one per split (the
    last k voices speak test, the k before them dev, k = 1/6 of the voices, at least 1)."""
    voices = list(config.voices)
    if config.split_by == "doc":
        pools = {"all": voices}
    else:
        k = max(1, round(len(voices) / 6))
        pools = {"train": voices[: -2 * k], "dev": voices[-2 * k : -k], "test": voices[-k:]}
    rng = random.Random(config.seed)
    for pool in pools.values():
        rng.shuffle(pool)  # the seed decides which voice starts, and the order they take turns in
    return {name: tuple(pool) for name, pool in pools.items()}


def _doc_split(seed: int, doc_id: str) -> str:
    """train/dev/test by the shares of the synthetic corpus, from the id alone: a document keeps
    its split when the input grows or is reordered."""
    r = random.Random(f"{seed}:split:{doc_id}").random()
    for split, share in SPLIT_SHARES.items():
        r -= share
        if r < 0:
            return split
    return "test"


def _plan(pair: _Pair, split: str, voice: str, config: SsumConfig, tts_key: str) -> DocPlan:
    # Pauses are seeded by the id, not drawn in sequence, so no document's audio depends on another.
    rng = random.Random(f"{config.seed}:pauses:{pair.id}")
    pauses = tuple(rng.randint(*config.pause_ms) for _ in pair.sentences[1:])
    audio_key = json.dumps([tts_key, voice, pair.sentences, pauses], ensure_ascii=False)
    return DocPlan(id=pair.id, where=pair.where, sentences=tuple(pair.sentences), pauses_ms=pauses, voice=voice,
                   summary=pair.summary, split=split, title=pair.title,
                   digest=hashlib.sha256(audio_key.encode("utf-8")).hexdigest()[:20])


def _read_pairs(path: Path, config: SsumConfig, report: SkipReport) -> Iterator[_Pair]:
    """Usable pairs of the JSONL at ``path``; every non-blank line counts in ``report.seen``."""
    ids: set[str] = set()
    files: set[str] = set()
    stem = Path(path.name.removesuffix(".gz")).stem  # default ids: pairs.jsonl.gz:7 -> pairs-000007
    for lineno, where, line in counted_lines(path, report):  # a line that is not UTF-8 is a skip
        pair, problem = _parse_pair(line, config, f"{stem}-{lineno:06d}")
        if problem is None:
            problem = _clash(pair.id, ids, files)
        if problem is not None:
            report.skip(where, *problem)
            continue
        pair.where = where
        yield pair


def _parse_pair(line: str, config: SsumConfig, default_id: str) -> tuple[_Pair | None, tuple[str, str] | None]:
    """(the pair, None) or (None, (reason, detail)) for one input line."""
    try:
        obj = decode_json(line)
    except ManifestLineError as e:
        return None, ("bad JSON", str(e))
    if not isinstance(obj, dict):
        return None, ("bad JSON", f"expected an object, got {type(obj).__name__}")
    doc_field = config.document_field or ("document" if "document" in obj else "text")
    document, summary = obj.get(doc_field), obj.get(config.summary_field)
    if not _text(document):
        return None, ("no document", f"field {doc_field!r} is missing, empty or not a string")
    if not _text(summary):
        return None, ("no summary", f"field {config.summary_field!r} is missing, empty or not a string")
    sentences = split_sentences(document, config.max_sentence_chars)
    if not sentences:
        return None, ("document empty after cleaning for TTS", document[:80])
    split = None if obj.get("split") is None else SPLIT_ALIASES.get(str(obj["split"]).strip().lower())
    if obj.get("split") is not None and split is None:
        return None, ("unknown split", f"{obj['split']!r} (known: {', '.join(SPLIT_ALIASES)})")
    uid = ("" if obj.get("id") is None else str(obj["id"]).strip()) or default_id
    title = obj["title"].strip() if _text(obj.get("title")) else None
    return _Pair(uid, "", sentences, summary.strip(), split, title), None


def _text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _clash(doc_id: str, ids: set[str], files: set[str]) -> tuple[str, str] | None:
    """A reason to skip a pair whose id (or the WAV name made of it) an earlier pair took."""
    name = safe_name(doc_id).casefold()  # case-insensitive file systems would merge two WAVs
    if doc_id in ids or name in files:
        return "duplicate id", f"{doc_id} (or its file name {safe_name(doc_id)}.wav) is taken"
    ids.add(doc_id)
    files.add(name)
    return None


# ---------------------------------------------------------------------------------------------
# Speaking


def speak_document(plan: DocPlan, tts: TTS) -> np.ndarray:
    """The document's sentences spoken one by one and joined with its planned pauses."""
    parts = []
    for sentence, pause in zip(plan.sentences, (0, *plan.pauses_ms), strict=True):
        parts.append(np.zeros(pause * SAMPLE_RATE // 1000, dtype=np.float32))
        parts.append(np.asarray(tts(sentence, plan.voice), dtype=np.float32))
    return np.concatenate(parts)


def render_document(plan: DocPlan, tts: TTS, audio_dir: Path) -> float:
    """Speak ``plan`` into ``audio_dir``; returns the duration in seconds."""
    samples = speak_document(plan, tts)
    final = audio_dir / plan.wav_name
    with atomic_path(final) as tmp:  # a crash never leaves half a WAV under the real name
        save_wav(tmp, samples)
    return round(samples.size / SAMPLE_RATE, 3)


@dataclass
class _Outcome:
    duration: float | None = None
    problem: tuple[str, str] | None = None


def _attempt(plan: DocPlan, tts: TTS, audio_dir: Path) -> _Outcome:
    """Render one document; a TTS failure skips the document, anything else stops the build."""
    try:
        return _Outcome(duration=render_document(plan, tts, audio_dir))
    except TTSError as e:
        return _Outcome(problem=(e.reason, e.detail))
    except NabraError as e:
        return _Outcome(problem=("TTS failed", str(e)))


# ---------------------------------------------------------------------------------------------
# The journal: what a rerun need not redo


def load_journal(path: Path) -> dict[str, tuple[str, float]]:
    """id -> (plan digest, duration) of every document the journal says is done (later lines win)."""
    done: dict[str, tuple[str, float]] = {}
    if not path.is_file():
        return done
    for entry in read_records(path)[0]:  # a line cut short by a crash (even mid-character) is dropped
        try:
            doc_id, digest = entry["id"], entry["digest"]
            duration = entry["record"]["duration"] if digest is not None else None
        except (KeyError, TypeError):
            continue
        if digest is None:
            done.pop(doc_id, None)
        elif isinstance(duration, (int, float)) and duration > 0:
            done[doc_id] = (digest, float(duration))
    return done


def _journal(f: TextIO, entry: dict) -> None:
    f.write(json.dumps(entry, ensure_ascii=False) + "\n")
    f.flush()  # one line per finished document: a crash loses at most the documents in flight


def _forget_stale(f: TextIO, todo: list[DocPlan], journal: dict[str, tuple[str, float]]) -> None:
    """Withdraw journal entries of documents about to be spoken again (settings changed, WAV gone):
    once a new WAV replaces the old, the old entry must not vouch for it, even after a crash."""
    for plan in todo:
        if plan.id in journal:
            _journal(f, {"id": plan.id, "digest": None})


# ---------------------------------------------------------------------------------------------
# The build


@dataclass
class SsumResult:
    """What :func:`build` wrote."""

    out_dir: Path
    manifest: Path
    report: SkipReport = field(repr=False)
    """Pairs seen, written and skipped (with reasons)."""
    synthesized: int
    """Documents spoken by this run."""
    resumed: int
    """Documents taken from the journal of an earlier run."""
    audio_seconds: float
    """Total audio in the manifest."""
    elapsed: float
    """Seconds spent speaking in this run."""

    @property
    def docs_per_min(self) -> float:
        return 60 * self.synthesized / self.elapsed if self.elapsed > 0 else 0.0


def build(pairs: str | os.PathLike, out_dir: str | os.PathLike, config: SsumConfig | None = None, *,
          progress: bool = True) -> SsumResult:
    """Speak the pairs JSONL ``pairs`` into ``out_dir``: ``manifest.jsonl``, WAVs under ``audio/``,
    skipped pairs in ``manifest.skipped.jsonl``. Rerunning on the same folder resumes."""
    config = config or SsumConfig()
    pairs, out_dir = Path(pairs), Path(out_dir)
    if not pairs.is_file():
        raise NabraError(f"{pairs}: pairs file not found (JSONL: document or text, and summary, per line)")
    tts = make_tts(config)
    audio_dir = out_dir / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    for tmp in audio_dir.glob(".tmp.*.wav"):  # WAVs a crash left half-written
        tmp.unlink()
    manifest = out_dir / MANIFEST_NAME
    # An earlier manifest would describe WAVs this run may rewrite: a failed run leaves none.
    manifest.unlink(missing_ok=True)
    with skip_sink(skipped_path(manifest)) as report:
        plans = plan_documents(pairs, config, tts.key, report)
        journal = load_journal(out_dir / JOURNAL_NAME)
        durations = {p.id: journal[p.id][1] for p in plans if _resumable(p, journal, audio_dir)}
        todo = [p for p in plans if p.id not in durations]
        start = time.perf_counter()
        with open_append(out_dir / JOURNAL_NAME) as f:
            _forget_stale(f, todo, journal)
            spoken = _render_all(todo, tts, audio_dir, f, config, report, len(durations), progress)
        elapsed = time.perf_counter() - start
        durations |= spoken
        rows = (Row(p.where, p.utterance(str((audio_dir / p.wav_name).resolve()), durations[p.id], config.source))
                for p in plans if p.id in durations)
        run_import(rows, manifest, report, ImportOptions(check_audio=config.check_audio))
    return SsumResult(out_dir=out_dir, manifest=manifest, report=report, synthesized=len(spoken),
                      resumed=len(plans) - len(todo), audio_seconds=round(sum(durations.values()), 3),
                      elapsed=elapsed)


def _resumable(plan: DocPlan, journal: dict[str, tuple[str, float]], audio_dir: Path) -> bool:
    entry = journal.get(plan.id)
    return entry is not None and entry[0] == plan.digest and (audio_dir / plan.wav_name).is_file()


def _render_all(todo: list[DocPlan], tts: TTS, audio_dir: Path, journal: TextIO, config: SsumConfig,
                report: SkipReport, resumed: int, progress: bool) -> dict[str, float]:
    """Speak ``todo`` in parallel, journaling each document as it finishes; id -> duration."""
    spoken: dict[str, float] = {}
    with progress_bar("ssum build", resumed + len(todo), enabled=progress, completed=resumed, unit="docs") as advance:
        pool = ThreadPoolExecutor(config.workers or os.cpu_count() or 1)
        futures = {pool.submit(_attempt, p, tts, audio_dir): p for p in todo}
        try:
            for fut in as_completed(futures):
                _record(futures[fut], fut.result(), journal, config.source, spoken, report)
                advance()
        except BaseException:
            # Ctrl-C (or a bug): drop the queue, let the documents in flight end, and journal every
            # one that finished, so that the rerun redoes as little as possible.
            pool.shutdown(wait=True, cancel_futures=True)
            _journal_finished(futures, journal, config.source, spoken)
            raise
        finally:
            pool.shutdown()
    return spoken


def _record(plan: DocPlan, outcome: _Outcome, journal: TextIO, source: str, spoken: dict[str, float],
            report: SkipReport) -> None:
    if outcome.duration is None:
        report.skip(plan.where, *outcome.problem)
    else:
        _journal_done(plan, outcome.duration, journal, source, spoken)


def _journal_done(plan: DocPlan, duration: float, journal: TextIO, source: str, spoken: dict[str, float]) -> None:
    record = plan.utterance(f"audio/{plan.wav_name}", duration, source).to_dict()
    _journal(journal, {"id": plan.id, "digest": plan.digest, "record": record})
    spoken[plan.id] = duration


def _journal_finished(futures: dict[Future, DocPlan], journal: TextIO, source: str,
                      spoken: dict[str, float]) -> None:
    """Journal the documents that finished after the build was stopped."""
    for fut, plan in futures.items():
        if plan.id in spoken or not fut.done() or fut.cancelled() or fut.exception() is not None:
            continue
        if fut.result().duration is not None:
            _journal_done(plan, fut.result().duration, journal, source, spoken)
