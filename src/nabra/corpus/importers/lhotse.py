"""Lhotse manifests <-> utterances: recording + supervision pairs, and cut sets.

Lhotse's manifests are JSON lines (``.jsonl`` or ``.jsonl.gz``) with a documented schema, so they
are read and written here directly: the ``lhotse`` package is not needed (the tests check both
directions against the real lhotse). A supervision becomes one utterance: its recording's file
(sources of type ``file``), its start as ``offset`` (in a cut: the cut's start plus the
supervision's, clipped to the cut), ``text``, ``speaker``, ``language`` (lhotse's recipes write
names, ``Arabic``: they become codes, ``ar``), ``gender``, and ``custom`` fields (``dialect``,
``emotion``, ``summary``, ``source`` into the manifest fields, the rest kept as extra fields).
Sources Nabra's loader cannot open (URLs, shell commands, in-memory bytes, Lhotse Shar) are skipped
with a reason, as are recordings with transforms other than resampling and mixed cuts.

Relative source paths are resolved as lhotse resolves them, against the working directory
(``relative_to="manifest"``: against the manifest's folder); the skip report says which.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
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
from nabra.corpus.manifest import (
    ManifestLineError,
    Utterance,
    decode_json,
    display_line,
    iter_lines,
    iter_manifest,
    open_text,
)
from nabra.errors import AudioError, NabraError

LAYOUT = """\
  SRC/   Lhotse manifests in pairs: <prefix>_recordings_<part>.jsonl.gz + <prefix>_supervisions_<part>.jsonl.gz
         (.jsonl too; <part> train/dev/test sets the split), or cut sets <prefix>_cuts_<part>.jsonl.gz;
         or name them with --recordings/--supervisions or --cuts"""

_SPLIT_NAMES = {"train": "train", "dev": "dev", "valid": "dev", "validation": "dev", "test": "test"}
_CUSTOM_FIELDS = ("summary", "dialect", "emotion", "source")
_CUT_TYPES = ("MonoCut", "MultiCut")
RELATIVE_TO = ("cwd", "manifest")
_LANGUAGES = {"arabic": "ar", "english": "en", "french": "fr", "german": "de", "spanish": "es", "mandarin": "zh",
              "chinese": "zh", "hindi": "hi", "korean": "ko", "vietnamese": "vi", "urdu": "ur", "persian": "fa",
              "turkish": "tr", "russian": "ru", "japanese": "ja", "italian": "it", "portuguese": "pt"}
"""Language names as lhotse's recipes write them (``language="Arabic"``) -> the manifest's codes."""
WHOLE_FILE = 1e-3
"""A span from 0 this close to the file's length is the whole file (manifests round durations to 1 ms)."""


@dataclass
class _Context:
    recs: dict[str, dict]
    base: Path
    """What relative source paths are resolved against."""
    labels: dict[str, LabelSet]
    language: str | None
    relative: int = 0
    """Relative source paths met (the report says how they were resolved)."""


# ----------------------------------------------------------------------------- import

def read(src: str | os.PathLike | None, report: SkipReport, *, recordings: str | None = None,
         supervisions: str | None = None, cuts: str | None = None, split: str | None = None,
         dialects: LabelSet = DIALECTS, emotions: LabelSet = EMOTIONS, source: str = "lhotse",
         language: str | None = None, relative_to: str = "cwd") -> Iterator[Row]:
    """One row per supervision of every manifest pair or cut set under ``src`` (or of the named
    files). ``language`` replaces every supervision's language when given."""
    if relative_to not in RELATIVE_TO:
        raise NabraError(f"relative_to must be one of {', '.join(RELATIVE_TO)}, got {relative_to!r}")
    labels = {"dialect": dialects, "emotion": emotions}
    contexts = []
    for kind, rec_path, path, part_split in _inputs(src, recordings, supervisions, cuts, split):
        base = Path.cwd() if relative_to == "cwd" else path.resolve().parent
        ctx = _Context(_load_recordings(rec_path) if rec_path else {}, base, labels, language)
        contexts.append(ctx)
        lines = _supervision_lines(path, report, ctx) if kind == "supervisions" else _cut_lines(path, report, ctx)
        for where, utt, problem in lines:
            if problem is not None:
                report.skip(where, *problem)
                continue
            utt.split = utt.split or part_split
            utt.source = utt.source or source
            yield Row(where, utt)
    relative = sum(c.relative for c in contexts)
    if relative:
        rule = ("the working directory, as lhotse does (--relative-to manifest: the manifest's folder)"
                if relative_to == "cwd" else "the manifest's folder (--relative-to manifest)")
        report.notes.append(f"{relative:,} relative recording path(s) resolved against {rule}: {contexts[0].base}")


