"""A CSV or TSV table of audio paths and labels -> utterances (``nabra data import csv``).

For corpora whose labels sit in a table — ANAD (``ANAD.csv``: ``name`` and ``Emotion ``, the header
with a trailing space), SADA (``train.csv``: ``FileName``, ``SegmentStart``, ``SegmentEnd``,
``ProcessedText``, ``SpeakerDialect``, ``SpeakerGender``, ...), a spreadsheet of call outcomes. One row
per table line; ``columns`` maps manifest fields to column names (``audio=name,emotion=Emotion``);
headers and cells are compared with surrounding spaces stripped. Any other column named in
``keep`` becomes an extra field (``gender=SpeakerGender``: a declared task can then use it). Audio
paths are relative to ``audio_dir`` (default: the table's folder); ``audio_suffix`` is appended to
names without one. ``start``/``end`` columns (seconds) make the row a segment of its recording.
Delimiter: ``.tsv`` files tab, others sniffed from the header (comma, semicolon or tab).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from nabra.corpus.importers.common import Row, SkipReport, require_file
from nabra.corpus.importers.folder import file_id, map_label
from nabra.corpus.labels import DIALECTS, EMOTIONS, LabelSet
from nabra.corpus.manifest import SPLITS, Utterance
from nabra.errors import NabraError

LAYOUT = """\
  SRC.csv | SRC.tsv        a header line, then one row per clip: an audio path column, label /
                           transcript columns (--columns field=column,...), any others (--keep)
  AUDIO_DIR/<path>         the audio (--audio-dir; default the table's folder)"""

FIELDS = ("id", "audio", "transcript", "summary", "dialect", "emotion", "speaker", "language", "split",
          "start", "end")


def parse_pairs(spec: str | None, what: str, allowed: tuple[str, ...] | None = None) -> dict[str, str]:
    """``a=b,c=d`` -> {"a": "b", "c": "d"} (``what`` names the option in errors)."""
    pairs = {}
    for part in filter(None, (p.strip() for p in (spec or "").split(","))):
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise NabraError(f"{what} {spec!r}: expected name=column pairs")
        if allowed is not None and key not in allowed:
            raise NabraError(f"{what}: unknown field {key!r} (fields: {', '.join(allowed)})")
        pairs[key] = value
    return pairs


def read(src: str | os.PathLike, report: SkipReport, *, columns: Mapping[str, str],
         keep: Mapping[str, str] | None = None, audio_dir: str | os.PathLike | None = None,
         audio_suffix: str | None = None, label_map: Mapping[str, str | None] | None = None,
         dialects: LabelSet = DIALECTS, emotions: LabelSet = EMOTIONS, split: str | None = None,
         language: str = "ar", source: str | None = None) -> Iterator[Row]:
    """One row per line of the table ``src``; ``columns`` must name the ``audio`` column."""
    path = require_file(Path(src), LAYOUT)
    if "audio" not in columns:
        raise NabraError(f"{path}: --columns must name the audio column (audio=COLUMN); expected layout:\n{LAYOUT}")
    base = Path(audio_dir) if audio_dir is not None else path.parent
    labels = {"dialect": dialects, "emotion": emotions}
    mapping = {k.casefold(): v for k, v in (label_map or {}).items()}
    source = source or path.stem
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
        reader = csv.reader(f, delimiter=_delimiter(path, f))
        header = [h.strip() for h in next(reader, [])]
        index = {h: i for i, h in enumerate(header)}
        wanted = {**columns, **(keep or {})}
        missing = sorted({c for c in wanted.values() if c not in index})
        if missing:
            raise NabraError(f"{path}: no column {', '.join(repr(c) for c in missing)} "
                             f"(the header has {', '.join(repr(h) for h in header)})")
        for lineno, cells in enumerate(reader, 2):
            if not any(c.strip() for c in cells):
                continue
            report.seen += 1
            where = f"{path.name}:{lineno}"
            if len(cells) < len(header):
                report.skip(where, "malformed row", f"{len(cells)} fields, the header has {len(header)}")
                continue
            row = {field: cells[index[column]].strip() for field, column in columns.items()}
            row = {k: v for k, v in row.items() if v}
            problem = _problem(row, labels, mapping, split)
            if problem:
                report.skip(where, *problem)
                continue
            audio = row.pop("audio")
            if audio_suffix and not os.path.splitext(audio)[1]:
                audio += audio_suffix
            audio_path = Path(audio) if os.path.isabs(audio) else base / audio
            if not audio_path.is_file():
                report.skip(where, "audio file not found", str(audio_path))
                continue
            start, end = row.pop("start", None), row.pop("end", None)
            offset = float(start) if start is not None else 0.0
            duration = round(float(end) - offset, 3) if end is not None else None
            uid = row.pop("id", None) or file_id(audio) + (f"-{offset:.2f}" if start is not None else "")
            extra = {name: cells[index[c]].strip() for name, c in (keep or {}).items() if cells[index[c]].strip()}
            yield Row(where, Utterance(id=uid, audio=str(audio_path), offset=offset, duration=duration,
                                       language=row.pop("language", language), source=source,
                                       split=row.pop("split", split), extra=extra, **row))


def _problem(row: dict, labels: dict[str, LabelSet], mapping: Mapping[str, str | None],
             split: str | None) -> tuple[str, str] | None:
    """``(reason, detail)`` of a row that cannot become an utterance; labels are mapped in place."""
    if "audio" not in row:
        return "no audio path", ""
    for field, label_set in labels.items():
        if field in row:
            name = map_label(row[field], mapping, label_set)
            if name is None:
                return f"unknown {field} label", row[field]
            row[field] = name
    for key in ("start", "end"):
        if key in row:
            try:
                float(row[key])
            except ValueError:
                return f"{key} is not a number", row[key]
    if "end" in row and float(row["end"]) <= float(row.get("start", 0.0)):
        return "segment ends before it starts", f"{row.get('start', 0)}-{row['end']}"
    if "split" in row:
        row["split"] = {"validation": "dev", "valid": "dev"}.get(row["split"].lower(), row["split"].lower())
        if row["split"] not in SPLITS:
            return "unknown split", row["split"]
    return None


def _delimiter(path: Path, f) -> str:
    if path.suffix.lower() == ".tsv":
        return "\t"
    first = f.readline()
    f.seek(0)
    counts = {d: first.count(d) for d in (",", ";", "\t")}
    return max(counts, key=counts.get) if any(counts.values()) else ","
