"""Noise and impulse-response collections for ``data.augment`` and robustness conditions: MUSAN, RIRS_NOISES,
or any folder of audio, listed as *recordings* (one JSON object a line) and read a segment at a time.

A recordings list is not a training manifest: its lines serve no task. ``nabra data import musan`` and
``nabra data import rirs`` write one; ``data.augment.noise.recordings`` and ``data.augment.reverb.rirs`` (and
an evaluation condition's ``source=``) take lists or folders.

The layouts are the releases' own, read as lhotse's recipes read them (``lhotse/recipes/musan.py``,
``lhotse/recipes/rir_noise.py``), so the ids are lhotse's:

- **MUSAN** (openslr 17): ``musan/{music,noise,speech}/<subset>/<id>.wav``, 16 kHz mono; subsets
  ``music/{fma,fma-western-art,hd-classical,jamendo,rfm}``, ``noise/{free-sound,sound-bible}``,
  ``speech/{librivox,us-gov}``. A subset's ``ANNOTATIONS`` file: music ``<id> <genres> <vocals Y/N> <artist>``,
  speech ``<id> <gender m/f> <language>`` (``speech/us-gov`` has none; audiomate's MusanReader reads four and three
  columns). The id is the file's stem.
- **RIRS_NOISES** (openslr 28): ``RIRS_NOISES/simulated_rirs/{small,medium,large}room/RoomNNN/RoomNNN-NNNNN.wav``
  (ids ``<size>-<stem>``: the three sizes reuse file names), ``real_rirs_isotropic_noises/*.wav`` (the folder's
  Kaldi ``rir_list`` and ``noise_list`` say which file is an impulse response and which an isotropic noise; without
  them lhotse's rule, ``rir`` or ``noise`` in the name; some files are multichannel),
  ``pointsource_noises/*.wav`` (MUSAN's free-sound noises).
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from nabra.corpus.audio import AudioError, audio_info, load_audio
from nabra.corpus.manifest import iter_lines, open_text
from nabra.errors import NabraError
from nabra.files import atomic_path

KINDS = ("noise", "music", "speech", "rir")
"""What a recording is: something to add (noise, music, speech) or an impulse response to convolve with."""
MUSAN_PARTS = ("music", "noise", "speech")
MUSAN_LAYOUT = """\
  SRC/{music,noise,speech}/<subset>/<id>.wav      (MUSAN, openslr 17: SRC is the musan/ folder)
  SRC/<part>/<subset>/ANNOTATIONS                  (music: id genres vocals artist; speech: id gender language)"""
RIRS_LAYOUT = """\
  SRC/simulated_rirs/{small,medium,large}room/RoomNNN/RoomNNN-NNNNN.wav   (RIRS_NOISES, openslr 28)
  SRC/real_rirs_isotropic_noises/*.wav     (rir_list / noise_list say which; else 'rir' / 'noise' in the name)
  SRC/pointsource_noises/*.wav             (point-source noises)"""
ROOM_SIZES = ("small", "medium", "large")


@dataclass
class Recording:
    """One line of a recordings list."""

    id: str
    audio: str
    """Absolute path of the audio file."""
    duration: float
    kind: str
    """One of :data:`KINDS`."""
    part: str = ""
    """The release's part (MUSAN: music/noise/speech; RIRS_NOISES: lhotse's sim_rir/real_rir/iso_noise/point_noise)."""
    subset: str = ""
    """The folder under the part (MUSAN: fma, free-sound, librivox, ...; simulated RIRs: the room size)."""
    channels: int = 1
    sample_rate: int = 16_000
    extra: dict = field(default_factory=dict)
    """The release's annotations (music: genres, vocals, artist; speech: gender, language)."""

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(d.pop("extra"))
        return d


@dataclass
class ListReport:
    """What a recordings import found and left out (every file counted)."""

    found: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self, written: int) -> str:
        lines = [f"listed {written:,} of {self.found:,} audio files"]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped):,}:")
            lines += [f"  {where}: {why}" for where, why in self.skipped[:20]]
            if len(self.skipped) > 20:
                lines.append(f"  ... and {len(self.skipped) - 20:,} more")
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


# ============================================================================================
# reading the releases
# ============================================================================================

def _recording(path: Path, report: ListReport, *, id: str, kind: str, part: str, subset: str,
               extra: dict | None = None) -> Recording | None:
    report.found += 1
    try:
        info = audio_info(path)
    except AudioError as e:
        report.skipped.append((str(path), e.reason))
        return None
    if not info.frames:
        report.skipped.append((str(path), "no samples"))
        return None
    return Recording(id, str(path.resolve()), round(info.duration, 3), kind, part, subset, info.channels,
                     info.sample_rate, dict(extra or {}))


def _annotations(path: Path, fields: tuple[str, ...]) -> dict[str, dict]:
    """``<id> <field>...`` per line of an ANNOTATIONS file, split on whitespace into at most ``len(fields) + 1``
    columns, so the last field keeps its spaces (music's artist, "Some Band": audiomate's MusanReader reads it so;
    lhotse's recipe keeps its first word). A subset without the file (the release's ``speech/us-gov``) has none."""
    out = {}
    if not path.is_file():
        return out
    for _, line in iter_lines(path, max_bytes=None):
        parts = line.split(None, len(fields))
        if parts:
            out[parts[0]] = dict(zip(fields, parts[1:], strict=False))
    return out


def read_musan(root: str | os.PathLike, report: ListReport, parts: Iterable[str] = MUSAN_PARTS) -> Iterator[Recording]:
    """The recordings of a MUSAN release (:data:`MUSAN_LAYOUT`), part by part, with their annotations."""
    root = Path(root)
    if not root.is_dir():
        raise NabraError(f"{root}: not a folder; expected the MUSAN release:\n{MUSAN_LAYOUT}")
    parts = list(parts)
    unknown = sorted(set(parts) - set(MUSAN_PARTS))
    if unknown:
        raise NabraError(f"unknown MUSAN part(s) {', '.join(unknown)}; parts: {', '.join(MUSAN_PARTS)}")
    present = [p for p in parts if (root / p).is_dir()]
    if not present:
        raise NabraError(f"{root}: none of the MUSAN parts ({', '.join(parts)}) is here; expected:\n{MUSAN_LAYOUT}")
    for p in sorted(set(parts) - set(present)):
        report.notes.append(f"{root / p}: not found (part left out)")
    fields = {"music": ("genres", "vocals", "artist"), "speech": ("gender", "language"), "noise": ()}
    for part in present:
        for subset in sorted(d for d in (root / part).iterdir() if d.is_dir()):
            notes = _annotations(subset / "ANNOTATIONS", fields[part]) if fields[part] else {}
            for path in sorted(subset.rglob("*.wav")):
                extra = dict(notes.get(path.stem, {}))
                if "genres" in extra:
                    extra["genres"] = extra["genres"].split(",")
                if "vocals" in extra:
                    extra["vocals"] = extra["vocals"] == "Y"
                rec = _recording(path, report, id=path.stem, kind=part, part=part, subset=subset.name, extra=extra)
                if rec is not None:
                    yield rec


def read_rirs(root: str | os.PathLike, report: ListReport) -> Iterator[Recording]:
    """The impulse responses and noises of a RIRS_NOISES release (:data:`RIRS_LAYOUT`)."""
    root = Path(root)
    if not root.is_dir():
        raise NabraError(f"{root}: not a folder; expected the RIRS_NOISES release:\n{RIRS_LAYOUT}")
    sim, real, point = root / "simulated_rirs", root / "real_rirs_isotropic_noises", root / "pointsource_noises"
    if not any(d.is_dir() for d in (sim, real, point)):
        raise NabraError(f"{root}: no RIRS_NOISES folder here; expected:\n{RIRS_LAYOUT}")
    for size in ROOM_SIZES:
        for path in sorted((sim / f"{size}room").rglob("*.wav")):
            rec = _recording(path, report, id=f"{size}-{path.stem}", kind="rir", part="sim_rir", subset=f"{size}room",
                             extra={"room": f"{size}-{path.parent.name}"})
            if rec is not None:
                yield rec
    listed = {**_kaldi_list(real / "rir_list", "--rir-id", "--room-id"),
              **_kaldi_list(real / "noise_list", "--noise-id", "--room-linkage")}
    for path in sorted(real.glob("*.wav")) if real.is_dir() else ():
        # The release's own lists first (Kaldi's rir_list / noise_list); lhotse's rule by name where they are absent
        # (that rule alone leaves out the AIR responses, air_type1_air_binaural_*.wav: no 'rir' in their names).
        entry = listed.get(path.name)
        if entry is not None:
            kind, room = entry
        else:
            kind, room = ("rir" if "rir" in path.stem else "noise" if "noise" in path.stem else None), None
        if kind is None:
            report.found += 1
            report.skipped.append((str(path), "in neither rir_list nor noise_list, and neither 'rir' nor 'noise' "
                                              "in the name"))
            continue
        rec = _recording(path, report, id=path.stem, kind=kind, part="real_rir" if kind == "rir" else "iso_noise",
                         subset="real_rirs_isotropic_noises", extra={"room": room} if room else None)
        if rec is not None:
            yield rec
    for path in sorted(point.rglob("*.wav")) if point.is_dir() else ():
        rec = _recording(path, report, id=path.stem, kind="noise", part="point_noise", subset="pointsource_noises")
        if rec is not None:
            yield rec


def _kaldi_list(path: Path, id_flag: str, room_flag: str) -> dict[str, tuple[str, str | None]]:
    """File name -> (kind, room) of a RIRS_NOISES list: ``--rir-id ID --room-id ROOM ... PATH`` (rir_list) or
    ``--noise-id ID --noise-type isotropic ... --room-linkage ROOM PATH`` (noise_list), one per line."""
    out: dict[str, tuple[str, str | None]] = {}
    if not path.is_file():
        return out
    kind = "rir" if id_flag == "--rir-id" else "noise"
    for _, line in iter_lines(path, max_bytes=None):
        tokens = line.split()
        if not tokens or id_flag not in tokens:
            continue
        room = tokens[tokens.index(room_flag) + 1] if room_flag in tokens[:-1] else None
        out[Path(tokens[-1]).name] = (kind, room)
    return out


def read_folder(root: str | os.PathLike, kind: str, report: ListReport) -> Iterator[Recording]:
    """Every audio file under ``root`` as a recording of ``kind`` (id: the path under ``root``)."""
    from nabra.corpus.importers.common import audio_files

    root = Path(root)
    for path in audio_files(root):
        rec = _recording(path, report, id=path.relative_to(root).with_suffix("").as_posix(), kind=kind, part="folder",
                         subset=path.parent.relative_to(root).as_posix())
        if rec is not None:
            yield rec


# ============================================================================================
# the list file
# ============================================================================================

def write_recordings(path: str | os.PathLike, recordings: Iterable[Recording], *, force: bool = False) -> int:
    """Write a recordings list (atomically); an existing file is replaced only with ``force``."""
    path = Path(path)
    if path.exists() and not force:
        raise NabraError(f"{path}: exists; pass --force to replace it")
    n = 0
    with atomic_path(path) as tmp, open_text(tmp, "w") as f:
        for rec in recordings:
            f.write(json.dumps(rec.to_dict(), ensure_ascii=False) + "\n")
            n += 1
    return n


_FIELDS = {"id", "audio", "duration", "kind", "part", "subset", "channels", "sample_rate"}


def read_recordings(path: str | os.PathLike) -> list[Recording]:
    """A recordings list; a line that is not one is an error naming the file and line. Relative audio paths
    are relative to the list's folder."""
    path = Path(path)
    out = []
    for lineno, line in iter_lines(path, max_bytes=None):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
            missing = [k for k in ("id", "audio", "duration", "kind") if k not in obj]
            if missing:
                raise ValueError(f"no {', '.join(missing)} (a recordings list from `nabra data import musan|rirs`?)")
            if obj["kind"] not in KINDS:
                raise ValueError(f"kind {obj['kind']!r} is not one of {', '.join(KINDS)}")
            audio = Path(obj["audio"])
            rec = Recording(str(obj["id"]), str(audio if audio.is_absolute() else path.parent / audio),
                            float(obj["duration"]), obj["kind"], str(obj.get("part", "")), str(obj.get("subset", "")),
                            int(obj.get("channels", 1)), int(obj.get("sample_rate", 16_000)),
                            {k: v for k, v in obj.items() if k not in _FIELDS})
        except (ValueError, TypeError) as e:
            raise NabraError(f"{path}:{lineno}: not a recording line: {e}") from None
        out.append(rec)
    return out


def collection(paths: Iterable[str | os.PathLike], kinds: Iterable[str], *, folder_kind: str) -> list[Recording]:
    """The recordings of ``paths`` (each a recordings list, or a folder of audio read as ``folder_kind``) whose
    kind is one of ``kinds``. An empty result is an error naming the paths."""
    kinds, out = set(kinds), []
    paths = [Path(p) for p in paths]
    for p in paths:
        if p.is_dir():
            report = ListReport()
            out += list(read_folder(p, folder_kind, report))
        elif p.is_file():
            out += read_recordings(p)
        else:
            raise NabraError(f"{p}: no such recordings list or folder")
    kept = [r for r in out if r.kind in kinds]
    if not kept:
        raise NabraError(f"{', '.join(map(str, paths))}: no recording of kind {', '.join(sorted(kinds))} "
                         f"(found {len(out):,} of other kinds)")
    return kept


# ============================================================================================
# reading segments
# ============================================================================================

def fit_length(noise: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``noise`` cut or tiled to ``n`` samples, from a random start (a recording shorter than the clip loops)."""
    if not noise.size:
        raise NabraError("a noise recording with no samples")
    if noise.size >= n:
        start = int(rng.integers(0, noise.size - n + 1))
        return noise[start:start + n]
    reps = -(-n // noise.size)
    start = int(rng.integers(0, noise.size))
    return np.tile(noise, reps + 1)[start:start + n]



class NoiseBank:
    """Noise recordings a segment at a time: a clip-long stretch from a random start of a random recording
    (read from disk with an offset, so a 40-minute music file is never decoded whole)."""

    def __init__(self, recordings: list[Recording], sample_rate: int = 16_000):
        if not recordings:
            raise NabraError("a noise bank with no recordings")
        self.recordings, self.sample_rate = recordings, sample_rate

    def __len__(self) -> int:
        return len(self.recordings)

    def hours(self) -> float:
        return sum(r.duration for r in self.recordings) / 3600

    def segment(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` samples of one recording (looped when it is shorter)."""
        rec = self.recordings[int(rng.integers(len(self.recordings)))]
        seconds = n / self.sample_rate
        if rec.duration > seconds + 0.01:
            start = float(rng.uniform(0.0, rec.duration - seconds - 0.01))
            wave = load_audio(rec.audio, offset=round(start, 3), duration=seconds, sample_rate=self.sample_rate)
        else:
            wave = load_audio(rec.audio, sample_rate=self.sample_rate)
        if not wave.size:
            raise NabraError(f"{rec.audio}: noise recording with no samples")
        return fit_length(wave, n, rng)


class RirBank:
    """Impulse responses, decoded on first use and kept (a least-recently-used cache of ``cache`` of them: the tens
    of thousands of simulated RIRs of RIRS_NOISES would take gigabytes decoded). A multichannel response gives its
    first channel: the channels are different microphones, and their average is no room."""

    def __init__(self, recordings: list[Recording], sample_rate: int = 16_000, cache: int = 2048):
        if not recordings:
            raise NabraError("an impulse-response bank with no recordings")
        self.recordings, self.sample_rate, self.cache = recordings, sample_rate, cache
        self._decoded: OrderedDict[str, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self.recordings)

    def rir(self, rng: np.random.Generator) -> np.ndarray:
        rec = self.recordings[int(rng.integers(len(self.recordings)))]
        wave = self._decoded.get(rec.audio)
        if wave is None:
            wave = load_audio(rec.audio, sample_rate=self.sample_rate, channel=0)
            peak = int(np.argmax(np.abs(wave))) if wave.size else 0
            wave = wave[max(0, peak - self.sample_rate // 1000):]  # from its direct path (Kaldi's wav-reverberate --shift-output)
            if not wave.size or not np.any(wave):
                raise NabraError(f"{rec.audio}: impulse response with no samples")
            self._decoded[rec.audio] = wave
            if len(self._decoded) > self.cache:
                self._decoded.popitem(last=False)
        else:
            self._decoded.move_to_end(rec.audio)
        return wave


class ArrayBank:
    """Noises or impulse responses already in memory (tests, and callers that read their own)."""

    def __init__(self, waves: list[np.ndarray]):
        self.waves = [np.asarray(w, dtype=np.float32) for w in waves]

    def __len__(self) -> int:
        return len(self.waves)

    def segment(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return fit_length(self.waves[int(rng.integers(len(self.waves)))], n, rng)

    def rir(self, rng: np.random.Generator) -> np.ndarray:
        return self.waves[int(rng.integers(len(self.waves)))]
