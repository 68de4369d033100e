"""ADI-5 / ADI-17 (Arabic dialect identification, QCRI MGB-3/MGB-5) -> dialect utterances.

ADI-5 labels are the five regions Nabra uses by default (EGY, GLF, LAV, NOR, MSA). ADI-17 labels
are 17 countries; they are mapped to those regions with :data:`DEFAULT_REGIONS` unless
``keep_country`` keeps the country (then validate with ``--dialects`` set to the countries).

The grouping follows geography and the usual dialect-continuum groupings; some countries are
debatable and listed here so that nobody has to guess:

- IRA/IRQ (Iraq) -> GLF. Mesopotamian Arabic is often treated as its own group; ADI-5 has no
  Iraqi class, and Gulf is the nearest of the five.
- YEM (Yemen) -> GLF. Yemeni varieties are distinct from Gulf Arabic; both are Peninsular.
- SUD (Sudan) -> EGY. Sudanese Arabic shares much with Egyptian (the Nile Valley group).
- LIB (Libya), MAU (Mauritania, Hassaniya) -> NOR (Maghrebi), though eastern Libyan is close to
  Egyptian and Hassaniya is far from the other Maghrebi varieties.

A JSON file ``{"SUD": "NOR", "YEM": null}`` overrides single entries (``null`` drops the country).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from nabra.corpus.importers import folder
from nabra.corpus.importers.common import AUDIO_SUFFIXES, Row, SkipReport, require_dir, require_file
from nabra.corpus.labels import DIALECTS, LabelSet
from nabra.corpus.manifest import SPLITS, Utterance, iter_lines
from nabra.errors import NabraError

LAYOUT = """\
  ADI-17:  SRC/train_segments/<COUNTRY>/*.wav
           SRC/dev_segments/*.wav   + SRC/adi17_official_dev_label.txt   (<utt> <COUNTRY> per line)
           SRC/test_segments/*.wav  + SRC/adi17_official_test_label.txt
  ADI-5:   SRC/{train,dev,test}/wav/<REGION>/*.wav     (REGION: EGY GLF LAV NOR MSA)
  MGB-3:   SRC/{train,dev}.vardial2017/<REGION>/*.wav   (a split folder may carry a .suffix)
  other:   SRC/{train,dev,test}/<LABEL>/**/*.wav, SRC/<LABEL>/**/*.wav,
           or --list FILE (<utt> <label> per line) with --audio-dir DIR"""

DEFAULT_REGIONS: dict[str, str] = {
    # ADI-17 countries (IRA is ADI-17's code for Iraq; IRQ is accepted too).
    "ALG": "NOR", "EGY": "EGY", "IRA": "GLF", "IRQ": "GLF", "JOR": "LAV", "KSA": "GLF",
    "KUW": "GLF", "LEB": "LAV", "LIB": "NOR", "MAU": "NOR", "MOR": "NOR", "OMA": "GLF",
    "PAL": "LAV", "QAT": "GLF", "SUD": "EGY", "SYR": "LAV", "UAE": "GLF", "YEM": "GLF",
    # ADI-20 adds these.
    "BAH": "GLF", "TUN": "NOR", "MSA": "MSA",
    # ADI-5 regions are their own region.
    "GLF": "GLF", "LAV": "LAV", "NOR": "NOR",
}  # fmt: skip
"""Country (or region) code -> ADI-5 region. See the module docstring for the debatable ones."""

_HEADER_LABELS = {"label", "dialect", "lang", "language", "class", "country"}


def load_mapping(path: str | None) -> dict[str, str | None]:
    """:data:`DEFAULT_REGIONS` with the entries of the JSON file at ``path`` replacing its own."""
    mapping: dict[str, str | None] = dict(DEFAULT_REGIONS)
    if path:
        if not os.path.isfile(path):
            raise NabraError(f"{path}: mapping file not found (expected a JSON object COUNTRY -> REGION)")
        mapping.update({k.upper(): v for k, v in folder.parse_label_map(path).items()})
    return mapping


def country_labels(mapping: Mapping[str, str | None]) -> LabelSet:
    """The dialect label set of ``keep_country`` imports: every code the mapping keeps."""
    return LabelSet("dialect", tuple(sorted(k for k, v in mapping.items() if v is not None)))


def read(src: str | os.PathLike, report: SkipReport, *, mapping: Mapping[str, str | None] | None = None,
         keep_country: bool = False, labels: LabelSet = DIALECTS, list_file: str | None = None,
         audio_dir: str | None = None, split: str | None = None, language: str = "ar",
         source: str = "adi") -> Iterator[Row]:
    """Dialect rows of an ADI release under ``src`` (or of ``list_file``).

    ``labels`` is the region label set; with ``keep_country`` it is :func:`country_labels` of the
    mapping (pass the same set to the import's validation: ``ImportOptions(dialects=...)``).
    """
    mapping = load_mapping(None) if mapping is None else mapping
    if keep_country:  # the label is the code itself, as long as the mapping does not drop it
        labels = country_labels(mapping)
        mapping = {k: (k if v is not None else None) for k, v in mapping.items()}
    common = dict(labels=labels, language=language, source=source)
    for kind, path, part_split, audio in _layout(src, split, list_file, audio_dir, report):
        if kind == "list":
            yield from _read_list(path, audio, report, mapping=mapping, split=part_split, **common)
        else:
            yield from folder.read(path, report, field="dialect", label_map=mapping, split=part_split, **common)


def _layout(src: str | os.PathLike | None, split: str | None, list_file: str | None, audio_dir: str | None,
            report: SkipReport | None = None) -> list[tuple[str, Path, str | None, Path | None]]:
    """(kind, path, split, audio folder) for each part of the release found under ``src``."""
    if list_file:
        audio = audio_dir or src
        if audio is None:
            raise NabraError("--list needs --audio-dir (or SRC) to find the audio")
        return [("list", require_file(Path(list_file), LAYOUT), split, require_dir(Path(audio), LAYOUT))]
    if src is None:
        raise NabraError(f"name the ADI folder; expected layout:\n{LAYOUT}")
    src = require_dir(Path(src), LAYOUT)
    parts, used = [], set()
    for name in SPLITS:
        segments, labels = src / f"{name}_segments", src / f"adi17_official_{name}_label.txt"
        split_dirs = [f for f in (src / name, *sorted(src.glob(f"{name}.*"))) if f.is_dir()]  # dev, dev.vardial2017
        if segments.is_dir():
            parts.append(("list", labels, name, segments) if labels.is_file() else ("folders", segments, name, None))
            used.add(segments.name)
        for d in split_dirs:
            parts.append(("folders", d / "wav" if (d / "wav").is_dir() else d, name, None))
            used.add(d.name)
    if parts:
        ignored = sorted(p.name for p in src.iterdir() if p.is_dir() and p.name not in used)
        if ignored and report is not None:
            report.notes.append(f"{src}: folder(s) not imported, not named after a split "
                                f"(train, dev, test, or train.*/dev.*/test.*): {', '.join(ignored)}")
        return parts
    if any(p.is_dir() for p in src.iterdir()):
        return [("folders", src, split, None)]
    raise NabraError(f"{src}: no ADI layout found; expected layout:\n{LAYOUT}")


def _read_list(path: Path, audio_dir: Path, report: SkipReport, *, mapping: Mapping[str, str | None],
               labels: LabelSet, split: str | None, language: str, source: str) -> Iterator[Row]:
    folded = {k.casefold(): v for k, v in mapping.items()}
    for lineno, line in iter_lines(path, max_bytes=None):
        fields = line.split()
        if not fields or (lineno == 1 and len(fields) > 1 and fields[1].casefold() in _HEADER_LABELS):
            continue
        report.seen += 1
        where = f"{path.name}:{lineno}"
        if len(fields) < 2:
            report.skip(where, "malformed line (expected <utt> <label>)", line.strip())
            continue
        uid, raw = fields[0], fields[1]
        name = folder.map_label(raw, folded, labels)
        if name is None:
            report.skip(where, "unknown dialect label", raw)
            continue
        # MGB-3 ids hold decimals (<rec>_F_0002_0.30_25.72): only an audio suffix is a suffix.
        suffix = os.path.splitext(uid)[1]
        stem = uid[: -len(suffix)] if suffix.lower() in AUDIO_SUFFIXES else uid
        audio = audio_dir / (uid if stem != uid else f"{uid}.wav")
        if not audio.is_file():
            report.skip(where, "audio file not found", str(audio))
            continue
        yield Row(where, Utterance(id=Path(stem).name, audio=str(audio), language=language, dialect=name,
                                   source=source, split=split))
