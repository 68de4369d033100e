"""Audio I/O: every file becomes mono float32 at 16 kHz, through this one loader.

soundfile (libsndfile: wav, flac, ogg/vorbis, opus, mp3) reads what it can; PyAV (FFmpeg, the
``av`` extra) takes over for the rest (m4a, aac, opus in old libsndfile builds). Resampling is
soxr. Errors are :class:`~nabra.errors.AudioError` and name the file.
"""

from __future__ import annotations

import errno
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from nabra.errors import AudioError

SAMPLE_RATE = 16_000
DURATION_TOLERANCE = 0.05
"""Seconds a manifest's duration may differ from the audio's: header rounding and resampling differ by a few ms."""
MAX_SAMPLE_RATE = 192_000
"""Highest sample rate accepted (studio audio is at most 192 kHz): a header claiming more is refused
before decoding, so that a small file cannot make the decoder allocate gigabytes."""
MAX_CHANNELS = 8
"""Most channels accepted (7.1 surround)."""
_BLOCK = 1 << 16
"""Frames decoded at a time: the file is downmixed and resampled block by block, so memory holds one
block of all channels plus the 16-kHz mono result, whatever the file's rate and channel count."""


@dataclass(frozen=True)
class AudioInfo:
    """What the file header says, without decoding the samples."""

    sample_rate: int
    frames: int
    channels: int

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def _check_exists(path: Path) -> None:
    try:
        path.stat()
    except OSError as e:  # the real reason: a loop of symbolic links is not "not found"
        raise AudioError(path, "audio file not found" if e.errno == errno.ENOENT else
                         f"cannot read the audio file ({e.strerror or e})") from None
    if not path.is_file():
        raise AudioError(path, "audio path is not a file")
    if not os.access(path, os.R_OK):  # libsndfile would only say "System error."
        raise AudioError(path, "cannot read the audio file (permission denied)")


