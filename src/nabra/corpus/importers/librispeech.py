"""LibriSpeech (OpenSLR 12) -> English ASR utterances, with each reader's sex.

Layout, from the corpus's ``README.TXT`` and lhotse's recipe (``lhotse/recipes/librispeech.py``):
every subset tarball unpacks to ``LibriSpeech/``, which holds ``SPEAKERS.TXT`` (``;`` comment lines,
then ``ID | SEX | SUBSET | MINUTES | NAME``, padded with spaces; the README calls it ``READERS.TXT``,
the file that ships is ``SPEAKERS.TXT``) and one folder per subset, ``<subset>/<speaker>/<chapter>/``
with ``<speaker>-<chapter>.trans.txt`` (one ``<speaker>-<chapter>-<NNNN> TRANSCRIPT`` line per
utterance, upper case) beside ``<speaker>-<chapter>-<NNNN>.flac`` (16 kHz). Subsets become splits by
their prefix (``train-*``, ``dev-*``, ``test-*``); transcripts are kept as the corpus writes them
(WER normalises case).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from nabra.corpus.importers.common import Row, SkipReport, require_dir
from nabra.corpus.manifest import Utterance
from nabra.errors import NabraError

LAYOUT = """\
  SRC/                                  the LibriSpeech folder (or one subset folder in it)
    SPEAKERS.TXT                        ;-comments, then ID | SEX | SUBSET | MINUTES | NAME
    <subset>/<speaker>/<chapter>/       subsets: train-clean-100, train-clean-360, train-other-500,
                                        dev-clean, dev-other, test-clean, test-other
      <speaker>-<chapter>.trans.txt     <speaker>-<chapter>-<NNNN> TRANSCRIPT, a line each
      <speaker>-<chapter>-<NNNN>.flac"""

SEX = {"F": "female", "M": "male"}
_UTT_ID = re.compile(r"(\d+)-(\d+)-(\d+)")


def read(src: str | os.PathLike, report: SkipReport, *, subsets: Sequence[str] | None = None,
         language: str = "en", source: str = "librispeech") -> Iterator[Row]:
    """One row per transcript line of the subsets under ``src`` (all it holds by default; a subset
    named in ``subsets`` must be there), in subset, speaker, chapter order."""
    root = require_dir(Path(src), LAYOUT)
    if _is_subset(root):
        folders = [root]
        root = root.parent
    else:
        folders = [p for p in sorted(root.iterdir()) if p.is_dir() and _is_subset(p)]
        if subsets is not None:
            missing = [s for s in subsets if not (root / s).is_dir()]
            if missing:
                raise NabraError(f"{root}: no subset folder {', '.join(missing)}; it has "
                                 f"{', '.join(p.name for p in folders) or 'none'}")
            folders = [root / s for s in subsets]
    if not folders:
        raise NabraError(f"{root}: no LibriSpeech subset folder (<subset>/<speaker>/<chapter>/*.trans.txt); "
                         f"expected layout:\n{LAYOUT}")
    sexes = read_speakers(root, report)
    for folder in folders:
        split = _split_of(folder.name)
        if split is None:
            report.notes.append(f"{folder.name}: not a train-/dev-/test- subset name; its utterances have no split")
        for trans in sorted(folder.glob("*/*/*.trans.txt")):
            yield from _read_transcripts(trans, folder, report, sexes, split, language, source)


def read_speakers(root: Path, report: SkipReport) -> dict[str, str]:
    """Reader id -> ``female``/``male`` from ``SPEAKERS.TXT`` (or ``READERS.TXT``); empty, with a note,
    when neither is there (a subset tarball unpacked alone ships it; a copied subset folder may not)."""
    path = next((root / n for n in ("SPEAKERS.TXT", "READERS.TXT") if (root / n).is_file()), None)
    if path is None:
        report.notes.append(f"{root}: no SPEAKERS.TXT: utterances have no gender")
        return {}
    sexes: dict[str, str] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip() or line.lstrip().startswith(";"):  # the first comment holds a '|' itself
                continue
            fields = [x.strip() for x in line.split("|")]
            if len(fields) < 2 or not fields[0].isdigit() or fields[1] not in SEX:
                report.notes.append(f"{path.name}:{lineno}: not an 'ID | SEX | ...' line; ignored")
                continue
            sexes[fields[0]] = SEX[fields[1]]
    return sexes


def _read_transcripts(trans: Path, folder: Path, report: SkipReport, sexes: dict[str, str], split: str | None,
                      language: str, source: str) -> Iterator[Row]:
    speaker, chapter = trans.parent.parent.name, trans.parent.name
    flacs = {p.name for p in trans.parent.iterdir()}
    rel = trans.relative_to(folder.parent).as_posix()
    with open(trans, encoding="utf-8", errors="surrogateescape") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            report.seen += 1
            where = f"{rel}:{lineno}"
            parts = line.strip().split(maxsplit=1)
            m = _UTT_ID.fullmatch(parts[0])
            if m is None or (m.group(1), m.group(2)) != (speaker, chapter):
                report.skip(where, "utterance id not of this chapter", parts[0])
                continue
            if len(parts) < 2:
                report.skip(where, "empty transcript", parts[0])
                continue
            if f"{parts[0]}.flac" not in flacs:
                report.skip(where, "audio file not found", f"{parts[0]}.flac")
                continue
            extra = {"chapter": chapter, "subset": folder.name}
            if speaker in sexes:
                extra["gender"] = sexes[speaker]
            yield Row(where, Utterance(id=parts[0], audio=str(trans.parent / f"{parts[0]}.flac"), language=language,
                                       transcript=parts[1], speaker=speaker, source=source, split=split, extra=extra))


def _is_subset(folder: Path) -> bool:
    return any(folder.glob("*/*/*.trans.txt"))


def _split_of(name: str) -> str | None:
    return next((s for s in ("train", "dev", "test") if name.startswith(f"{s}-")), None)
