"""A Hugging Face dataset on disk (``save_to_disk`` folder or parquet files) -> utterances.

Columns map to manifest fields with ``columns`` (``{"transcript": "sentence", ...}``); a column
named like a field is taken without being named, and ``sentence``/``transcription``/``text``
(transcript) and ``client_id``/``speaker_id`` (speaker) are recognised too. Other scalar columns
are kept as extra fields.

Audio may be a path (kept as a reference; relative paths are taken relative to the dataset
folder), encoded bytes (an ``Audio`` column: written out verbatim under ``audio_dir``, in their
own format, which the loader reads), or a decoded array with its sampling rate (written as
16-bit WAV). Files are written only for rows that pass the checks. Audio is never decoded here:
``datasets`` 4+ decodes through torchcodec, which Nabra does not need.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np

from nabra.corpus.audio import save_wav
from nabra.corpus.importers.common import AUDIO_SUFFIXES, Row, SkipReport, safe_name
from nabra.corpus.labels import DIALECTS, EMOTIONS, LabelSet
from nabra.corpus.manifest import Utterance
from nabra.errors import NabraError

LAYOUT = """\
  SRC/                   a datasets.save_to_disk folder: dataset_info.json, state.json, *.arrow
                         (or dataset_dict.json and one such folder per split)
  SRC.parquet or SRC/    parquet files, e.g. a Hub snapshot's data/train-00000-of-00001.parquet"""

FIELDS = ("id", "audio", "transcript", "summary", "dialect", "emotion", "speaker", "language",
          "split", "duration", "offset")
_ALIASES = {"transcript": ("sentence", "transcription", "text"), "speaker": ("client_id", "speaker_id")}
_SPLIT_NAMES = {"train": "train", "validation": "dev", "valid": "dev", "dev": "dev", "test": "test"}
_BATCH = 256


def parse_columns(spec: str | None) -> dict[str, str]:
    """``audio=audio,transcript=sentence`` -> {"audio": "audio", "transcript": "sentence"}."""
    columns = {}
    for pair in (spec or "").split(","):
        if not pair.strip():
            continue
        key, sep, column = pair.partition("=")
        key, column = key.strip(), column.strip()
        if not sep or not column:
            raise NabraError(f"--columns {spec!r}: expected field=column pairs")
        if key not in FIELDS:
            raise NabraError(f"--columns: unknown field {key!r} (fields: {', '.join(FIELDS)})")
        columns[key] = column
    return columns


def read(src: str | os.PathLike, report: SkipReport, *, audio_dir: str | os.PathLike,
         columns: Mapping[str, str] | None = None, split: str | None = None, dialects: LabelSet = DIALECTS,
         emotions: LabelSet = EMOTIONS, language: str = "ar", source: str | None = None) -> Iterator[Row]:
    """Rows of every split/file of the dataset at ``src``; audio held in the dataset goes to ``audio_dir``."""
    src = Path(src)
    ctx = dict(audio_dir=Path(audio_dir), base=src if src.is_dir() else src.parent,
               labels={"dialect": dialects, "emotion": emotions}, language=language, source=source or src.stem)
    for name, table_split, features, records in _tables(src):
        mapping = _mapping(columns or {}, features, name)
        label_names = {f: features[c].int2str for f, c in mapping.items() if hasattr(features[c], "int2str")}
        for i, record in enumerate(records, 1):
            report.seen += 1
            where = f"{name}:{i}"
            row = _row(where, f"{ctx['source']}-{table_split or name}-{i:06d}", record, mapping, label_names,
                       table_split or split, report, **ctx)
            if row is not None:
                yield row


def _row(where: str, default_id: str, record: dict, mapping: dict[str, str], label_names: dict[str, Callable],
         split: str | None, report: SkipReport, *, audio_dir: Path, base: Path, labels: dict[str, LabelSet],
         language: str, source: str) -> Row | None:
    value = {f: record.get(c) for f, c in mapping.items()}
    for f, int2str in label_names.items():
        if isinstance(value[f], int):
            value[f] = int2str(value[f])
    fields: dict = {"id": str(value["id"]) if value.get("id") is not None else default_id}
    for f in ("transcript", "summary", "speaker", "language"):
        if value.get(f) is not None:
            fields[f] = str(value[f])
    for f in ("dialect", "emotion"):
        if value.get(f) is not None:
            fields[f] = labels[f].lookup(value[f])
            if fields[f] is None:
                report.skip(where, f"unknown {f} label", str(value[f]))
                return None
    for f in ("duration", "offset"):
        if value.get(f) is not None:
            fields[f] = float(value[f])
    if value.get("split") is not None:
        split = _SPLIT_NAMES.get(str(value["split"]).casefold())
    audio, duration, prepare = _audio(value.get("audio"), fields["id"], base, audio_dir)
    if duration is not None:
        fields.setdefault("duration", duration)
    extra = {k: v for k, v in record.items()
             if k not in mapping.values() and k not in FIELDS and isinstance(v, str | int | float | bool)}
    fields.setdefault("language", language)
    utt = Utterance(audio=audio, source=source, split=split, extra=extra, **fields)
    return Row(where, utt, prepare=prepare)


