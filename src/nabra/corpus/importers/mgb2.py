"""MGB-2 (Arabic broadcast news, Al Jazeera) -> segment utterances of the long recordings.

The release, as the recipes that read it find it (Kaldi ``egs/mgb2_arabic/s5/local/mgb_data_prep.sh``,
ESPnet ``egs2/mgb2/asr1/local/data.sh``, lhotse ``recipes/mgb2.py``):

- ``train/``: ``wav/<id>.wav`` and one XML per recording in ``xml/utf8`` (Arabic script) and ``xml/bw``
  (Buckwalter), ``<segment starttime= endtime= who= WMER=>`` holding ``<element>`` words. When a file has
  several ``<segments>`` blocks only ``annotation_id="transcript_align"`` is read (as the Kaldi recipe
  does), else the first block.
- ``dev/`` and ``test/``: Kaldi tables in **Buckwalter** — ``segments.all``/``text.all`` (every segment),
  ``segments.non_overlap_speech``/``text.non_overlap_speech`` (without overlapped speech; what all three
  recipes develop and test on), the utterance lists ``non_overlap_speech``/``overlap_speech`` (``.lst`` in
  some copies), ``wav/<id>.wav`` and, in some copies, ``wav.scp``. Utterance ids are
  ``<recording>_spk-NNNN_seg-SSSSSSS:EEEEEEE``; the recipes take the speaker from the first two parts.
- any Kaldi data folder (``segments``, ``text``, ``wav.scp``, ``utt2spk``), as users prepare it.

Each file's script is checked: Buckwalter text (no Arabic letter, Latin ones) is converted to Arabic
script, ``@@LAT@@`` words keep their Latin letters (:mod:`nabra.text.buckwalter`), and the summary says
which files were read and which were converted. The audio stays in the recordings: each utterance carries
``offset`` and ``duration``. Words starting with ``#`` mark overlapped or unintelligible speech in the XML
and are dropped (as Kaldi's ``xml2stm.py`` does).
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from nabra.corpus.importers.common import Row, SkipReport, audio_files, require_dir
from nabra.corpus.manifest import SPLITS, Utterance, iter_lines
from nabra.errors import NabraError
from nabra.text.buckwalter import from_buckwalter, is_buckwalter_source, strip_latin_tags

LAYOUT = """\
  SRC/                 the release root (train/ dev/ test/), or one part given directly
    train/wav/<id>.wav          long recordings
    train/xml/utf8/<id>.xml     MGB-2 XML transcripts (and xml/bw/<id>.xml, or xml/<id>.xml)
    dev/wav/<id>.wav            dev/ and test/: Kaldi tables, Buckwalter text
    dev/segments.non_overlap_speech  dev/text.non_overlap_speech   (or segments.all text.all,
                                     or segments text; utterance lists non_overlap_speech[.lst])
    dev/wav.scp                 optional: <recording> <path> (else the recordings in wav/)
    dev/utt2spk                 optional: <utt> <speaker> (else from <rec>_spk-NNNN_seg-... ids)"""

SCRIPTS = ("auto", "arabic", "buckwalter")
"""``--script``: detect Buckwalter per file (default), or take every file as Arabic script / Buckwalter."""
_NON_OVERLAP = "non_overlap_speech"
_SEGMENTS = {False: ("segments.non_overlap_speech", "segments", "segments.all"),
             True: ("segments.all", "segments", "segments.non_overlap_speech")}
_TEXTS = {False: ("text.non_overlap_speech", "text", "text.all"), True: ("text.all", "text", "text.non_overlap_speech")}
_KEEP_LISTS = (_NON_OVERLAP, _NON_OVERLAP + ".lst")
_OVERLAPPED = "overlapped speech (not in the non-overlap list)"
_SPEAKER_IN_ID = re.compile(r"^(.+_spk-\d+)_seg-")


def read(src: str | os.PathLike, report: SkipReport, *, script: str = "auto", buckwalter: bool = False,
         overlap: bool = False, split: str | None = None, max_wmer: float | None = None,
         segments: str | None = None, text: str | None = None, language: str = "ar",
         source: str = "mgb2") -> Iterator[Row]:
    """Segment rows of every part under ``src`` (``src`` itself, or its train/dev/test folders).

    ``script``: one of :data:`SCRIPTS` (``buckwalter=True`` is ``script="buckwalter"``). ``overlap``
    also reads the overlapped-speech segments of dev/test (``*.all``). ``max_wmer`` skips XML segments
    whose alignment word-match error rate (``WMER``, in %) is higher; ``segments``/``text`` name the
    Kaldi files when they are called otherwise.
    """
    script = "buckwalter" if buckwalter else script
    if script not in SCRIPTS:
        raise NabraError(f"--script must be one of {', '.join(SCRIPTS)}, got {script!r}")
    src = require_dir(Path(src), LAYOUT)
    opts = dict(script=script, max_wmer=max_wmer, language=language, source=source)
    for part, part_split in _parts(src, split, segments, text):
        label = part_split or part.name
        if (part / "xml").is_dir():
            yield from _read_xml_part(part, label, report, part_split, **opts)
        else:
            files = _kaldi_files(part, segments, text, overlap)
            yield from _read_kaldi_part(part, label, files, report, part_split, overlap=overlap, **opts)


def _parts(src: Path, split: str | None, segments: str | None, text: str | None) -> list[tuple[Path, str | None]]:
    if _is_part(src, segments, text):
        return [(src, split or (src.name if src.name in SPLITS else None))]
    parts = [(src / name, name) for name in SPLITS if _is_part(src / name, segments, text)]
    if not parts:
        raise NabraError(f"{src}: no MGB-2 part found (neither xml/ + wav/ nor Kaldi segments/text files); "
                         f"expected layout:\n{LAYOUT}")
    return parts


def _is_part(path: Path, segments: str | None, text: str | None) -> bool:
    names = [segments, text] if segments or text else [*_SEGMENTS[False], *_TEXTS[False], "wav.scp"]
    return (path / "xml").is_dir() or any((path / name).is_file() for name in names if name)


def _transcript(words: str, buckwalter: bool) -> str:
    return " ".join((from_buckwalter(words) if buckwalter else strip_latin_tags(words)).split())


# ----------------------------------------------------------------------------- XML release

def _xml_dir(part: Path, script: str, report: SkipReport, label: str) -> tuple[Path, bool | None]:
    """The XML folder to read and whether it is Buckwalter (``None``: decide per file)."""
    xml = part / "xml"
    utf8, bw = xml / "utf8", xml / "bw"
    if script == "buckwalter":
        return (bw if bw.is_dir() else xml), True
    if utf8.is_dir():
        return utf8, False
    if bw.is_dir():
        if script == "arabic":
            raise NabraError(f"{xml}: only Buckwalter transcripts (xml/bw) found: drop --script arabic")
        report.notes.append(f"{label}: xml/bw (no xml/utf8): Buckwalter transliteration, converted to Arabic script")
        return bw, True
    return xml, (False if script == "arabic" else None)


def _read_xml_part(part: Path, label: str, report: SkipReport, split: str | None, *, script: str,
                   max_wmer: float | None, language: str, source: str) -> Iterator[Row]:
    wav_dir = require_dir(part / "wav", LAYOUT)
    folder, buckwalter = _xml_dir(part, script, report, label)
    report.notes.append(f"{label}: {folder.relative_to(part).as_posix()}/*.xml, wav/")
    converted = 0
    for xml_path in sorted(folder.glob("*.xml")):
        rec = xml_path.stem
        audio = wav_dir / f"{rec}.wav"
        try:
            segs = [(seg, _words(seg)) for seg in _xml_segments(xml_path)]
        except ET.ParseError as e:
            report.seen += 1  # its segments cannot be counted: the file counts as one row
            report.skip(str(xml_path), "unreadable XML", str(e))
            continue
        convert = buckwalter if buckwalter is not None else is_buckwalter_source(w for _, w in segs)
        converted += convert and buckwalter is None
        have_audio = audio.is_file()
        for i, (seg, words) in enumerate(segs, 1):
            report.seen += 1
            where = f"{xml_path.name}#segment{i}"
            if not have_audio:
                report.skip(where, "audio file not found", str(audio))
                continue
            utt, problem = _segment_utterance(seg, rec, _transcript(words, convert), max_wmer)
            if problem is not None:
                report.skip(where, *problem)
                continue
            utt.audio, utt.language, utt.source, utt.split = str(audio), language, source, split
            yield Row(where, utt)
    if converted:
        report.notes.append(f"{label}: {converted:,} XML file(s) in {folder.relative_to(part)} are Buckwalter "
                            "transliteration: converted to Arabic script")


def _xml_segments(path: Path) -> list[ET.Element]:
    body = ET.parse(path).getroot()
    blocks = body.findall(".//segments")
    aligned = [b for b in blocks if b.get("annotation_id") == "transcript_align"]
    chosen = aligned[:1] or blocks[:1]
    return chosen[0].findall("segment") if chosen else body.findall(".//segment")


def _words(seg: ET.Element) -> str:
    words = [w.strip() for w in (e.text or "" for e in seg.iter("element"))]
    return " ".join(w for w in words if w and not w.startswith("#"))


def _segment_utterance(seg: ET.Element, rec: str, transcript: str,
                       max_wmer: float | None) -> tuple[Utterance | None, tuple[str, str] | None]:
    try:
        start, end = float(seg.get("starttime", "")), float(seg.get("endtime", ""))
    except ValueError:
        return None, ("bad segment times", f"starttime={seg.get('starttime')!r} endtime={seg.get('endtime')!r}")
    if end <= start:
        return None, ("segment ends before it starts", f"{start} .. {end}")
    wmer = seg.get("WMER")
    if max_wmer is not None and wmer is not None and float(wmer) > max_wmer:
        return None, (f"WMER above {max_wmer:g}", wmer)
    if not transcript:
        return None, ("empty transcript", "no words (or only #-marked non-speech)")
    who = seg.get("who")
    utt = Utterance(
        id=seg.get("id") or f"{rec}_{start:09.2f}", offset=round(start, 3), duration=round(end - start, 3),
        transcript=transcript, speaker=f"{rec}_{who}" if who else None,
        extra={"wmer": float(wmer)} if wmer is not None else {},
    )
    return utt, None


# ----------------------------------------------------------------------------- Kaldi tables

@dataclass
class _KaldiFiles:
    """The files of one Kaldi-style part, found by the release's names."""

    text: Path
    segments: Path | None
    keep: Path | None
    """An utterance list of non-overlapped speech filtering ``segments`` (when those hold all of it)."""
    recordings: Path
    """``wav.scp``, or the ``wav/`` folder its recordings lie in."""

    def names(self) -> str:
        files = [self.segments, self.text, self.keep]
        return ", ".join([*(f.name for f in files if f is not None),
                          "wav.scp" if self.recordings.name == "wav.scp" else "wav/"])

    @property
    def non_overlap(self) -> bool:
        return self.keep is not None or (self.segments is not None and self.segments.name.endswith(_NON_OVERLAP))


