"""Manifest validation: every problem, with its line number and a reason; nothing dropped silently.

Streaming and flat in memory: lines are checked one at a time; duplicate ids are found from a
compact array of (id hash, line) pairs, sorted once at the end and confirmed by re-reading only
the colliding lines. Audio checks (``check_audio``) run in a small thread pool, chunk by chunk.
"""

from __future__ import annotations

import os
import re
from array import array
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from difflib import get_close_matches
from functools import lru_cache
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
from nabra.corpus.manifest import (
    FIELD_NAMES,
    MAX_LINE_BYTES,
    ManifestLineError,
    Utterance,
    iter_lines,
    parse_line,
    resolve_audio,
)
from nabra.errors import AudioError
from nabra.text.buckwalter import latin_script

AUDIO_CHUNK = 256
"""Utterances whose audio is checked per batch of the thread pool."""


@dataclass
class ValidationConfig:
    """What a valid manifest must satisfy."""

    dialects: LabelSet = DIALECTS
    """Allowed dialect labels."""
    emotions: LabelSet = EMOTIONS
    """Allowed emotion labels."""
    declared: tuple = ()
    """The run's declared tasks (:class:`nabra.tasks.TaskSpec`): their fields' values must be in their label sets."""
    check_audio: bool = False
    """Also open every audio file: validation decodes it (slow: reads all audio), an import reads its
    header (missing/unreadable files and segments past the end are skipped, missing durations filled in)."""
    min_duration: float = 0.1
    """Shortest acceptable audio, in seconds (checked with ``check_audio``, and on ``duration``)."""
    workers: int = 4
    """Threads reading audio in parallel (``check_audio``)."""
    max_line_bytes: int = MAX_LINE_BYTES
    """Longest line accepted, in bytes (a longer one is reported without being read into memory)."""


@dataclass(frozen=True)
class Problem:
    """One reason a line is invalid, or (``warning``) something about a valid line worth a look."""

    line: int
    reason: str
    warning: bool = False

    def format(self, path: str | os.PathLike) -> str:
        return f"{path}:{self.line}: {'warning: ' if self.warning else ''}{self.reason}"


@dataclass
class ValidationReport:
    """Counts over the whole manifest, filled while the problems are iterated."""

    lines: int = 0
    valid: int = 0
    invalid_lines: set[int] = field(default_factory=set)
    warnings: int = 0

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
    declared = [(spec, spec.value(utt)) for spec in cfg.declared]
    for spec, raw in declared:
        if raw is not None and spec.labels.lookup(raw) is None:
            reasons.append(f"{spec.field} {raw!r} is not in the {spec.name} label set ({', '.join(spec.labels.names)})")
    labelled = [raw for _, raw in declared if raw is not None]
    if all(v is None for v in (utt.transcript, utt.summary, utt.dialect, utt.emotion)) and not labelled:
        names = ", ".join(["transcript", "summary", "dialect", "emotion", *(s.field for s in cfg.declared)])
        reasons.append(f"no annotation (needs at least one of {names})")
    elif not utt.tasks() and not (labelled and utt.audio is not None):
        reasons.append("serves no task: dialect/emotion/summary-only annotations need an audio file")
    if utt.duration is not None and utt.duration < cfg.min_duration:
        reasons.append(f"duration {utt.duration} s is shorter than the minimum {cfg.min_duration} s")
    return reasons


_FIELD_HINTS = {"text": "transcript", "sentence": "transcript", "transcription": "transcript",
                "normalized_text": "transcript", "audio_filepath": "audio", "audio_path": "audio", "path": "audio",
                "wav": "audio", "file": "audio", "start": "offset", "label": "dialect or emotion",
                "lang": "language", "speaker_id": "speaker", "client_id": "speaker"}