def _audio(value, uid: str, base: Path, audio_dir: Path) -> tuple[str | None, float | None, Callable | None]:
    """(path, duration if known, the writing to do) for an audio cell."""
    if isinstance(value, dict) and value.get("bytes"):
        value, hint = value["bytes"], value.get("path")
    elif isinstance(value, dict) and value.get("array") is not None:
        samples, rate = np.asarray(value["array"], dtype=np.float32), int(value["sampling_rate"])
        if samples.ndim == 2 and samples.shape[0] < samples.shape[1]:  # (channels, frames) -> (frames, channels)
            samples = samples.T
        dest = audio_dir / f"{safe_name(uid)}.wav"
        return str(dest), round(samples.shape[0] / rate, 3), lambda: save_wav(dest, samples, rate)
    elif isinstance(value, dict):
        value, hint = value.get("path"), None
    else:
        hint = None
    if value is None:
        return None, None, None
    if isinstance(value, str):
        return (value if os.path.isabs(value) else str(base / value)), None, None
    data = bytes(value)
    dest = audio_dir / f"{safe_name(uid)}{_suffix(data, hint)}"

    def write() -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)

    return str(dest), None, write


def _suffix(data: bytes, hint: str | None) -> str:
    """File suffix for encoded audio: from its original name, else from its magic bytes."""
    ext = os.path.splitext(hint or "")[1].lower()
    if ext in AUDIO_SUFFIXES:
        return ext
    if data[:4] == b"RIFF":
        return ".wav"
    if data[:4] == b"fLaC":
        return ".flac"
    if data[:4] == b"OggS":
        return ".opus" if b"OpusHead" in data[:128] else ".ogg"
    if data[4:8] == b"ftyp":
        return ".m4a"
    if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return ".mp3"
    return ".audio"  # unknown: both libsndfile and FFmpeg probe the content, not the name


def _mapping(columns: Mapping[str, str], features, name: str) -> dict[str, str]:
    """field -> column: the given ones (checked), then same-named and well-known columns."""
    available = list(features)
    for f, c in columns.items():
        if c not in features:
            raise NabraError(f"{name}: no column {c!r} for {f} (columns: {', '.join(available)})")
    mapping = dict(columns)
    for f in FIELDS:
        if f not in mapping:
            found = [c for c in (f, *_ALIASES.get(f, ())) if c in features and c not in mapping.values()]
            if found:
                mapping[f] = found[0]
    return mapping


def _tables(src: Path) -> Iterator[tuple[str, str | None, object, Iterator[dict]]]:
    """(name, split, features, records) of each table of the dataset at ``src``."""
    datasets = _require_datasets()
    if src.is_file() and src.suffix == ".parquet":
        yield _parquet(src, datasets)
    elif (src / "dataset_dict.json").is_file() or (src / "state.json").is_file():
        loaded = datasets.load_from_disk(str(src))
        parts = loaded.items() if isinstance(loaded, datasets.DatasetDict) else [(None, loaded)]
        for part, ds in parts:
            records = (r for t in ds.with_format("arrow").iter(batch_size=_BATCH) for r in t.to_pylist())
            yield part or src.name, _SPLIT_NAMES.get((part or "").casefold()), ds.features, records
    elif src.is_dir() and any(src.rglob("*.parquet")):
        for path in sorted(src.rglob("*.parquet")):
            yield _parquet(path, datasets)
    else:
        raise NabraError(f"{src}: not a saved Hugging Face dataset; expected layout:\n{LAYOUT}")


def _parquet(path: Path, datasets) -> tuple[str, str | None, object, Iterator[dict]]:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    split = _SPLIT_NAMES.get(path.stem.split("-")[0].casefold()) or _SPLIT_NAMES.get(path.parent.name.casefold())
    records = (r for batch in pf.iter_batches(batch_size=_BATCH) for r in batch.to_pylist())
    return path.name, split, datasets.Features.from_arrow_schema(pf.schema_arrow), records


def _require_datasets():
    try:
        import datasets
    except ImportError:
        raise NabraError("the hf importer needs the 'hf' extra: pip install 'nabra[hf]' "
                         "(Hugging Face datasets)") from None
    return datasets