def _first(part: Path, names: tuple[str, ...]) -> Path | None:
    return next((part / n for n in names if (part / n).is_file()), None)


def _kaldi_files(part: Path, segments: str | None, text: str | None, overlap: bool) -> _KaldiFiles:
    text_path = _first(part, (text,) if text else _TEXTS[overlap])
    if text_path is None:
        raise NabraError(f"{part}: no transcript file ({text or ' / '.join(_TEXTS[overlap])}); "
                         f"expected layout:\n{LAYOUT}")
    seg_path = _first(part, (segments,) if segments else _SEGMENTS[overlap])
    if segments and seg_path is None:
        raise NabraError(f"{part / segments}: expected file not found; expected layout:\n{LAYOUT}")
    keep = None
    if not overlap and seg_path is not None and not seg_path.name.endswith(_NON_OVERLAP):
        keep = _first(part, _KEEP_LISTS)
    recordings = part / "wav.scp"
    if not recordings.is_file():
        recordings = require_dir(part / "wav", LAYOUT)
    return _KaldiFiles(text_path, seg_path, keep, recordings)


def _read_kaldi_part(part: Path, label: str, files: _KaldiFiles, report: SkipReport, split: str | None, *,
                     script: str, overlap: bool, language: str, source: str, **_) -> Iterator[Row]:
    texts = _read_text(files.text, report)
    convert = script == "buckwalter" or (script == "auto" and is_buckwalter_source(w for _, w in texts.values()))
    if files.non_overlap:
        why = (" (only non-overlapped speech in this part)" if overlap else
               " (non-overlapped speech, as the Kaldi, ESPnet and lhotse recipes read it; --with-overlap reads all)")
    report.notes.append(f"{label}: {files.names()}" + (why if files.non_overlap else ""))
    if convert and script == "auto":
        report.notes.append(f"{label}: {files.text.name} is Buckwalter transliteration: converted to Arabic script")
    recordings = _Recordings(files.recordings, part)
    speakers = dict(_table(part / "utt2spk")) if (part / "utt2spk").is_file() else {}
    keep = {key for key, _ in _table(files.keep)} if files.keep is not None else None
    base = dict(buckwalter=convert, language=language, source=source, split=split)
    if files.segments is not None:
        lines = ((f"{files.segments.name}:{n}", line.split()) for n, line in _lines(files.segments))
    else:  # no segments file: each text line is a whole recording
        lines = [(f"{files.text.name}:{n}", [uid, uid]) for uid, (n, _) in texts.items()]
    for where, fields in lines:
        report.seen += 1
        if keep is not None and fields and fields[0] not in keep:
            texts.pop(fields[0], None)
            report.skip(where, _OVERLAPPED, fields[0])
            continue
        row = _kaldi_row(where, fields, texts, recordings, speakers, report, **base)
        if row is not None:
            yield row
    orphan = _OVERLAPPED if files.non_overlap and files.segments is not None else "no segment for this text line"
    for uid, (n, _) in texts.items():  # text lines no segment points at are rows too
        report.seen += 1
        report.skip(f"{files.text.name}:{n}", orphan, uid)


