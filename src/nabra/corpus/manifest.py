"""The utterance manifest: one JSON object per line, one utterance per line.

Every annotation is optional except ``id``; the tasks an utterance serves follow from what it has
(``transcript`` -> ASR, ``summary`` -> SSUM, ``transcript`` + ``summary`` -> TSUM, ``dialect`` -> DID,
``emotion`` -> SER). Audio paths are stored as written and resolved against the manifest's folder.
Reading streams line by line: nothing here holds a whole manifest in memory.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from nabra.errors import NabraError
from nabra.files import atomic_path

TASKS = ("asr", "ssum", "tsum", "did", "ser")
SPLITS = ("train", "dev", "test")
AUDIO_TASKS = frozenset({"asr", "ssum", "did", "ser"})


@dataclass(slots=True)
class Utterance:
    """One manifest line."""

    id: str
    """Unique id of the utterance within the manifest."""
    audio: str | None = None
    """Audio file path, relative to the manifest's folder or absolute."""
    offset: float = 0.0
    """Start of the utterance inside the audio file, in seconds (segments of long recordings)."""
    duration: float | None = None
    """Length in seconds (of the segment when ``offset`` is set)."""
    language: str | None = None
    """Language code of the speech, e.g. ``ar``."""
    transcript: str | None = None
    """Verbatim transcript (ASR target; TSUM input)."""
    summary: str | None = None
    """Summary of the content (SSUM and TSUM target)."""
    dialect: str | None = None
    """Dialect label (DID target), one of the configured dialect set."""
    emotion: str | None = None
    """Emotion label (SER target), one of the configured emotion set."""
    speaker: str | None = None
    """Speaker id (used for speaker-disjoint splits)."""
    source: str | None = None
    """Corpus the utterance comes from."""
    split: str | None = None
    """``train``, ``dev`` or ``test``."""
    extra: dict = field(default_factory=dict)
    """Fields Nabra does not know, kept as they are so nothing is lost on a round trip."""

    def tasks(self) -> tuple[str, ...]:
        """The tasks this utterance can serve, in canonical order."""
        has_audio = self.audio is not None
        out = []
        if self.transcript is not None and has_audio:
            out.append("asr")
        if self.summary is not None and has_audio:
            out.append("ssum")
        if self.summary is not None and self.transcript is not None:
            out.append("tsum")
        if self.dialect is not None and has_audio:
            out.append("did")
        if self.emotion is not None and has_audio:
            out.append("ser")
        return tuple(out)

    def to_dict(self) -> dict:
        """The JSON object for this utterance (``None`` fields and a zero offset omitted)."""
        d = {name: getattr(self, name) for name in _FIELD_NAMES if getattr(self, name) is not None}
        if not self.offset:
            d.pop("offset", None)
        d.update(self.extra)
        return d


# name -> accepted JSON types; checked in this order. bool is excluded from numbers explicitly.
_STR = (str,)
_NUM = (int, float)
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "id": _STR, "audio": _STR, "offset": _NUM, "duration": _NUM, "language": _STR,
    "transcript": _STR, "summary": _STR, "dialect": _STR, "emotion": _STR,
    "speaker": _STR, "source": _STR, "split": _STR,
}  # fmt: skip
_FIELD_NAMES = tuple(_FIELD_TYPES)
_TYPE_NAMES = {_STR: "a string", _NUM: "a number"}


class ManifestLineError(ValueError):
    """A manifest line that is not a valid utterance record (the reason is the message)."""


def parse_record(obj: object) -> Utterance:
    """Turn one decoded JSON value into an :class:`Utterance`, checking field types and values."""
    if not isinstance(obj, dict):
        raise ManifestLineError(f"expected a JSON object, got {type(obj).__name__}")
    if "id" not in obj or obj["id"] is None:
        raise ManifestLineError("missing id")
    known, extra = {}, {}
    for key, value in obj.items():
        types = _FIELD_TYPES.get(key)
        if types is None:
            extra[key] = value
            continue
        if value is None:
            continue
        if not isinstance(value, types) or isinstance(value, bool):
            raise ManifestLineError(f"field {key!r} must be {_TYPE_NAMES[types]}, got {type(value).__name__}")
        known[key] = value
    _check_values(known)
    return Utterance(**known, extra=extra)


def _check_values(rec: dict) -> None:
    if not rec["id"].strip():
        raise ManifestLineError("empty id")
    for key in ("offset", "duration"):
        value = rec.get(key)
        if value is not None and (not math.isfinite(value) or value < 0 or (key == "duration" and value == 0)):
            raise ManifestLineError(f"field {key!r} must be a finite {'positive' if key == 'duration' else 'non-negative'} number, got {value}")
    for key in ("transcript", "summary"):
        if key in rec and not rec[key].strip():
            raise ManifestLineError(f"empty {key}")
    if "split" in rec and rec["split"] not in SPLITS:
        raise ManifestLineError(f"split {rec['split']!r} is not one of {', '.join(SPLITS)}")
    if "audio" in rec and not rec["audio"].strip():
        raise ManifestLineError("empty audio path")


def parse_line(line: str) -> Utterance:
    """Parse one manifest line; raises :class:`ManifestLineError` with the reason."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise ManifestLineError(f"bad JSON: {e.msg} (column {e.colno})") from None
    return parse_record(obj)


def open_text(path: str | os.PathLike, mode: str = "r"):
    """Open a manifest for text I/O; ``.gz`` files are (de)compressed transparently."""
    path = Path(path)
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, mode.replace("t", "") + "b"), encoding="utf-8")
    return open(path, mode, encoding="utf-8")


def iter_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """(1-based line number, text) for every non-blank line of the manifest."""
    path = Path(path)
    if not path.is_file():
        raise NabraError(f"{path}: manifest not found")
    with open_text(path) as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                yield lineno, line


def resolve_audio(utt: Utterance, root: Path) -> Utterance:
    """Make ``utt.audio`` absolute against ``root`` (the manifest's folder); returns ``utt``."""
    if utt.audio is not None and not os.path.isabs(utt.audio):
        utt.audio = os.path.normpath(os.path.join(root, utt.audio))
    return utt


def iter_manifest(path: str | os.PathLike, *, resolve: bool = True) -> Iterator[Utterance]:
    """Stream the utterances of a manifest; the first bad line raises a :class:`NabraError`
    naming ``FILE:LINE``. Run ``nabra data validate`` for the full list of problems."""
    root = Path(path).resolve().parent
    for lineno, line in iter_lines(path):
        try:
            utt = parse_line(line)
        except ManifestLineError as e:
            raise NabraError(f"{path}:{lineno}: {e} (run `nabra data validate {path}` for all problems)") from None
        yield resolve_audio(utt, root) if resolve else utt


def read_manifest(path: str | os.PathLike, *, resolve: bool = True) -> list[Utterance]:
    """All utterances of a (small enough) manifest as a list."""
    return list(iter_manifest(path, resolve=resolve))


def write_manifest(path: str | os.PathLike, utterances: Iterable[Utterance], *, relative: bool = True) -> int:
    """Write utterances as JSONL, atomically (a temporary file renamed into place).

    With ``relative=True`` audio paths under the manifest's folder are written relative to it, so the
    folder can be moved as a whole. Returns the number of lines written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    root = path.resolve().parent
    n = 0
    with atomic_path(path) as tmp, open_text(tmp, "w") as f:
        for utt in utterances:
            d = utt.to_dict()
            if relative and utt.audio is not None and os.path.isabs(utt.audio):
                rel = os.path.relpath(utt.audio, root)
                if not rel.startswith(".."):
                    d["audio"] = rel
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
            n += 1
    return n
