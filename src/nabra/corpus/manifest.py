"""The utterance manifest: one JSON object per line, one utterance per line.

Every annotation is optional except ``id``; the tasks an utterance serves follow from what it has
(``transcript`` -> ASR, ``summary`` -> SSUM, ``transcript`` + ``summary`` -> TSUM, ``dialect`` -> DID,
``emotion`` -> SER). Audio paths are stored as written and resolved against the manifest's folder.
Reading streams line by line: nothing here holds a whole manifest in memory.
"""

from __future__ import annotations

import codecs
import gzip
import io
import itertools
import json
import math
import os
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from nabra.errors import NabraError
from nabra.files import atomic_path
from nabra.text.arabic import is_blank

TASKS = ("asr", "ssum", "tsum", "did", "ser")
SPLITS = ("train", "dev", "test")


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
        d = {name: getattr(self, name) for name in FIELD_NAMES if getattr(self, name) is not None}
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
FIELD_NAMES = tuple(_FIELD_TYPES)
"""The manifest's own fields; any other key is kept as an extra field."""
_TYPE_NAMES = {_STR: "a string", _NUM: "a number"}


class ManifestLineError(ValueError):
    """A manifest line that is not a valid utterance record (the reason is the message)."""


def parse_record(obj: object, *, check_strings: bool = True) -> Utterance:
    """Turn one decoded JSON value into an :class:`Utterance`, checking field types and values
    (``check_strings=False``: the caller knows no string holds a surrogate or a NUL)."""
    if not isinstance(obj, dict):
        raise ManifestLineError(f"expected a JSON object, got {type(obj).__name__}")
    if "id" not in obj or obj["id"] is None:
        raise ManifestLineError("missing id")
    if check_strings:
        _check_strings(obj)
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


_SURROGATE = re.compile("[\ud800-\udfff]")
_ID_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _check_strings(obj: dict) -> None:
    """Every string of the record (keys and values, nested ones too) must be writable as UTF-8
    and free of NUL: a lone surrogate or a NUL passes ``json.loads`` and breaks a tokenizer, a
    writer or a C library later."""
    stack: list[tuple[str, object]] = [(k, v) for k, v in obj.items()]
    for key in obj:
        _check_string(key, "a field name")
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            _check_string(value, f"field {where!r}")
        elif isinstance(value, dict):
            for k, v in value.items():
                _check_string(k, f"a key inside {where!r}")
                stack.append((where, v))
        elif isinstance(value, list):
            stack.extend((where, v) for v in value)


def _check_string(text: str, what: str) -> None:
    bad = _SURROGATE.search(text)
    if bad and _ESCAPED_BYTE.match(bad.group()):  # how a reader keeps a byte that is not UTF-8
        raise ManifestLineError(f"not valid UTF-8: byte 0x{ord(bad.group()) - 0xDC00:02X} in {what}")
    if bad:
        raise ManifestLineError(f"lone surrogate \\u{ord(bad.group()):04x} in {what}: not valid Unicode "
                                "(half of an escaped emoji or a string cut in the middle?)")
    if "\0" in text:
        raise ManifestLineError(f"NUL character (\\u0000) in {what}")


def _check_values(rec: dict) -> None:
    if not rec["id"].strip():
        raise ManifestLineError("empty id")
    if _ID_CONTROL.search(rec["id"]):
        raise ManifestLineError(f"id {rec['id']!r} contains a control character")
    for key in ("offset", "duration"):
        value = rec.get(key)
        if value is not None and (not math.isfinite(value) or value < 0 or (key == "duration" and value == 0)):
            raise ManifestLineError(f"field {key!r} must be a finite {'positive' if key == 'duration' else 'non-negative'} number, got {value}")
    for key in ("transcript", "summary"):
        if key not in rec:
            continue
        if not rec[key].strip():
            raise ManifestLineError(f"empty {key}")
        if is_blank(rec[key]):
            raise ManifestLineError(f"{key} is empty once normalized (only diacritics, tatweel, punctuation): "
                                    f"{rec[key][:40]!r}")
    if "split" in rec and rec["split"] not in SPLITS:
        raise ManifestLineError(f"split {rec['split']!r} is not one of {', '.join(SPLITS)}")
    if "audio" in rec and not rec["audio"].strip():
        raise ManifestLineError("empty audio path")


class OverlongLine(str):
    """What :func:`iter_lines` yields for a line over its size limit: the line's first characters
    (for a quarantine entry), its size, and the limit; :func:`parse_line` rejects it."""

    size: int
    limit: int

    def __new__(cls, head: str, size: int, limit: int):
        line = super().__new__(cls, head)
        line.size, line.limit = size, limit
        return line


class UndecodableLine(str):
    """What :func:`iter_lines` yields for a line that is not UTF-8: its text with the bad bytes kept
    as surrogate escapes (U+DC80-U+DCFF); :func:`decode_json` names the first with its column."""


MAX_LINE_BYTES = 1 << 20
"""Longest manifest line read (1 MiB: the transcript of ten hours of speech); ``data.max_line_bytes``
and ``--max-line-bytes`` change it. A longer line is reported, never held in memory."""

_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")  # a byte that is not UTF-8, as surrogateescape keeps it
_INT_DIGITS = 20  # 2**64 has 20 digits: JSON integers beyond 64 bits do not round-trip through other tools


def _json_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    value = int(text) if digits <= _INT_DIGITS else None  # never int() of thousands of digits
    if value is None or not -(1 << 63) <= value < (1 << 64):
        raise ManifestLineError(f"integer of {digits:,} digits is out of range (64 bits at most)")
    return value