def _read_text(path: Path, report: SkipReport) -> dict[str, tuple[int, str]]:
    """utt -> (line number, words) of a Kaldi ``text`` file."""
    texts: dict[str, tuple[int, str]] = {}
    for n, line in _lines(path):
        uid, words = (line.split(maxsplit=1) + ["", ""])[:2]
        if uid in texts:  # the later line would never be used: account for it now
            report.seen += 1
            report.skip(f"{path.name}:{n}", "duplicate utterance id in text", uid)
            continue
        texts[uid] = (n, words.strip())
    return texts


class _Recordings:
    """Recording -> audio file, from ``wav.scp`` or from the recordings in the ``wav/`` folder."""

    def __init__(self, path: Path, part: Path):
        self.name = "wav/" if path.is_dir() else path.name
        if path.is_dir():
            self.files: dict[str, str | None] = {f.stem: str(f) for f in audio_files(path)}
        else:  # piped entries (`sox x.sph -t wav - |`) need a shell to produce audio: not supported (None)
            self.files = {rec: None if entry.endswith("|") else entry if os.path.isabs(entry) else str(part / entry)
                          for rec, entry in _table(path)}
        self._exists: dict[str, bool] = {}

    def problem(self, rec: str) -> tuple[str, str] | None:
        """(reason, detail) when ``rec`` has no audio file to read."""
        if rec not in self.files:
            return f"recording not in {self.name}", rec
        audio = self.files[rec]
        if audio is None:
            return "wav.scp entry is a command, not a file", rec
        if not self._exists.setdefault(audio, os.path.isfile(audio)):
            return "audio file not found", audio
        return None