def _inputs(src, recordings, supervisions, cuts, split) -> list[tuple[str, Path | None, Path, str | None]]:
    """(kind, recordings file or None, supervisions or cuts file, split) of every input."""
    if cuts:
        path = require_file(Path(cuts), LAYOUT)
        return [("cuts", None, path, split or _split_of(path.name, "cuts"))]
    if recordings or supervisions:
        if not (recordings and supervisions):
            raise NabraError("--recordings and --supervisions go together")
        sup = require_file(Path(supervisions), LAYOUT)
        return [("supervisions", require_file(Path(recordings), LAYOUT), sup, split or _split_of(sup.name))]
    src = require_dir(Path(src), LAYOUT)
    found = []
    for sup in sorted(p for p in src.iterdir() if "supervisions" in p.name and ".jsonl" in p.name):
        rec = require_file(sup.with_name(sup.name.replace("supervisions", "recordings")), LAYOUT)
        found.append(("supervisions", rec, sup, split or _split_of(sup.name)))
    if not found:  # cut sets only where there are no pairs: they usually hold the same supervisions
        found = [("cuts", None, p, split or _split_of(p.name, "cuts"))
                 for p in sorted(src.iterdir()) if "cuts" in p.name and ".jsonl" in p.name]
    if not found:
        raise NabraError(f"{src}: no *supervisions*.jsonl[.gz] or *cuts*.jsonl[.gz] files; expected layout:\n{LAYOUT}")
    return found


def _split_of(name: str, kind: str = "supervisions") -> str | None:
    tail = name.split(kind, 1)[-1]
    for token in re.split(r"[_.\-]", tail):
        if token.casefold() in _SPLIT_NAMES:
            return _SPLIT_NAMES[token.casefold()]
    return None


def _load_recordings(path: Path) -> dict[str, dict]:
    recs = {}
    for lineno, line in iter_lines(path, max_bytes=None):
        try:
            rec = decode_json(line)
            recs[str(rec["id"])] = rec
        except ManifestLineError as e:
            raise NabraError(f"{path}:{lineno}: not a Lhotse recording ({e})") from None
        except (KeyError, TypeError):
            raise NabraError(f"{path}:{lineno}: not a Lhotse recording (no id)") from None
    return recs


def _supervision_lines(path: Path, report: SkipReport, ctx: _Context):
    for _, where, line in counted_lines(path, report):
        try:
            sup = decode_json(line)
        except ManifestLineError as e:
            yield where, None, ("bad JSON", str(e))
            continue
        yield (where, *_utterance(sup, None, ctx))


def _cut_lines(path: Path, report: SkipReport, ctx: _Context):
    """Every supervision of every cut is a row (a cut without any is one row, skipped)."""
    for lineno, line in iter_lines(path, max_bytes=None):  # a long-form cut may hold thousands of supervisions
        where = f"{path.name}:{lineno}"
        try:
            cut = decode_json(line)
            sups = (cut.get("supervisions") or []) if isinstance(cut, dict) else None
        except ManifestLineError as e:
            cut, sups, problem = None, None, ("bad JSON", str(e))
        else:
            problem = (None if isinstance(sups, list) and all(isinstance(x, dict) for x in sups)
                       else ("not a Lhotse cut", display_line(line[:80])))
        if problem is None and cut.get("type", "MonoCut") not in _CUT_TYPES:
            problem = (f"cut of type {cut.get('type')!r} is not supported (mixed cuts have no single file)", cut.get("id"))
        if problem is None and not sups:
            problem = ("cut without supervisions", str(cut.get("id")))
        if problem is None and not isinstance(cut.get("recording"), dict):
            problem = ("cut without a recording", str(cut.get("id")))
        report.seen += len(sups) if problem is None else 1  # a cut's rows are its supervisions
        if problem is not None:
            yield where, None, problem
            continue
        ctx.recs = {str(cut["recording"].get("id")): cut["recording"]}
        for sup in sups:
            yield (f"{where} (supervision {sup.get('id')})", *_utterance(sup, cut, ctx))


