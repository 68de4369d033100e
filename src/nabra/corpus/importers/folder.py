"""A folder of labelled audio -> emotion (or dialect) utterances, one per audio file.

The label of a file is the name of the folder ``label_depth`` levels under the root
(``ROOT/<LABEL>/**/*.wav`` by default), or what ``label_regex`` captures from the file's path
relative to the root (for corpora that encode it in the file name). ``label_map`` renames labels
first (``ang`` -> ``angry``); the result must then be a name or alias of the label set, or the
file is skipped as an unknown label.

Layouts of Arabic SER corpora, as documented by their authors (check your copy):
BAVED names files ``<speaker>-<gender>-<age>-<word>-<level>-<record>.wav`` with level 0 (low),
1 (neutral), 2 (high emotion); EAED keeps ``<series>/<actor>/<actor>_<emotion>_<n>.wav``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

from nabra.corpus.importers.common import Row, SkipReport, audio_files, require_dir
from nabra.corpus.labels import LabelSet
from nabra.corpus.manifest import Utterance
from nabra.errors import NabraError

LAYOUT = """\
  SRC/<LABEL>/**/*.{wav,flac,mp3,ogg,opus}     label = folder name (--label-depth picks the level)
  or labels in the file names: --label-regex '(?P<label>...)' on the path relative to SRC"""


def read(src: str | os.PathLike, report: SkipReport, *, field: str, labels: LabelSet,
         label_map: Mapping[str, str | None] | None = None, label_depth: int = 1,
         label_regex: str | None = None, speaker_regex: str | None = None, split: str | None = None,
         language: str = "ar", source: str | None = None) -> Iterator[Row]:
    """One row per audio file under ``src``; ``field`` is ``emotion`` or ``dialect``."""
    if field not in ("emotion", "dialect"):
        raise NabraError(f"--field must be emotion or dialect, got {field!r}")
    root = require_dir(Path(src), LAYOUT)
    label_re, speaker_re = _compile(label_regex, "label"), _compile(speaker_regex, "speaker")
    mapping = {k.casefold(): v for k, v in (label_map or {}).items()}
    source = source or root.name
    unreadable: list[tuple[str, str]] = []
    yield from _rows(audio_files(root, unreadable), root, report, label_re=label_re, speaker_re=speaker_re,
                     mapping=mapping, labels=labels, field=field, label_depth=label_depth, split=split,
                     language=language, source=source)
    for where, reason in unreadable:  # its files cannot be counted: the folder counts as one row
        report.seen += 1
        report.skip(where, "folder cannot be listed", reason)


def _rows(paths, root: Path, report: SkipReport, *, label_re, speaker_re, mapping, labels, field, label_depth,
          split, language, source) -> Iterator[Row]:
    for path in paths:
        report.seen += 1
        rel = path.relative_to(root).as_posix()
        raw = _match(label_re, rel, "label") if label_re else _folder_label(rel, label_depth)
        if raw is None:
            reason = "path does not match --label-regex" if label_re else f"not inside a label folder (depth {label_depth})"
            report.skip(rel, reason)
            continue
        name = map_label(raw, mapping, labels)
        if name is None:
            report.skip(rel, f"unknown {field} label", raw)
            continue
        utt = Utterance(id=file_id(rel), audio=str(path), language=language,
                        speaker=_match(speaker_re, rel, "speaker") if speaker_re else None,
                        source=source, split=split)
        setattr(utt, field, name)
        yield Row(rel, utt)


def map_label(raw: str, mapping: Mapping[str, str | None], labels: LabelSet) -> str | None:
    """Rename ``raw`` through ``mapping`` (keys case-folded; a None value drops it), then find it
    in ``labels``; None when it is not a known label."""
    key = raw.strip().casefold()
    target = mapping.get(key, raw)
    return labels.lookup(target) if target is not None else None


def file_id(rel: str) -> str:
    """Utterance id from a path relative to the corpus root: ``ang/f1/01.wav`` -> ``ang-f1-01``."""
    return os.path.splitext(rel)[0].replace("/", "-")


def parse_label_map(spec: str | None) -> dict[str, str | None]:
    """``a=b,c=d`` inline, or a JSON file holding an object {"a": "b", ...}."""
    if not spec:
        return {}
    if os.path.isfile(spec):
        try:
            with open(spec, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise NabraError(f"{spec}: not a JSON label map ({e})") from None
        if not isinstance(data, dict):
            raise NabraError(f"{spec}: a label map must be a JSON object of name -> label")
        return {str(k): (None if v is None else str(v)) for k, v in data.items()}
    pairs = [p.split("=", 1) for p in spec.split(",") if p.strip()]
    if any(len(p) != 2 or not p[0].strip() for p in pairs):
        raise NabraError(f"label map {spec!r}: expected a JSON file or 'name=label,name=label'")
    return {k.strip(): v.strip() for k, v in pairs}


def _folder_label(rel: str, depth: int) -> str | None:
    folders = rel.split("/")[:-1]
    return folders[depth - 1] if 0 < depth <= len(folders) else None


def _compile(pattern: str | None, group: str) -> re.Pattern | None:
    if pattern is None:
        return None
    try:
        compiled = re.compile(pattern)
    except re.error as e:
        raise NabraError(f"bad --{group}-regex {pattern!r}: {e}") from None
    if group not in compiled.groupindex and compiled.groups != 1:
        raise NabraError(f"--{group}-regex {pattern!r} needs a group named {group!r} (or exactly one group)")
    return compiled


def _match(pattern: re.Pattern, rel: str, group: str) -> str | None:
    m = pattern.search(rel)
    return (m.group(group if group in pattern.groupindex else 1) or None) if m else None