def _check_bounds(path: Path, sample_rate: int, channels: int) -> None:
    """Refuse what a header claims beyond :data:`MAX_SAMPLE_RATE` and :data:`MAX_CHANNELS`."""
    if sample_rate > MAX_SAMPLE_RATE:
        raise AudioError(path, f"sample rate {sample_rate:,} Hz is above the {MAX_SAMPLE_RATE:,} Hz Nabra accepts")
    if channels > MAX_CHANNELS:
        raise AudioError(path, f"{channels} channels: more than the {MAX_CHANNELS} Nabra accepts")


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Sample rate, frame count and channels from the header (no full decode)."""
    path = Path(path)
    _check_exists(path)
    try:
        sf_info = sf.info(str(path))
        info = AudioInfo(int(sf_info.samplerate), int(sf_info.frames), int(sf_info.channels))
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        info = _av_info(path)
        if info is None:
            raise AudioError(path, f"not a readable audio file ({_reason(e)})") from None
    _check_bounds(path, info.sample_rate, info.channels)
    return info


def probe_duration(path: str | os.PathLike) -> float:
    """Duration in seconds, from the header."""
    return audio_info(path).duration


def load_audio(
    path: str | os.PathLike,
    *,
    offset: float = 0.0,
    duration: float | None = None,
    sample_rate: int = SAMPLE_RATE,
    channel: int | None = None,
) -> np.ndarray:
    """Decode ``path`` (or the segment ``offset``..``offset+duration`` seconds) to mono float32 at
    ``sample_rate``. Stereo is averaged (``channel``: that channel instead, e.g. one microphone of a
    multichannel impulse response); other rates are resampled with soxr.

    The span is a segment whenever ``offset`` is non-zero or ``duration`` is shorter than the file (a
    Kaldi ``segments`` line or a lhotse supervision starting at 0.00); a ``duration`` within
    :data:`DURATION_TOLERANCE` of the whole file's is the whole file (a manifest's rounded value)."""
    path = Path(path)
    _check_exists(path)
    try:
        with sf.SoundFile(str(path)) as f:
            _check_bounds(path, f.samplerate, f.channels)
            if channel is not None and not 0 <= channel < f.channels:
                raise AudioError(path, f"no channel {channel} (the file has {f.channels})")
            return _read_blocks(path, f, offset, duration, sample_rate, channel)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        data, sr = _av_load(path, e)
    start = int(round(offset * sr))
    stop = None if _whole(offset, duration, len(data) / sr) else start + int(round(duration * sr))
    samples = data[start:stop, 0]  # av decodes to mono (a channel pick needs a libsndfile format)
    if sr != sample_rate and samples.size:
        samples = soxr.resample(samples, sr, sample_rate, quality="HQ")
    return np.ascontiguousarray(samples, dtype=np.float32)


def _read_blocks(path: Path, f: sf.SoundFile, offset: float, duration: float | None, sample_rate: int,
                 channel: int | None = None) -> np.ndarray:
    """The span of the open file ``f``, decoded, downmixed and resampled :data:`_BLOCK` frames at a
    time (soxr's stream gives the same samples as resampling the whole at once)."""
    sr = f.samplerate
    start = int(round(offset * sr))
    if start > f.frames:
        raise AudioError(path, f"offset {offset:.3f} s is past the end of the audio ({f.frames / sr:.3f} s)")
    f.seek(start)
    left = f.frames - start if _whole(offset, duration, f.frames / sr) else int(round(duration * sr))
    stream = soxr.ResampleStream(sr, sample_rate, 1, dtype="float32", quality="HQ") if sr != sample_rate else None
    parts = []
    while True:
        block = f.read(min(_BLOCK, max(left, 0)), dtype="float32", always_2d=True)
        left -= len(block)
        last = left <= 0 or len(block) == 0
        mono = block[:, channel] if channel is not None else block.mean(axis=1) if block.shape[1] > 1 else block[:, 0]
        parts.append(stream.resample_chunk(mono, last=last) if stream is not None else mono)
        if last:
            break
    samples = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return np.ascontiguousarray(samples, dtype=np.float32)


def _whole(offset: float, duration: float | None, file_seconds: float) -> bool:
    """Whether ``offset``/``duration`` name the whole file rather than a segment of it."""
    return duration is None or (not offset and abs(duration - file_seconds) <= DURATION_TOLERANCE)


def save_wav(path: str | os.PathLike, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write mono 16-bit PCM WAV."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(samples, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")


def check_samples(path: str | os.PathLike, samples: np.ndarray) -> None:
    """Raise :class:`AudioError` if decoded samples are empty or hold NaN/Inf."""
    if samples.size == 0:
        raise AudioError(path, "audio has zero length")
    if not np.isfinite(samples).all():
        bad = int((~np.isfinite(samples)).sum())
        raise AudioError(path, f"audio holds {bad} NaN or Inf samples")


def _reason(e: Exception) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return msg.replace(str(getattr(e, "name", "")), "").strip(" :") or type(e).__name__


def _av_info(path: Path) -> AudioInfo | None:
    try:
        import av
    except ImportError:
        return None
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                return None
            stream = container.streams.audio[0]
            sr = stream.codec_context.sample_rate or stream.rate
            if stream.duration is not None and stream.time_base is not None:
                seconds = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                seconds = container.duration / 1_000_000
            else:
                return None
            return AudioInfo(int(sr), int(math.floor(seconds * sr)), int(stream.codec_context.channels or 1))
    except Exception:  # noqa: BLE001 - any FFmpeg failure means "not audio we can read"
        return None


def _av_load(path: Path, sf_error: Exception) -> tuple[np.ndarray, int]:
    try:
        import av
    except ImportError:
        raise AudioError(path, f"not a readable audio file ({_reason(sf_error)}); "
                         "for formats libsndfile lacks, install the 'av' extra") from None
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioError(path, "file has no audio stream")
            stream = container.streams.audio[0]
            sr = stream.codec_context.sample_rate
            _check_bounds(path, int(sr or 0), int(stream.codec_context.channels or 1))
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sr)
            chunks = [
                out.to_ndarray().reshape(-1)
                for frame in container.decode(stream)
                for out in resampler.resample(frame)
            ]
            chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    except AudioError:
        raise
    except Exception as e:  # noqa: BLE001
        raise AudioError(path, f"not a readable audio file ({_reason(sf_error)}; FFmpeg: {e})") from None
    data = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return data[:, None].astype(np.float32, copy=False), int(sr)
