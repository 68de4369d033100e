"""Lhotse recording + supervision manifests <-> utterances.

Lhotse's manifests are JSON lines (``.jsonl`` or ``.jsonl.gz``) with a documented schema, so they
are read and written here directly: the ``lhotse`` package is not needed. A supervision becomes
one utterance: its recording's file (sources of type ``file``), ``start`` as ``offset``, its
``text``, ``speaker``, ``language``, ``gender``, and ``custom`` fields (``dialect``, ``emotion``,
``summary``, ``source`` into the manifest fields, the rest kept as extra fields). Sources Nabra's
loader cannot open (URLs, shell commands, in-memory bytes, Lhotse Shar) are skipped with a reason,
as are recordings with transforms other than resampling (speed or volume perturbation).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

from nabra.corpus.audio import AudioInfo, audio_info
from nabra.corpus.importers.common import (
    Row,
    SkipReport,
    counted_lines,
    require_dir,
    require_file,
)
from nabra.corpus.labels import DIALECTS, EMOTIONS, LabelSet
from nabra.corpus.manifest import ManifestLineError, Utterance, decode_json, iter_manifest, open_text
from nabra.errors import AudioError, NabraError

LAYOUT = """\
  SRC/   Lhotse manifests in pairs: <prefix>_recordings_<part>.jsonl.gz + <prefix>_supervisions_<part>.jsonl.gz
         (.jsonl too; <part> train/dev/test sets the split), or name both with --recordings/--supervisions"""

_SPLIT_NAMES = {"train": "train", "dev": "dev", "valid": "dev", "validation": "dev", "test": "test"}
_CUSTOM_FIELDS = ("summary", "dialect", "emotion", "source")


# ----------------------------------------------------------------------------- import

def read(src: str | os.PathLike | None, report: SkipReport, *, recordings: str | None = None,
         supervisions: str | None = None, split: str | None = None, dialects: LabelSet = DIALECTS,
         emotions: LabelSet = EMOTIONS, source: str = "lhotse") -> Iterator[Row]:
    """One row per supervision of every manifest pair under ``src`` (or of the named pair)."""
    labels = {"dialect": dialects, "emotion": emotions}
    for rec_path, sup_path, part_split in _pairs(src, recordings, supervisions, split):
        recs = _load_recordings(rec_path)
        base = sup_path.resolve().parent
        for _, where, line in counted_lines(sup_path, report):
            utt, problem = _supervision(line, recs, base, labels)
            if problem is not None:
                report.skip(where, *problem)
                continue
            utt.split = utt.split or part_split
            utt.source = utt.source or source
            yield Row(where, utt)


def _pairs(src, recordings: str | None, supervisions: str | None, split: str | None) -> list[tuple[Path, Path, str | None]]:
    if recordings or supervisions:
        if not (recordings and supervisions):
            raise NabraError("--recordings and --supervisions go together")
        sup = require_file(Path(supervisions), LAYOUT)
        return [(require_file(Path(recordings), LAYOUT), sup, split or _split_of(sup.name))]
    src = require_dir(Path(src), LAYOUT)
    pairs = []
    for sup in sorted(p for p in src.iterdir() if "supervisions" in p.name and ".jsonl" in p.name):
        rec = require_file(sup.with_name(sup.name.replace("supervisions", "recordings")), LAYOUT)
        pairs.append((rec, sup, split or _split_of(sup.name)))
    if not pairs:
        raise NabraError(f"{src}: no *supervisions*.jsonl[.gz] files; expected layout:\n{LAYOUT}")
    return pairs


def _split_of(name: str) -> str | None:
    tail = name.split("supervisions", 1)[-1]
    for token in re.split(r"[_.\-]", tail):
        if token.casefold() in _SPLIT_NAMES:
            return _SPLIT_NAMES[token.casefold()]
    return None


def _load_recordings(path: Path) -> dict[str, dict]:
    recs = {}
    with open_text(path) as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                try:
                    rec = json.loads(line)
                    recs[rec["id"]] = rec
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise NabraError(f"{path}:{lineno}: not a Lhotse recording") from None
    return recs


def _supervision(line: str, recs: dict[str, dict], base: Path,
                 labels: dict[str, LabelSet]) -> tuple[Utterance | None, tuple[str, str] | None]:
    try:
        sup = decode_json(line)
        rid, start, duration = sup["recording_id"], float(sup["start"]), float(sup["duration"])
        uid = str(sup["id"])
    except ManifestLineError as e:
        return None, ("bad JSON", str(e))
    except (KeyError, TypeError, ValueError) as e:
        return None, ("not a Lhotse supervision", f"{type(e).__name__}: {e}")
    rec = recs.get(rid)
    if rec is None:
        return None, ("recording not in the recordings manifest", rid)
    audio, problem = _audio_path(rec, sup.get("channel", 0), base)
    if problem is not None:
        return None, problem
    whole = start == 0 and abs(duration - float(rec.get("duration", -1))) < 1e-3
    custom = dict(sup.get("custom") or {})
    fields = {f: custom.pop(f) for f in _CUSTOM_FIELDS if custom.get(f) is not None}
    for f in ("dialect", "emotion"):
        if f in fields:
            name = labels[f].lookup(fields[f])
            if name is None:
                return None, (f"unknown {f} label", str(fields[f]))
            fields[f] = name
    split = _SPLIT_NAMES.get(str(custom.pop("split", "")).casefold())
    extra = {"gender": sup["gender"]} if sup.get("gender") else {}
    extra.update(custom)
    utt = Utterance(id=uid, audio=audio, offset=0.0 if whole else round(start, 3), duration=round(duration, 3),
                    language=sup.get("language"), transcript=sup.get("text") or None,
                    speaker=sup.get("speaker"), split=split, extra=extra, **fields)
    return utt, None


def _audio_path(rec: dict, channel, base: Path) -> tuple[str | None, tuple[str, str] | None]:
    """The file holding ``channel`` of ``rec``, or why it cannot be used."""
    transforms = [t.get("name", "?") for t in rec.get("transforms") or [] if isinstance(t, dict)]
    if any(name != "Resample" for name in transforms):
        return None, ("recording has audio transforms", ", ".join(transforms))
    wanted = set(channel if isinstance(channel, list) else [channel])
    for source in rec.get("sources", []):
        if not wanted <= set(source.get("channels", [0])):
            continue
        if source.get("type") != "file":
            return None, (f"recording source of type {source.get('type')!r} is not supported", rec["id"])
        if set(source.get("channels", [0])) != wanted:
            # The loader mixes all channels of a file to mono: one channel of many cannot be had.
            return None, ("supervision on some channels of a multi-channel file", rec["id"])
        path = source["source"]
        return (path if os.path.isabs(path) else str(base / path)), None
    return None, ("no recording source for the supervision's channel", f"{rec['id']} channel {channel}")


# ----------------------------------------------------------------------------- export

def export(manifest: str | os.PathLike, out_dir: str | os.PathLike, report: SkipReport, *,
           prefix: str = "nabra") -> list[Path]:
    """Write ``<prefix>_recordings_<split>.jsonl.gz`` and ``<prefix>_supervisions_<split>.jsonl.gz``
    (no ``_<split>`` for utterances without one) under ``out_dir``; returns the files written.

    Recordings need a sample rate and length, so every audio file's header is read.
    """
    with _Writer(Path(out_dir), prefix) as writer:
        for utt in iter_manifest(manifest):
            report.seen += 1
            if utt.audio is None:
                report.skip(utt.id, "no audio (a Lhotse supervision needs a recording)")
                continue
            try:
                writer.write(utt)
            except AudioError as e:
                report.skip(utt.id, "unreadable audio", str(e))
                continue
            report.imported += 1
            report.utterances += 1
    return sorted(writer.paths)


class _Writer:
    """Open manifest files per split; one recording per audio file (and split), written once."""

    def __init__(self, out_dir: Path, prefix: str):
        self.out_dir, self.prefix = out_dir, prefix
        self.paths: list[Path] = []
        self._files: dict[tuple[str, str | None], object] = {}
        self._stack = ExitStack()
        self._rec_ids: dict[str, str] = {}
        self._taken: set[str] = set()
        self._infos: dict[str, AudioInfo] = {}
        self._written: set[tuple[str | None, str]] = set()

    def __enter__(self):
        self.out_dir.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc):
        self._stack.close()
        return False

    def write(self, utt: Utterance) -> None:
        if utt.audio not in self._infos:
            self._infos[utt.audio] = audio_info(utt.audio)
        info = self._infos[utt.audio]
        rid = self._rec_ids.get(utt.audio) or self._new_recording_id(utt.audio)
        if (utt.split, rid) not in self._written:
            self._written.add((utt.split, rid))
            self._line("recordings", utt.split, _recording(rid, utt.audio, info))
        self._line("supervisions", utt.split, _supervision_dict(utt, rid, info))

    def _line(self, kind: str, split: str | None, obj: dict) -> None:
        if (kind, split) not in self._files:
            path = self.out_dir / (f"{self.prefix}_{kind}" + (f"_{split}" if split else "") + ".jsonl.gz")
            self._files[kind, split] = self._stack.enter_context(open_text(path, "w"))
            self.paths.append(path)
        self._files[kind, split].write(json.dumps(obj, ensure_ascii=False) + "\n")

    def _new_recording_id(self, path: str) -> str:
        rid = base = Path(path).stem
        n = 1
        while rid in self._taken:  # two files with one name in different folders
            n += 1
            rid = f"{base}-{n}"
        self._rec_ids[path] = rid
        self._taken.add(rid)
        return rid


def _recording(rid: str, path: str, info: AudioInfo) -> dict:
    channels = list(range(info.channels))
    return {"id": rid, "sources": [{"type": "file", "channels": channels, "source": path}],
            "sampling_rate": info.sample_rate, "num_samples": info.frames,
            "duration": round(info.duration, 6), "channel_ids": channels}


def _supervision_dict(utt: Utterance, rid: str, info: AudioInfo) -> dict:
    duration = utt.duration if utt.duration is not None else info.duration - utt.offset
    extra = dict(utt.extra)
    sup = {"id": utt.id, "recording_id": rid, "start": utt.offset, "duration": round(duration, 6),
           "channel": 0 if info.channels == 1 else list(range(info.channels)),
           "text": utt.transcript, "language": utt.language, "speaker": utt.speaker,
           "gender": extra.pop("gender", None)}
    custom = {f: getattr(utt, f) for f in _CUSTOM_FIELDS if getattr(utt, f) is not None} | extra
    if custom:
        sup["custom"] = custom
    return {k: v for k, v in sup.items() if v is not None}