def _kaldi_row(where: str, fields: list[str], texts: dict[str, tuple[int, str]], recordings: _Recordings,
               speakers: dict[str, str], report: SkipReport, *, buckwalter: bool, language: str, source: str,
               split: str | None) -> Row | None:
    whole = len(fields) == 2
    if not whole and len(fields) not in (4, 5):
        report.skip(where, "malformed segments line", " ".join(fields))
        return None
    uid, rec = fields[0], fields[1]
    _, words = texts.pop(uid, (0, None))
    transcript = _transcript(words, buckwalter) if words else words
    if not transcript:
        report.skip(where, "empty transcript" if words is not None else "no transcript in text", uid)
        return None
    problem = recordings.problem(rec)
    if problem is not None:
        report.skip(where, *problem)
        return None
    offset, duration = 0.0, None
    if not whole:
        try:
            start, end = float(fields[2]), float(fields[3])
        except ValueError:
            report.skip(where, "bad segment times", " ".join(fields))
            return None
        if end <= start:
            report.skip(where, "segment ends before it starts", f"{start} .. {end}")
            return None
        offset, duration = round(start, 3), round(end - start, 3)
    speaker = speakers.get(uid) or (m.group(1) if (m := _SPEAKER_IN_ID.match(uid)) else None)
    utt = Utterance(id=uid, audio=recordings.files[rec], offset=offset, duration=duration, language=language,
                    transcript=transcript, speaker=speaker, source=source, split=split)
    return Row(where, utt)


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    return iter_lines(path, max_bytes=None)


def _table(path: Path) -> Iterator[tuple[str, str]]:
    """(key, rest of the line) for every line of a Kaldi table file: the key ends at the first whitespace."""
    for _, line in _lines(path):
        fields = line.split(maxsplit=1)
        if fields:
            yield fields[0], fields[1].strip() if len(fields) > 1 else ""
