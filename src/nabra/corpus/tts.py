"""Speech synthesis for the generated corpora: eSpeak NG (the synthetic corpus, ``nabra synth``,
and speech summarization, ``nabra ssum build``) or any TTS program run as a command.

Every backend gives mono float32 samples at 16 kHz with the silence at both ends trimmed, so that
the pauses a builder plans between sentences are the only ones.
"""

from __future__ import annotations

import io
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from xml.sax.saxutils import escape

import numpy as np
import soundfile as sf
import soxr

from nabra.corpus.audio import SAMPLE_RATE, load_audio
from nabra.errors import AudioError, NabraError

ESPEAK = "espeak-ng"
_NO_ESPEAK = "eSpeak NG not found: apt-get install espeak-ng"
COMMAND_TIMEOUT_S = 600
"""Seconds a TTS command may take for one sentence."""
TRIM_THRESHOLD = 0.005  # ~ -46 dBFS: eSpeak pads ~0.35 s of near-silence at the end of each clip
TRIM_PAD_S = 0.05

# Speaker-disjoint splits: test holds the voices the FACTS calibration held out; dev takes one
# more male and one more female voice, so both held-out sets have each sex.
SPLIT_VOICES: dict[str, tuple[str, ...]] = {
    "train": ("ar+m1", "ar+m2", "ar+m3", "ar+m5", "ar+m7", "ar+f1", "ar+f2", "ar+f4"),
    "dev": ("ar+m6", "ar+f5"),
    "test": ("ar+m4", "ar+f3"),
}


@dataclass(frozen=True)
class Prosody:
    """eSpeak settings of one emotion: ``-p`` pitch, ``-s`` speed (wpm), ``-a`` amplitude, SSML range."""

    pitch: int
    speed: int
    amplitude: int
    range: str


# Calibrated in FACTS.md ("What a tiny thinker learns"): a 0.6 M thinker tells these apart in a minute.
PROSODY: dict[str, Prosody] = {
    "neutral": Prosody(50, 160, 100, "medium"),
    "happy": Prosody(68, 190, 125, "x-high"),
    "sad": Prosody(30, 115, 65, "x-low"),
    "angry": Prosody(42, 200, 145, "high"),
    "surprised": Prosody(85, 150, 115, "x-high"),
}
JITTER = Prosody(5, 10, 10, "")  # uniform +- per clip, so no two clips of a class sound the same
MAX_AMPLITUDE = 150  # eSpeak clips above this


def espeak_available() -> bool:
    """Whether the eSpeak NG executable is on the PATH."""
    return shutil.which(ESPEAK) is not None


def require_espeak() -> None:
    """Raise a :class:`NabraError` with the install line when eSpeak NG is missing."""
    if not espeak_available():
        raise NabraError(_NO_ESPEAK)


def _espeak_wav(text: str, voice: str, prosody: Prosody, name: str) -> bytes:
    ssml = f'<speak><prosody range="{prosody.range}">{escape(text)}</prosody></speak>'
    cmd = [ESPEAK, "-m", "--stdin", "--stdout", "-v", voice,
           "-p", str(prosody.pitch), "-s", str(prosody.speed), "-a", str(prosody.amplitude)]  # fmt: skip
    try:
        done = subprocess.run(cmd, input=ssml.encode("utf-8"), capture_output=True, check=False)
    except FileNotFoundError:
        raise NabraError(_NO_ESPEAK) from None
    if done.returncode != 0 or len(done.stdout) <= 44:  # 44 = a WAV header without samples
        err = done.stderr.decode("utf-8", "replace").strip() or f"exit status {done.returncode}, no audio"
        raise NabraError(f"{name}: eSpeak NG failed: {err}")
    return done.stdout