def _json_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ManifestLineError(f"number {text[:24]}{'...' if len(text) > 24 else ''} is out of the range of a 64-bit float")
    return value


def _json_constant(name: str):
    raise ManifestLineError(f"{name} is not valid JSON (RFC 8259 has no NaN or Infinity)")


def _json_object(pairs: list[tuple[str, object]]) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ManifestLineError(f"duplicate key {dup!r} in one object (which value is meant?)")
    return obj


def decode_json(line: str) -> object:
    """The JSON value of one line from :func:`iter_lines`; every way it can fail is a
    :class:`ManifestLineError` with the reason (never a ``UnicodeDecodeError``, ``RecursionError``
    or ``OverflowError``)."""
    if isinstance(line, OverlongLine):
        raise ManifestLineError(f"line is {line.size:,} bytes, over the limit of {line.limit:,} "
                                "(raise it with --max-line-bytes / data.max_line_bytes)")
    if isinstance(line, UndecodableLine):
        bad = _ESCAPED_BYTE.search(line)
        raise ManifestLineError(f"not valid UTF-8: byte 0x{ord(bad.group()) - 0xDC00:02X} at column {bad.start() + 1}")
    try:
        return _DECODER.decode(line)
    except json.JSONDecodeError as e:
        cr = line.find("\r")
        hint = f"; a lone CR at column {cr + 1}: lines end with LF" if cr >= 0 and e.msg == "Extra data" else ""
        raise ManifestLineError(f"bad JSON: {e.msg} (column {e.colno}){hint}") from None
    except RecursionError:
        raise ManifestLineError("JSON nested too deeply") from None


_DECODER = json.JSONDecoder(object_pairs_hook=_json_object, parse_int=_json_int, parse_float=_json_float,
                            parse_constant=_json_constant)
_RISKY_ESCAPE = re.compile(r"\\u(?:[dD][89a-fA-F]|0000)")
"""The only ways a decoded line holds a surrogate or a NUL: strict JSON has no raw control
characters in strings, and a byte that is not UTF-8 is refused before decoding."""


def parse_line(line: str) -> Utterance:
    """Parse one manifest line; raises :class:`ManifestLineError` with the reason."""
    return parse_record(decode_json(line), check_strings=_RISKY_ESCAPE.search(line) is not None)


def open_text(path: str | os.PathLike, mode: str = "r"):
    """Open a manifest for text I/O; ``.gz`` files are (de)compressed transparently."""
    path = Path(path)
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, mode.replace("t", "") + "b"), encoding="utf-8")
    return open(path, mode, encoding="utf-8")


def open_binary(path: str | os.PathLike):
    """Open a (possibly ``.gz``) file for reading bytes."""
    path = Path(path)
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def iter_lines(path: str | os.PathLike, max_bytes: int | None = MAX_LINE_BYTES) -> Iterator[tuple[int, str]]:
    """(1-based line number, text without its line end) for every non-blank line of a text file.

    Lines end at LF only, as ``wc -l``, ``grep -n`` and editors count them (a CR before the LF is
    dropped; a lone CR is not a line end, so the numbers match what an editor shows). Bytes that are
    not UTF-8 are kept as surrogate escapes, which :func:`decode_json` reports with their column; a
    UTF-8 byte-order mark is dropped. A line longer than ``max_bytes`` comes as an
    :class:`OverlongLine` and is never held in memory whole.
    """
    path = Path(path)
    if not path.is_file():
        raise NabraError(f"{path}: manifest not found")
    limit = max_bytes + 2 if max_bytes is not None else -1  # room for the CRLF
    lineno = 0
    try:
        with open_binary(path) as f:
            for lineno, line in _lines(f, limit, max_bytes):
                yield lineno, line
    except (EOFError, OSError, zlib.error) as e:  # a .gz cut short or not gzip at all
        if isinstance(e, OSError) and not isinstance(e, gzip.BadGzipFile) and path.suffix != ".gz":
            raise
        raise NabraError(f"{path}:{lineno + 1}: the compressed file is truncated or corrupt ({e}); "
                         f"{lineno:,} line(s) were read before it") from None


def _lines(f, limit: int, max_bytes: int | None) -> Iterator[tuple[int, str]]:
    for lineno in itertools.count(1):
        raw = f.readline(limit)
        if not raw:
            return
        head, size = raw, len(raw)
        if max_bytes is not None and size == limit and not raw.endswith(b"\n"):
            while rest := f.readline(1 << 20):  # the rest of the line, counted, not kept
                size, raw = size + len(rest), rest
                if rest.endswith(b"\n"):
                    break
        stripped = raw.removesuffix(b"\n").removesuffix(b"\r")
        size, raw = size - (len(raw) - len(stripped)), stripped
        if max_bytes is not None and size > max_bytes:
            yield lineno, OverlongLine(head[:200].decode("utf-8", "replace") + "...", size, max_bytes)
            continue
        if lineno == 1:
            raw = raw.removeprefix(codecs.BOM_UTF8)
        if raw.strip():
            try:
                yield lineno, raw.decode("utf-8")
            except UnicodeDecodeError:
                yield lineno, UndecodableLine(raw.decode("utf-8", "surrogateescape"))


def display_line(line: str) -> str:
    """``line`` as text that can be written as UTF-8 (undecodable bytes become U+FFFD)."""
    try:
        return line.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a lone surrogate from a JSON escape: shown as its escape
        return line.encode("utf-8", "backslashreplace").decode("utf-8")


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
