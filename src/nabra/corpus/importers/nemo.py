"""A NeMo ASR manifest (JSON lines: ``audio_filepath``, ``duration``, ``text``; optional ``offset``,
``id``, ``lang``) -> utterances.

The format of NeMo's ASR datasets and of the Open Universal Arabic ASR Leaderboard's test sets
(``datasets/{sada_test,commonvoice_test,masc_test_clean,masc_test_noisy,mgb2_test,casablanca_test}.json``
in its repository: ``audio_filepath`` holds a ``{data_folder}`` placeholder for where the user keeps
the WAVs, ``id`` is missing in Casablanca's). ``data_folder`` fills the placeholder as the
leaderboard's own code does (``audio_filepath.format(data_folder=...)``, then opened as it is), so a
relative folder is relative to the working directory; other relative paths are relative to the
manifest's folder, as NeMo resolves them. Other keys become extra fields.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from nabra.corpus.importers.common import Row, SkipReport, require_file
from nabra.corpus.importers.folder import file_id
from nabra.corpus.manifest import Utterance
from nabra.errors import NabraError

LAYOUT = """\
  SRC.json(l)              one JSON object a line: audio_filepath, duration, text (+ offset, id, lang)
  {data_folder}/...        audio paths may start with the placeholder: --data-folder DIR fills it"""

PLACEHOLDER = "{data_folder}"
_KNOWN = {"audio_filepath", "duration", "text", "offset", "id", "lang", "pred_text"}


def read(src: str | os.PathLike, report: SkipReport, *, data_folder: str | os.PathLike | None = None,
         split: str | None = None, language: str = "ar", source: str | None = None) -> Iterator[Row]:
    """One row per line of the manifest ``src``."""
    path = require_file(Path(src), LAYOUT)
    source = source or path.stem
    filled = 0
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            report.seen += 1
            where = f"{path.name}:{lineno}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                report.skip(where, "not a JSON object", e.msg)
                continue
            if not isinstance(record, dict) or not isinstance(record.get("audio_filepath"), str):
                report.skip(where, "no audio_filepath")
                continue
            text = record.get("text")
            if not isinstance(text, str) or not text.strip():
                report.skip(where, "empty transcript")
                continue
            audio = record["audio_filepath"]
            if PLACEHOLDER in audio:
                if data_folder is None:
                    raise NabraError(f"{where}: audio_filepath holds {PLACEHOLDER} ({audio}); give --data-folder, "
                                     "the folder the leaderboard's README tells you to fill it with")
                audio_path = Path(os.path.abspath(audio.replace(PLACEHOLDER, str(data_folder))))
                filled += 1
            else:
                audio_path = Path(audio) if os.path.isabs(audio) else path.parent / audio
            if not audio_path.is_file():
                report.skip(where, "audio file not found", str(audio_path))
                continue
            try:
                duration = float(record["duration"]) if record.get("duration") is not None else None
                offset = float(record.get("offset") or 0.0)
            except (TypeError, ValueError):
                report.skip(where, "duration or offset is not a number", f"{record.get('duration')!r}")
                continue
            uid = str(record.get("id") or file_id(audio_path.name) + (f"-{offset:.2f}" if offset else ""))
            extra = {k: v for k, v in record.items() if k not in _KNOWN and isinstance(v, str | int | float)}
            yield Row(where, Utterance(id=uid, audio=str(audio_path), offset=offset, duration=duration,
                                       language=record.get("lang") or language, transcript=text.strip(),
                                       source=source, split=split, extra=extra))
    if filled and not os.path.isabs(data_folder):
        report.notes.append(f"{PLACEHOLDER} = {data_folder}: relative to the working directory ({os.getcwd()}), "
                            "as the leaderboard's code resolves it")