def trim_silence(samples: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """``samples`` without the near-silence at both ends (a short pad of it kept)."""
    loud = np.flatnonzero(np.abs(samples) > TRIM_THRESHOLD)
    if loud.size == 0:
        return samples
    pad = int(TRIM_PAD_S * sr)
    return samples[max(0, loud[0] - pad) : loud[-1] + pad + 1]


def espeak(text: str, voice: str, prosody: Prosody, *, name: str = "eSpeak") -> np.ndarray:
    """Speak ``text`` with eSpeak NG (``voice``, ``prosody``): mono float32 samples at 16 kHz, end
    silences trimmed. ``name`` (a clip id) is named in errors."""
    # eSpeak streams to stdout, so its header gives a placeholder length; libsndfile reads to the end.
    samples, sr = sf.read(io.BytesIO(_espeak_wav(text, voice, prosody, name)), dtype="float32")
    if samples.ndim > 1:
        samples = samples.mean(axis=1)
    if sr != SAMPLE_RATE:
        samples = soxr.resample(samples, sr, SAMPLE_RATE, quality="HQ")
    return trim_silence(samples, SAMPLE_RATE)


class TTS(Protocol):
    """A speech synthesizer: ``tts(text, voice)`` -> mono float32 samples at 16 kHz."""

    key: str
    """What, besides text and voice, decides the audio (part of every document's plan digest)."""

    def __call__(self, text: str, voice: str) -> np.ndarray: ...


class TTSError(NabraError):
    """A TTS call that failed for one document: ``reason`` groups skips, ``detail`` tells which."""

    def __init__(self, reason: str, detail: str = ""):
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class EspeakTTS:
    """eSpeak NG in the neutral prosody of the synthetic corpus, without jitter."""

    key = "espeak-ng:neutral"

    def __call__(self, text: str, voice: str) -> np.ndarray:
        return espeak(text, voice, PROSODY["neutral"], name=voice)

    def check(self, voices: tuple[str, ...]) -> None:
        """Fail now, not on every document, when eSpeak NG or one of the voices is missing."""
        require_espeak()
        for voice in voices:
            try:
                self("نعم", voice)
            except NabraError as e:
                raise NabraError(f"eSpeak NG cannot speak with voice {voice!r}: {e}") from None


@dataclass(frozen=True)
class CommandTTS:
    """Any program that writes a WAV: ``{wav}`` (output), ``{txt}`` (a UTF-8 file holding the text),
    ``{voice}``; the text also comes on stdin. Run without a shell, one call per sentence."""

    command: str

    @property
    def key(self) -> str:
        return f"command:{self.command}"

    def check(self, voices: tuple[str, ...]) -> None:
        """The command parses, names ``{wav}``, and its program exists."""
        del voices
        try:
            args = shlex.split(self.command)
        except ValueError as e:
            raise NabraError(f"--tts-command does not parse: {e}") from None
        if not args or not any("{wav}" in a for a in args):
            raise NabraError(f"--tts-command must name the output as {{wav}}: {self.command!r}")
        if shutil.which(args[0]) is None:
            raise NabraError(f"--tts-command: program not found: {args[0]}")

    def __call__(self, text: str, voice: str) -> np.ndarray:
        with tempfile.TemporaryDirectory(prefix="nabra-tts-") as tmp:
            txt, wav = Path(tmp) / "text.txt", Path(tmp) / "speech.wav"
            txt.write_text(text + "\n", encoding="utf-8")
            # Placeholders are filled per argument after splitting, so paths with spaces stay whole
            # and braces elsewhere in the command (JSON, say) are left alone.
            fill = {"{wav}": str(wav), "{txt}": str(txt), "{voice}": voice}
            args = [_fill(a, fill) for a in shlex.split(self.command)]
            _run_command(args, text)
            if not wav.is_file():
                raise TTSError("TTS command wrote no WAV", f"{self.command!r} exited 0 without writing {{wav}}")
            try:
                samples = load_audio(wav)
            except AudioError as e:
                raise TTSError("TTS command wrote unreadable audio", e.reason) from None
        # TTS engines pad silence at both ends: trimmed, the pauses between sentences are the planned ones.
        return trim_silence(samples, SAMPLE_RATE)


def _fill(arg: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        arg = arg.replace(name, value)
    return arg


def _run_command(args: list[str], text: str) -> None:
    try:
        done = subprocess.run(args, input=text.encode("utf-8"), capture_output=True,
                              timeout=COMMAND_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise TTSError("TTS command timed out", f"after {COMMAND_TIMEOUT_S} s") from None
    except OSError as e:
        raise TTSError("TTS command could not run", str(e)) from None
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip()[-2000:]  # the end holds the error
        raise TTSError("TTS command failed", f"exit status {done.returncode}: {err or 'no stderr'}")
