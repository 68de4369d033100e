"""Common Voice (Mozilla) release folder -> utterances, from the TSV metadata only.

Fast by design: the TSVs are streamed with the ``csv`` module, clip durations come from
``clip_durations.tsv`` (milliseconds) when the release has it, and the ``clips/`` folder is listed
once to find missing files. Audio headers are read only with ``probe_audio`` (durations the
release lacks) or the shared ``check_audio`` option.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from nabra.corpus.audio import probe_duration
from nabra.corpus.importers.common import Row, SkipReport, require_dir, require_file
from nabra.corpus.manifest import SPLITS, Utterance
from nabra.errors import AudioError, NabraError

LAYOUT = """\
  SRC/                      a Common Voice release, locale folder (e.g. cv-corpus-17.0-.../ar)
    train.tsv dev.tsv test.tsv validated.tsv other.tsv invalidated.tsv ...
                            columns: client_id, path, sentence, up_votes, down_votes, age,
                            gender, accent(s), locale, segment (+ sentence_id, sentence_domain,
                            variant in newer releases)
    clip_durations.tsv      optional: clip, duration[ms]
    clips/*.mp3"""

DEFAULT_TSVS = ("train", "dev", "test")
# Metadata worth keeping beside the manifest fields (empty values are dropped). Older releases
# call "accents" "accent"; both end up as "accents".
_EXTRA_COLUMNS = {"gender": "gender", "age": "age", "accents": "accents", "accent": "accents",
                  "variant": "variant", "sentence_domain": "sentence_domain"}


def read(src: str | os.PathLike, report: SkipReport, *, tsvs: Sequence[str] | None = None,
         probe_audio: bool = False, language: str = "ar", source: str = "commonvoice") -> Iterator[Row]:
    """Rows of the TSVs named in ``tsvs`` (``train`` -> ``train.tsv``), each required; by default
    those of train/dev/test that the release has (a release without ``dev.tsv`` imports its other
    splits, and the report notes the missing file). A TSV named after a split (train/dev/test) sets
    ``split``; others (validated, other, ...) leave it unset."""
    src = require_dir(Path(src), LAYOUT)
    clips_dir = require_dir(src / "clips", LAYOUT)
    if tsvs is None:
        tsvs = [name for name in DEFAULT_TSVS if (src / f"{name}.tsv").is_file()]
        report.notes += [f"{src / (name + '.tsv')} not found: no {name} split imported"
                         for name in DEFAULT_TSVS if name not in tsvs]
        if not tsvs:
            raise NabraError(f"{src}: none of {', '.join(n + '.tsv' for n in DEFAULT_TSVS)} found; expected "
                             f"layout:\n{LAYOUT}\n(or name the TSVs to import, e.g. --tsv validated)")
    paths = [require_file(src / f"{name}.tsv", LAYOUT) for name in tsvs]
    clips = {entry.name for entry in os.scandir(clips_dir)}
    durations = _clip_durations(src / "clip_durations.tsv")
    for name, path in zip(tsvs, paths, strict=True):
        split = name if name in SPLITS else None
        yield from _read_tsv(path, report, clips_dir, clips, durations, split, probe_audio, language, source)


def _read_tsv(path: Path, report: SkipReport, clips_dir: Path, clips: set[str], durations: dict[str, float],
              split: str | None, probe_audio: bool, language: str, source: str) -> Iterator[Row]:
    # utf-8-sig: a BOM (spreadsheet tools write one) must not become part of the first column's name.
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as f:  # bad bytes: a skip, not a crash
        # Sentences hold quotes: the releases are written without quoting (QUOTE_NONE).
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None:
            return
        cols = _columns(path, header)
        i_path, i_sentence, i_client, i_locale = cols["path"], cols["sentence"], cols.get("client_id"), cols.get("locale")
        extras = [(cols[c], key) for c, key in _EXTRA_COLUMNS.items() if c in cols]
        clips_prefix = str(clips_dir) + os.sep
        for lineno, fields in enumerate(reader, 2):
            report.seen += 1
            where = f"{path.name}:{lineno}"
            if len(fields) != len(header):  # a TAB in a sentence would shift every column after it
                report.skip(where, "malformed row", f"{len(fields)} fields, the header has {len(header)}")
                continue
            clip = fields[i_path]
            sentence = fields[i_sentence].strip()
            if not sentence:
                report.skip(where, "empty transcript", clip)
                continue
            if clip not in clips and clip + ".mp3" in clips:  # early releases list clips without ".mp3"
                clip += ".mp3"
            if clip not in clips:
                report.skip(where, "audio file not found", f"clips/{clip}")
                continue
            duration = durations.get(clip)
            audio = clips_prefix + clip
            if duration is None and probe_audio:
                try:
                    duration = round(probe_duration(audio), 3)
                except AudioError as e:
                    report.skip(where, "unreadable audio", str(e))
                    continue
            utt = Utterance(
                id=clip.rsplit(".", 1)[0], audio=audio, duration=duration,
                language=_get(fields, i_locale) or language, transcript=sentence,
                speaker=_get(fields, i_client), source=source, split=split,
                extra={key: fields[i] for i, key in extras if fields[i]},
            )
            yield Row(where, utt)


def _get(fields: list[str], i: int | None) -> str | None:
    return (fields[i] or None) if i is not None else None


def _columns(path: Path, header: list[str]) -> dict[str, int]:
    cols = {name.strip(): i for i, name in enumerate(header)}
    missing = [c for c in ("path", "sentence") if c not in cols]
    if missing:
        raise NabraError(f"{path}: header lacks column(s) {', '.join(missing)} (has {', '.join(header)}); "
                         f"expected layout:\n{LAYOUT}")
    return cols


def _clip_durations(path: Path) -> dict[str, float]:
    """clip file name -> seconds, from ``clip_durations.tsv`` (empty when the release lacks it)."""
    if not path.is_file():
        return {}
    durations = {}
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as f:  # bad bytes: a skip, not a crash
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader, None)
        for fields in reader:
            if len(fields) >= 2:
                try:
                    durations[fields[0]] = float(fields[1]) / 1000
                except ValueError:  # a malformed line only costs that clip its duration
                    continue
    return durations

