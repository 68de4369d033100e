"""MGB-2 (Arabic broadcast news, Al Jazeera) -> segment utterances of the long recordings.

Two layouts, both common in the wild:

- the release: ``wav/<id>.wav`` and ``xml/<id>.xml`` (``xml/utf8`` / ``xml/bw`` in the training
  part), one XML per recording with ``<segment starttime= endtime= who=>`` holding ``<element>``
  words. When a file has several ``<segments>`` blocks only ``annotation_id="transcript_align"`` is
  read (as the Kaldi recipe does), else the first block.
- a Kaldi data folder: ``segments`` (utt rec start end), ``text`` (utt words), ``wav.scp``
  (rec path) and optionally ``utt2spk``, as many users have prepared MGB-2 (the dev/test sets ship
  that way, with Buckwalter text).

The audio stays in the recordings: each utterance carries ``offset`` and ``duration``. Words
starting with ``#`` mark overlapped or unintelligible speech in the XML and are dropped (as Kaldi's
``xml2stm.py`` does).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

from nabra.corpus.importers.common import Row, SkipReport, require_dir, require_file
from nabra.corpus.manifest import SPLITS, Utterance, iter_lines
from nabra.errors import NabraError

LAYOUT = """\
  SRC/                 one part, or a corpus folder holding train/ dev/ test/ parts like it
    wav/<id>.wav       long recordings
    xml/<id>.xml       MGB-2 XML transcripts (or xml/utf8/*.xml and xml/bw/*.xml)
  or, Kaldi style:
    segments           <utt> <recording> <start s> <end s>
    text               <utt> <words...>
    wav.scp            <recording> <path to audio> (relative paths: to SRC)
    utt2spk            optional: <utt> <speaker>"""

# Buckwalter transliteration -> Arabic, complete: the 36 letters and hamza forms, the diacritics,
# tatweel and wasla, the letters of other languages QCRI's table adds (P V J G), and the XML-safe
# alternatives O W I for > & < (unused letters in the standard scheme, so mapping them is safe).
# Punctuation and digits are left as they are: the scheme does not define them.
_BUCKWALTER = {
    "'": "\u0621", "|": "\u0622", ">": "\u0623", "O": "\u0623", "&": "\u0624", "W": "\u0624",
    "<": "\u0625", "I": "\u0625", "}": "\u0626", "A": "\u0627", "b": "\u0628", "p": "\u0629",
    "t": "\u062a", "v": "\u062b", "j": "\u062c", "H": "\u062d", "x": "\u062e", "d": "\u062f",
    "*": "\u0630", "r": "\u0631", "z": "\u0632", "s": "\u0633", "$": "\u0634", "S": "\u0635",
    "D": "\u0636", "T": "\u0637", "Z": "\u0638", "E": "\u0639", "g": "\u063a", "_": "\u0640",
    "f": "\u0641", "q": "\u0642", "k": "\u0643", "l": "\u0644", "m": "\u0645", "n": "\u0646",
    "h": "\u0647", "w": "\u0648", "Y": "\u0649", "y": "\u064a", "F": "\u064b", "N": "\u064c",
    "K": "\u064d", "a": "\u064e", "u": "\u064f", "i": "\u0650", "~": "\u0651", "o": "\u0652",
    "`": "\u0670", "{": "\u0671", "P": "\u067e", "J": "\u0686", "V": "\u06a4", "G": "\u06af",
}  # fmt: skip
_FROM_BUCKWALTER = str.maketrans(_BUCKWALTER)


def from_buckwalter(text: str) -> str:
    """Buckwalter transliteration -> Arabic script."""
    return text.translate(_FROM_BUCKWALTER)


def read(src: str | os.PathLike, report: SkipReport, *, buckwalter: bool = False, split: str | None = None,
         max_wmer: float | None = None, segments: str | None = None, text: str | None = None,
         language: str = "ar", source: str = "mgb2") -> Iterator[Row]:
    """Segment rows of every part under ``src`` (``src`` itself, or its train/dev/test folders).

    ``max_wmer`` skips XML segments whose alignment word-match error rate (``WMER``, in %) is
    higher; ``segments``/``text`` name the Kaldi files when they are not called so.
    """
    src = require_dir(Path(src), LAYOUT)
    opts = dict(buckwalter=buckwalter, max_wmer=max_wmer, segments=segments, text=text,
                language=language, source=source)
    for part, part_split in _parts(src, split, segments):
        if (part / "xml").is_dir():
            yield from _read_xml_part(part, report, part_split, **opts)
        else:
            yield from _read_kaldi_part(part, report, part_split, **opts)


def _parts(src: Path, split: str | None, segments: str | None) -> list[tuple[Path, str | None]]:
    if _is_part(src, segments):
        return [(src, split or (src.name if src.name in SPLITS else None))]
    parts = [(src / name, name) for name in SPLITS if _is_part(src / name, segments)]
    if not parts:
        raise NabraError(f"{src}: no MGB-2 part found (neither xml/ + wav/ nor a Kaldi segments file); "
                         f"expected layout:\n{LAYOUT}")
    return parts


def _is_part(path: Path, segments: str | None) -> bool:
    return (path / "xml").is_dir() or (path / (segments or "segments")).is_file() or (path / "wav.scp").is_file()


# ----------------------------------------------------------------------------- XML release

def _xml_dir(part: Path, buckwalter: bool) -> Path:
    xml = part / "xml"
    utf8, bw = xml / "utf8", xml / "bw"
    if buckwalter and bw.is_dir():
        return bw
    if not buckwalter and utf8.is_dir():
        return utf8
    if not buckwalter and bw.is_dir():
        raise NabraError(f"{xml}: only Buckwalter transcripts (xml/bw) found: pass --buckwalter")
    return xml


def _read_xml_part(part: Path, report: SkipReport, split: str | None, *, buckwalter: bool,
                   max_wmer: float | None, language: str, source: str, **_) -> Iterator[Row]:
    wav_dir = require_dir(part / "wav", LAYOUT)
    for xml_path in sorted(_xml_dir(part, buckwalter).glob("*.xml")):
        rec = xml_path.stem
        audio = wav_dir / f"{rec}.wav"
        try:
            segs = _xml_segments(xml_path)
        except ET.ParseError as e:
            report.seen += 1  # its segments cannot be counted: the file counts as one row
            report.skip(str(xml_path), "unreadable XML", str(e))
            continue
        have_audio = audio.is_file()
        for i, seg in enumerate(segs, 1):
            report.seen += 1
            where = f"{xml_path.name}#segment{i}"
            if not have_audio:
                report.skip(where, "audio file not found", str(audio))
                continue
            utt, problem = _segment_utterance(seg, rec, buckwalter, max_wmer)
            if problem is not None:
                report.skip(where, *problem)
                continue
            utt.audio, utt.language, utt.source, utt.split = str(audio), language, source, split
            yield Row(where, utt)


def _xml_segments(path: Path) -> list[ET.Element]:
    body = ET.parse(path).getroot()
    blocks = body.findall(".//segments")
    aligned = [b for b in blocks if b.get("annotation_id") == "transcript_align"]
    chosen = aligned[:1] or blocks[:1]
    return chosen[0].findall("segment") if chosen else body.findall(".//segment")


def _segment_utterance(seg: ET.Element, rec: str, buckwalter: bool,
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
    words = [w.strip() for w in (e.text or "" for e in seg.iter("element"))]
    words = [w for w in words if w and not w.startswith("#")]
    if not words:
        return None, ("empty transcript", "no words (or only #-marked non-speech)")
    transcript = " ".join(words)
    who = seg.get("who")
    utt = Utterance(
        id=seg.get("id") or f"{rec}_{start:09.2f}", offset=round(start, 3), duration=round(end - start, 3),
        transcript=from_buckwalter(transcript) if buckwalter else transcript,
        speaker=f"{rec}_{who}" if who else None,
        extra={"wmer": float(wmer)} if wmer is not None else {},
    )
    return utt, None


# ----------------------------------------------------------------------------- Kaldi folder

def _read_kaldi_part(part: Path, report: SkipReport, split: str | None, *, buckwalter: bool,
                     segments: str | None, text: str | None, language: str, source: str, **_) -> Iterator[Row]:
    text_path = require_file(part / (text or "text"), LAYOUT)
    texts = _read_text(text_path, report)
    recordings = dict(_table(require_file(part / "wav.scp", LAYOUT)))
    speakers = dict(_table(part / "utt2spk")) if (part / "utt2spk").is_file() else {}
    seg_path = part / (segments or "segments")
    base = dict(part=part, buckwalter=buckwalter, language=language, source=source, split=split)
    if seg_path.is_file():
        lines = ((f"{seg_path.name}:{n}", line.split()) for n, line in _lines(seg_path))
    else:  # no segments file: each text line is a whole recording
        lines = [(f"{text_path.name}:{n}", [uid, uid]) for uid, (n, _) in texts.items()]
    for where, fields in lines:
        report.seen += 1
        row = _kaldi_row(where, fields, texts, recordings, speakers, report, **base)
        if row is not None:
            yield row
    for uid, (n, _) in texts.items():  # text lines no segment points at are rows too
        report.seen += 1
        report.skip(f"{text_path.name}:{n}", "no segment for this text line", uid)


def _read_text(path: Path, report: SkipReport) -> dict[str, tuple[int, str]]:
    """utt -> (line number, words) of a Kaldi ``text`` file."""
    texts: dict[str, tuple[int, str]] = {}
    for n, line in _lines(path):
        uid, _, words = line.strip().partition(" ")
        if uid in texts:  # the later line would never be used: account for it now
            report.seen += 1
            report.skip(f"{path.name}:{n}", "duplicate utterance id in text", uid)
            continue
        texts[uid] = (n, words.strip())
    return texts


def _kaldi_row(where: str, fields: list[str], texts: dict[str, tuple[int, str]], recordings: dict[str, str],
               speakers: dict[str, str], report: SkipReport, *, part: Path, buckwalter: bool,
               language: str, source: str, split: str | None) -> Row | None:
    whole = len(fields) == 2
    if not whole and len(fields) not in (4, 5):
        report.skip(where, "malformed segments line", " ".join(fields))
        return None
    uid, rec = fields[0], fields[1]
    _, words = texts.pop(uid, (0, None))
    if not words:
        report.skip(where, "empty transcript" if words == "" else "no transcript in text", uid)
        return None
    audio = _wav_path(recordings.get(rec), part)
    if audio is None:
        reason = "recording not in wav.scp" if rec not in recordings else "wav.scp entry is a command, not a file"
        report.skip(where, reason, rec)
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
    utt = Utterance(id=uid, audio=audio, offset=offset, duration=duration, language=language,
                    transcript=from_buckwalter(words) if buckwalter else words,
                    speaker=speakers.get(uid), source=source, split=split)
    return Row(where, utt)


def _wav_path(entry: str | None, part: Path) -> str | None:
    # Piped entries (`sox x.sph -t wav - |`) need a shell to produce audio: not supported.
    if entry is None or entry.endswith("|"):
        return None
    return entry if os.path.isabs(entry) else str(part / entry)


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    return iter_lines(path, max_bytes=None)


def _table(path: Path) -> Iterator[tuple[str, str]]:
    """(key, rest of the line) for every line of a Kaldi table file."""
    for _, line in _lines(path):
        key, _, value = line.strip().partition(" ")
        yield key, value.strip()
