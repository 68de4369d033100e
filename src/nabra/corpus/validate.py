"""Manifest validation: every problem, with its line number and a reason; nothing dropped silently.

Streaming and flat in memory: lines are checked one at a time; duplicate ids are found from a
compact array of (id hash, line) pairs, sorted once at the end and confirmed by re-reading only
the colliding lines. Audio checks (``check_audio``) run in a small thread pool, chunk by chunk.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nabra.corpus.audio import (
    DURATION_TOLERANCE,
    SAMPLE_RATE,
    AudioInfo,
    audio_info,
    check_samples,
    load_audio,
)
from nabra.corpus.labels import DIALECTS, EMOTIONS, LabelSet
from nabra.corpus.manifest import ManifestLineError, Utterance, iter_lines, parse_line, resolve_audio
from nabra.errors import AudioError

AUDIO_CHUNK = 256
"""Utterances whose audio is checked per batch of the thread pool."""


@dataclass
class ValidationConfig:
    """What a valid manifest must satisfy."""

    dialects: LabelSet = DIALECTS
    """Allowed dialect labels."""
    emotions: LabelSet = EMOTIONS
    """Allowed emotion labels."""
    check_audio: bool = False
    """Also open every audio file: validation decodes it (slow: reads all audio), an import reads its
    header (missing/unreadable files and segments past the end are skipped, missing durations filled in)."""
    min_duration: float = 0.1
    """Shortest acceptable audio, in seconds (checked with ``check_audio``, and on ``duration``)."""
    workers: int = 4
    """Threads reading audio in parallel (``check_audio``)."""


@dataclass(frozen=True)
class Problem:
    """One reason a line is invalid."""

    line: int
    reason: str

    def format(self, path: str | os.PathLike) -> str:
        return f"{path}:{self.line}: {self.reason}"


@dataclass
class ValidationReport:
    """Counts over the whole manifest, filled while the problems are iterated."""

    lines: int = 0
    valid: int = 0
    invalid_lines: set[int] = field(default_factory=set)

    @property
    def invalid(self) -> int:
        return len(self.invalid_lines)


def check_utterance(utt: Utterance, cfg: ValidationConfig) -> list[str]:
    """Metadata problems of one parsed utterance (labels, annotations, duration)."""
    reasons = []
    if utt.dialect is not None and utt.dialect not in cfg.dialects:
        reasons.append(f"dialect {utt.dialect!r} is not in the label set ({', '.join(cfg.dialects.names)})")
    if utt.emotion is not None and utt.emotion not in cfg.emotions:
        reasons.append(f"emotion {utt.emotion!r} is not in the label set ({', '.join(cfg.emotions.names)})")
    if all(v is None for v in (utt.transcript, utt.summary, utt.dialect, utt.emotion)):
        reasons.append("no annotation (needs at least one of transcript, summary, dialect, emotion)")
    elif not utt.tasks():
        reasons.append("serves no task: dialect/emotion/summary-only annotations need an audio file")
    if utt.duration is not None and utt.duration < cfg.min_duration:
        reasons.append(f"duration {utt.duration} s is shorter than the minimum {cfg.min_duration} s")
    return reasons


def segment_problem(utt: Utterance, info: AudioInfo) -> tuple[str, str] | None:
    """``(kind, message)`` when the span ``utt`` names (``offset``, ``duration``) does not fit the
    audio file described by ``info``, else ``None``. The one check of validation and the importers."""
    if info.frames == 0:
        return "audio has zero length", f"audio has zero length: {utt.audio}"
    available = info.duration - utt.offset
    if available <= 0:
        return ("offset past the end of the audio",
                f"offset {utt.offset} s is past the end of {utt.audio} ({info.duration:.3f} s)")
    if utt.duration is not None and utt.duration > available + DURATION_TOLERANCE:
        return ("segment runs past the end of the audio",
                f"duration {utt.duration} s runs past the end of {utt.audio} ({available:.3f} s from the offset)")
    return None


def check_audio_file(utt: Utterance, cfg: ValidationConfig) -> list[str]:
    """Problems with the audio behind ``utt`` (``utt.audio`` already resolved)."""
    try:
        info = audio_info(utt.audio)
        problem = segment_problem(utt, info)
        if problem is not None and problem[0] != "segment runs past the end of the audio":
            return [problem[1]]
        samples = load_audio(utt.audio, offset=utt.offset, duration=utt.duration)
        check_samples(utt.audio, samples)
    except AudioError as e:
        return [str(e)]
    reasons = []
    actual = samples.size / SAMPLE_RATE
    if actual < cfg.min_duration:
        reasons.append(f"audio is {actual:.3f} s, shorter than the minimum {cfg.min_duration} s: {utt.audio}")
    if problem is not None:
        reasons.append(problem[1])
    return reasons


def audio_pool(cfg: ValidationConfig):
    """The thread pool that checks audio (a no-op context without ``check_audio``)."""
    return ThreadPoolExecutor(cfg.workers) if cfg.check_audio else nullcontext()


def validate_manifest(
    path: str | os.PathLike, cfg: ValidationConfig | None = None, report: ValidationReport | None = None,
    parsed: list[tuple[int, Utterance]] | None = None,
) -> Iterator[Problem]:
    """Yield every problem of the manifest at ``path``.

    Problems come in line order, except duplicate ids, which are reported after the pass (a
    duplicate is only known once both lines are seen). ``report`` is filled with the counts;
    ``parsed`` (a list) gets ``(line, utterance)`` of every line that parses, so that a reader needs
    no second pass (it drops the lines with problems).
    """
    cfg = cfg or ValidationConfig()
    report = report if report is not None else ValidationReport()
    root = Path(path).resolve().parent
    id_hashes, id_lines = array("q"), array("L")
    pending: list[tuple[int, Utterance]] = []
    with audio_pool(cfg) as pool:
        for lineno, line in iter_lines(path):
            report.lines += 1
            try:
                utt = parse_line(line)
            except ManifestLineError as e:
                yield from _mark(report, [Problem(lineno, str(e))])
                continue
            id_hashes.append(hash(utt.id))
            id_lines.append(lineno)
            if parsed is not None:
                parsed.append((lineno, utt))
            reasons = check_utterance(utt, cfg)
            if reasons or not cfg.check_audio or utt.audio is None:
                yield from _mark(report, [Problem(lineno, r) for r in reasons])
                continue
            pending.append((lineno, resolve_audio(utt, root)))
            if len(pending) >= AUDIO_CHUNK:
                yield from _mark(report, _check_chunk(pool, pending, cfg))
                pending = []
        yield from _mark(report, _check_chunk(pool, pending, cfg))
    yield from _mark(report, _duplicate_ids(path, id_hashes, id_lines))
    report.valid = report.lines - report.invalid


def _mark(report: ValidationReport, problems: list[Problem]) -> list[Problem]:
    report.invalid_lines.update(p.line for p in problems)
    return problems


def _check_chunk(pool, pending: list[tuple[int, Utterance]], cfg: ValidationConfig) -> list[Problem]:
    if not pending:
        return []
    results = pool.map(lambda item: check_audio_file(item[1], cfg), pending)
    return [Problem(lineno, r) for (lineno, _), reasons in zip(pending, results, strict=True) for r in reasons]


def _duplicate_ids(path, id_hashes: array, id_lines: array) -> list[Problem]:
    if len(id_hashes) < 2:
        return []
    hashes = np.frombuffer(id_hashes, dtype=np.int64)
    order = np.argsort(hashes, kind="stable")
    sorted_h = hashes[order]
    same = sorted_h[1:] == sorted_h[:-1]
    if not same.any():
        return []
    lines_np = np.frombuffer(id_lines, dtype=np.uint64 if id_lines.itemsize == 8 else np.uint32)
    candidates = set(lines_np[order[1:][same]].tolist()) | set(lines_np[order[:-1][same]].tolist())
    # Re-read only the candidate lines to compare the real ids (a hash match may be a collision).
    first_seen: dict[str, int] = {}
    problems = []
    for lineno, line in iter_lines(path):
        if lineno not in candidates:
            continue
        uid = parse_line(line).id
        if uid in first_seen:
            problems.append(Problem(lineno, f"duplicate id {uid!r} (first on line {first_seen[uid]})"))
        else:
            first_seen[uid] = lineno
    return problems
