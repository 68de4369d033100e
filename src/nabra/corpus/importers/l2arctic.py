"""L2-ARCTIC (v5.0) -> English ASR utterances of 24 non-native speakers, with their L1 and sex.

Layout, from the corpus's ``README.md`` (https://psi.engr.tamu.edu/l2-arctic-corpus-docs; lhotse's
``recipes/l2_arctic.py`` reads the same): ``<SPK>/wav/arctic_a0001.wav`` (44.1 kHz), the transcript of
each in ``<SPK>/transcript/arctic_a0001.txt`` (the sentence alone), forced alignments in
``<SPK>/textgrid/`` and, for about 150 utterances a speaker, manual pronunciation annotations in
``<SPK>/annotation/*.TextGrid`` (kept as the ``annotation`` field: a path). The spontaneous
``suitcase_corpus/`` (one ~1-min recording a speaker, named ``<spk>.wav``) is read with
``suitcase=True``. No metadata file ships: the speaker -> L1 and sex table is the README's (it says
"Chinese" for Mandarin). The corpus has no official splits; ``speaker_split`` makes speaker-disjoint ones.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from nabra.corpus.importers.common import Row, SkipReport, require_dir
from nabra.corpus.manifest import SPLITS, Utterance
from nabra.errors import NabraError

LAYOUT = """\
  SRC/                                   the L2-ARCTIC folder
    <SPK>/wav/arctic_a0001.wav           SPK: ABA, SKA, YBAA, ZHAA, BWC, ... (24 speakers)
    <SPK>/transcript/arctic_a0001.txt    the sentence
    <SPK>/annotation/arctic_a0001.TextGrid   (some utterances) manual annotation
    suitcase_corpus/wav/<spk>.wav + transcript/<spk>.txt   (read with --suitcase)"""

SUITCASE = "suitcase_corpus"
SPEAKERS: dict[str, tuple[str, str]] = {
    "ABA": ("male", "Arabic"), "SKA": ("female", "Arabic"), "YBAA": ("male", "Arabic"), "ZHAA": ("female", "Arabic"),
    "BWC": ("male", "Mandarin"), "LXC": ("female", "Mandarin"), "NCC": ("female", "Mandarin"), "TXHC": ("male", "Mandarin"),
    "ASI": ("male", "Hindi"), "RRBI": ("male", "Hindi"), "SVBI": ("female", "Hindi"), "TNI": ("female", "Hindi"),
    "HJK": ("female", "Korean"), "HKK": ("male", "Korean"), "YDCK": ("female", "Korean"), "YKWK": ("male", "Korean"),
    "EBVS": ("male", "Spanish"), "ERMS": ("male", "Spanish"), "MBMPS": ("female", "Spanish"), "NJS": ("female", "Spanish"),
    "HQTV": ("male", "Vietnamese"), "PNV": ("female", "Vietnamese"), "THV": ("female", "Vietnamese"), "TLV": ("male", "Vietnamese"),
}
"""Speaker -> (sex, L1), the corpus README's table (in its order: four speakers per L1, two of each sex)."""

L1_SPLIT = {"dev": ("SKA", "BWC", "TNI", "HKK", "NJS", "TLV"), "test": ("YBAA", "NCC", "RRBI", "YDCK", "ERMS", "THV")}
"""``speaker_split="l1"``: per L1 one speaker for dev and one of the other sex for test, the sexes
alternating from one L1 to the next, the other two (a man and a woman) for train: each split holds
every L1, and dev and test three women and three men each."""