def _utterance(sup, cut: dict | None, ctx: _Context) -> tuple[Utterance | None, tuple[str, str] | None]:
    """The utterance of one supervision (of ``cut``, whose start its own is relative to)."""
    if not isinstance(sup, dict):
        return None, ("not a Lhotse supervision", f"expected an object, got {type(sup).__name__}")
    try:
        return _read_supervision(sup, cut, ctx)
    except (KeyError, TypeError, ValueError, AttributeError) as e:  # a field of the wrong shape
        return None, ("not a Lhotse supervision", f"{type(e).__name__}: {e}")


def _read_supervision(sup: dict, cut: dict | None, ctx: _Context) -> tuple[Utterance | None, tuple[str, str] | None]:
    try:
        rid, start, duration = sup["recording_id"], float(sup["start"]), float(sup["duration"])
        uid = str(sup["id"])
        if cut is not None:  # the supervision's span in the recording, clipped to the cut
            cut_start, cut_end = float(cut["start"]), float(cut["start"]) + float(cut["duration"])
            end = min(cut_start + start + duration, cut_end)
            start = max(cut_start + start, cut_start)
            duration = end - start
    except (KeyError, TypeError, ValueError) as e:
        return None, ("not a Lhotse supervision", f"{type(e).__name__}: {e}")
    if duration <= 0:
        return None, ("supervision outside its cut", uid)
    rec = ctx.recs.get(str(rid))
    if rec is None:
        return None, ("recording not in the recordings manifest", str(rid))
    audio, problem = _audio_path(rec, sup.get("channel", 0), ctx)
    if problem is not None:
        return None, problem
    rec_duration = float(rec.get("duration", -1))
    whole = start == 0 and abs(duration - rec_duration) <= WHOLE_FILE
    custom = dict((cut or {}).get("custom") or {}) | dict(sup.get("custom") or {})
    fields = {f: custom.pop(f) for f in _CUSTOM_FIELDS if custom.get(f) is not None}
    for f in ("dialect", "emotion"):
        if f in fields:
            name = ctx.labels[f].lookup(fields[f])
            if name is None:
                return None, (f"unknown {f} label", str(fields[f]))
            fields[f] = name
    split = _SPLIT_NAMES.get(str(custom.pop("split", "")).casefold())
    extra = {"gender": sup["gender"]} if sup.get("gender") else {}
    extra.update(custom)
    language = ctx.language or sup.get("language")
    if isinstance(language, str):
        language = _LANGUAGES.get(language.casefold(), language)
    # Full precision: lhotse's times are exact sample positions; the whole file keeps no duration to round.
    utt = Utterance(id=uid, audio=audio, offset=0.0 if whole else start, duration=rec_duration if whole else duration,
                    language=language, transcript=sup.get("text") or None,
                    speaker=sup.get("speaker"), split=split, extra=extra, **fields)
    return utt, None


def _audio_path(rec: dict, channel, ctx: _Context) -> tuple[str | None, tuple[str, str] | None]:
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
        path = str(source["source"])
        if os.path.isabs(path):
            return path, None
        ctx.relative += 1
        return str(ctx.base / path), None
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
            "duration": info.frames / info.sample_rate, "channel_ids": channels}


def _supervision_dict(utt: Utterance, rid: str, info: AudioInfo) -> dict:
    whole = info.frames / info.sample_rate
    duration = utt.duration if utt.duration is not None else whole - utt.offset
    if not utt.offset and abs(duration - whole) <= WHOLE_FILE:
        duration = whole  # the whole file: its exact length, not the manifest's rounded one
    extra = dict(utt.extra)
    sup = {"id": utt.id, "recording_id": rid, "start": utt.offset, "duration": duration,
           "channel": 0 if info.channels == 1 else list(range(info.channels)),
           "text": utt.transcript, "language": utt.language, "speaker": utt.speaker,
           "gender": extra.pop("gender", None)}
    custom = {f: getattr(utt, f) for f in _CUSTOM_FIELDS if getattr(utt, f) is not None} | extra
    if custom:
        sup["custom"] = custom
    return {k: v for k, v in sup.items() if v is not None}