"""Field names of other formats (NeMo, Lhotse, Common Voice, HF) and the manifest field they mean."""
_PATH_LIKE = re.compile(r"^[/\\~.]|(^|[/\\])\.\.([/\\]|$)|^[A-Za-z]:[/\\]")
"""An absolute path, a home or hidden path, a ``..`` component, a Windows drive."""
_TEXT_CONTROL = re.compile("[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


@lru_cache(maxsize=4096)  # a manifest has a handful of extra keys on millions of lines; difflib is slow
def _field_hint(key: str) -> str | None:
    """The manifest field an extra key probably means, or None."""
    return _FIELD_HINTS.get(key.casefold()) or next(iter(get_close_matches(key.casefold(), FIELD_NAMES, 1, 0.8)), None)


def utterance_warnings(utt: Utterance) -> list[str]:
    """What is odd about a valid utterance but may be meant: a field name that looks misspelled or
    comes from another format, an id that looks like a path, control characters in the text, a
    transcript or summary of an Arabic utterance written in Latin letters (Buckwalter, or English)."""
    out = []
    for key in utt.extra:
        hint = _field_hint(key)
        # (offset is 0.0, not None, when absent: a "start" misnamed would silently train from 0 s)
        if hint is not None and all(getattr(utt, f, None) in (None, 0.0) for f in hint.split(" or ")):
            out.append(f"field {key!r} is not a manifest field (kept as an extra field): did you mean {hint!r}?")
    if _PATH_LIKE.search(utt.id):  # "a/b" is a common id style (merge --prefix-ids writes it): not this
        out.append(f"id {utt.id!r} looks like a path; files Nabra names after ids use a sanitized name")
    arabic = utt.language is not None and utt.language.split("-")[0].split("_")[0].casefold() == "ar"
    for key in ("transcript", "summary"):
        text = getattr(utt, key)
        if text is None:
            continue
        if bad := _TEXT_CONTROL.search(text):
            out.append(f"control character U+{ord(bad.group()):04X} in {key}")
        if arabic and (script := latin_script(text)):
            out.append(f"{key} is in Latin letters, not Arabic script, in an Arabic (language ar) utterance"
                       + (": Buckwalter transliteration? (nabra data import mgb2 converts it)" if script == "buckwalter"
                          else ""))
    return out


def reason_key(message: str) -> str:
    """A message without its values (quoted strings, numbers, a value after a final colon), so that
    problems group by kind."""
    key = re.sub(r"(?<![\w-])-?\d[\d,]*(\.\d+)?(e-?\d+)?(?!\w)", "N", re.sub(r"'[^']*'", "X", message))
    return re.sub(r": [XN]$", "", key)


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
    id_hashes, fold_hashes, id_lines = array("q"), array("q"), array("L")
    pending: list[tuple[int, Utterance]] = []
    with audio_pool(cfg) as pool:
        for lineno, line in iter_lines(path, cfg.max_line_bytes):
            report.lines += 1
            try:
                utt = parse_line(line)
            except ManifestLineError as e:
                yield from _mark(report, [Problem(lineno, str(e))])
                continue
            id_hashes.append(hash(utt.id))
            fold_hashes.append(hash(utt.id.casefold()))
            id_lines.append(lineno)
            if parsed is not None:
                parsed.append((lineno, utt))
            warnings = utterance_warnings(utt)
            if warnings:
                yield from _mark(report, [Problem(lineno, w, warning=True) for w in warnings])
            reasons = check_utterance(utt, cfg)
            if reasons:
                yield from _mark(report, [Problem(lineno, r) for r in reasons])
            if reasons or not cfg.check_audio or utt.audio is None:
                continue
            pending.append((lineno, resolve_audio(utt, root)))
            if len(pending) >= AUDIO_CHUNK:
                yield from _mark(report, _check_chunk(pool, pending, cfg))
                pending = []
        yield from _mark(report, _check_chunk(pool, pending, cfg))
    yield from _mark(report, _duplicate_ids(path, id_hashes, fold_hashes, id_lines, cfg.max_line_bytes))
    report.valid = report.lines - report.invalid


def _mark(report: ValidationReport, problems: list[Problem]) -> list[Problem]:
    report.invalid_lines.update(p.line for p in problems if not p.warning)
    report.warnings += sum(p.warning for p in problems)
    return problems


def _check_chunk(pool, pending: list[tuple[int, Utterance]], cfg: ValidationConfig) -> list[Problem]:
    if not pending:
        return []
    results = pool.map(lambda item: check_audio_file(item[1], cfg), pending)
    return [Problem(lineno, r) for (lineno, _), reasons in zip(pending, results, strict=True) for r in reasons]


def _duplicate_ids(path, id_hashes: array, fold_hashes: array, id_lines: array, max_bytes: int) -> list[Problem]:
    """Lines whose id repeats an earlier line's (an error), or differs from it only in case (a
    warning: on a case-insensitive file system, files named after the two would collide)."""
    if len(id_hashes) < 2:
        return []
    lines_np = np.frombuffer(id_lines, dtype=np.uint64 if id_lines.itemsize == 8 else np.uint32)
    candidates: set[int] = set()
    for hashes in (id_hashes, fold_hashes):  # case-folded equal includes equal
        h = np.frombuffer(hashes, dtype=np.int64)
        order = np.argsort(h, kind="stable")
        same = h[order][1:] == h[order][:-1]
        candidates |= set(lines_np[order[1:][same]].tolist()) | set(lines_np[order[:-1][same]].tolist())
    if not candidates:
        return []
    # Re-read only the candidate lines to compare the real ids (a hash match may be a collision).
    first_seen: dict[str, int] = {}
    first_folded: dict[str, tuple[str, int]] = {}
    problems = []
    for lineno, line in iter_lines(path, max_bytes):
        if lineno not in candidates:
            continue
        uid = parse_line(line).id
        if uid in first_seen:
            problems.append(Problem(lineno, f"duplicate id {uid!r} (first on line {first_seen[uid]})"))
            continue
        first_seen[uid] = lineno
        other = first_folded.setdefault(uid.casefold(), (uid, lineno))
        if other[0] != uid:
            problems.append(Problem(lineno, f"id {uid!r} differs only in case from {other[0]!r} (line {other[1]})",
                                    warning=True))
    return problems