def read(src: str | os.PathLike, report: SkipReport, *, speaker_split: str | Mapping[str, str] | None = None,
         suitcase: bool = False, language: str = "en", source: str = "l2arctic") -> Iterator[Row]:
    """One row per ``<SPK>/wav/*.wav`` of the speaker folders under ``src`` (and the suitcase
    recordings with ``suitcase``). ``speaker_split``: ``"l1"`` (:data:`L1_SPLIT`), or speaker -> split."""
    root = require_dir(Path(src), LAYOUT)
    splits = speaker_splits(speaker_split)
    folders = [p for p in sorted(root.iterdir()) if p.is_dir() and (p / "wav").is_dir() and p.name != SUITCASE]
    if not folders:
        raise NabraError(f"{root}: no speaker folder (<SPK>/wav/); expected layout:\n{LAYOUT}")
    unknown = [p.name for p in folders if p.name.upper() not in SPEAKERS]
    if unknown:
        report.notes.append(f"speaker folder(s) not in the L2-ARCTIC table, imported without l1/gender: {', '.join(unknown)}")
    for folder in folders:
        for wav in sorted((folder / "wav").iterdir()):
            if wav.suffix.lower() == ".wav":
                yield from _row(root, folder.name, wav, folder / "transcript" / f"{wav.stem}.txt",
                                folder / "annotation" / f"{wav.stem}.TextGrid", splits, report, language, source,
                                uid=f"{folder.name}-{wav.stem}")
    if suitcase:
        sc = root / SUITCASE
        if not (sc / "wav").is_dir():
            raise NabraError(f"{sc}/wav: not found (--suitcase reads the spontaneous recordings there)")
        for wav in sorted((sc / "wav").iterdir()):
            if wav.suffix.lower() == ".wav":
                yield from _row(root, wav.stem.upper(), wav, sc / "transcript" / f"{wav.stem}.txt",
                                sc / "annotation" / f"{wav.stem}.TextGrid", splits, report, language, source,
                                uid=f"{wav.stem.upper()}-suitcase", style="spontaneous")


def speaker_splits(spec: str | Mapping[str, str] | None) -> dict[str, str]:
    """Speaker -> split from ``"l1"``, ``"test=ABA,SKA;dev=BWC"`` or a mapping; empty for none."""
    if not spec:
        return {}
    if spec == "l1":
        table = {s: split for split, speakers in L1_SPLIT.items() for s in speakers}
        return {s: table.get(s, "train") for s in SPEAKERS}
    if isinstance(spec, str):
        pairs: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in spec.split(";"))):
            split, _, names = part.partition("=")
            if split.strip() not in SPLITS or not names.strip():
                raise NabraError(f"speaker split {part!r}: expected SPLIT=SPK,SPK with SPLIT one of {', '.join(SPLITS)}")
            pairs.update({n.strip().upper(): split.strip() for n in names.split(",") if n.strip()})
        spec = pairs
    bad = sorted(set(spec.values()) - set(SPLITS))
    if bad:
        raise NabraError(f"speaker split: unknown split(s) {', '.join(bad)}; choose from {', '.join(SPLITS)}")
    named = {k.upper(): v for k, v in spec.items()}
    # Speakers not named train; a split that names none of the corpus's speakers is a typo.
    unknown = sorted(set(named) - set(SPEAKERS))
    if unknown:
        raise NabraError(f"speaker split names speakers not in L2-ARCTIC: {', '.join(unknown)}")
    return {s: named.get(s, "train") for s in SPEAKERS}


def _row(root: Path, speaker: str, wav: Path, transcript: Path, annotation: Path, splits: dict[str, str],
         report: SkipReport, language: str, source: str, *, uid: str, style: str = "read") -> Iterator[Row]:
    report.seen += 1
    where = wav.relative_to(root).as_posix()
    if not transcript.is_file():
        report.skip(where, "no transcript", transcript.relative_to(root).as_posix())
        return
    try:
        text = " ".join(transcript.read_text(encoding="utf-8").split())
    except UnicodeDecodeError:
        report.skip(where, "transcript not UTF-8 text", transcript.relative_to(root).as_posix())
        return
    if not text:
        report.skip(where, "empty transcript", transcript.relative_to(root).as_posix())
        return
    extra = {"style": style}
    sex_l1 = SPEAKERS.get(speaker.upper())
    if sex_l1:
        extra["gender"], extra["l1"] = sex_l1
    if annotation.is_file():  # absolute, as the audio path is made: a manifest is read from anywhere
        extra["annotation"] = os.path.abspath(annotation)
    yield Row(where, Utterance(id=uid, audio=str(wav), language=language, transcript=text, speaker=speaker.upper(),
                               source=source, split=splits.get(speaker.upper()), extra=extra))
