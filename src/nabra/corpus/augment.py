"""Audio augmentation for training: speed perturbation, room reverberation, additive noise at an SNR, gain.

The signal work is the field's libraries': soxr resamples (speed perturbation as Kaldi's and lhotse's
``speed`` does it: the clip is read as if recorded at ``factor`` times the rate, then resampled back, so a
factor of 1.1 is 1/1.1 as long and higher-pitched), scipy's FFT convolution applies an impulse response,
numpy's FFT shapes coloured noise. Every draw comes from one generator seeded by ``(seed, example id,
epoch)`` (:func:`rng_for`): the same example in the same epoch of the same run is the same audio, bit for
bit, after a resume or on another machine; another epoch is another draw.

The order is the usual one (Kaldi's ``reverberate_data_dir.py``, lhotse's cut transforms): speed first (it
changes the length), then the room, then the noise the microphone hears on top, then the gain.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from nabra.errors import NabraError

SAMPLE_RATE = 16_000


@dataclass
class SpeedConfig:
    """Speed perturbation: the clip's tempo and pitch scaled by a factor drawn from ``factors``."""

    prob: float = 0.0
    """Share of the training clips perturbed."""
    factors: list[float] = field(default_factory=lambda: [0.9, 1.0, 1.1])
    """Factors drawn from, uniformly (Kaldi's three-way perturbation by default; 1.1 is shorter)."""


@dataclass
class ReverbConfig:
    """Room reverberation: the clip convolved with an impulse response."""

    prob: float = 0.0
    """Share of the training clips reverberated."""
    rt60: list[float] = field(default_factory=lambda: [0.2, 0.8])
    """Reverberation time range (seconds) of the synthetic impulse responses, drawn uniformly."""


@dataclass
class NoiseConfig:
    """Additive noise at a signal-to-noise ratio drawn from a range."""

    prob: float = 0.0
    """Share of the training clips with noise added."""
    snr: list[float] = field(default_factory=lambda: [5.0, 20.0])
    """SNR range in dB (signal power over noise power, over the whole clip), drawn uniformly."""
    sources: list[str] = field(default_factory=lambda: ["coloured", "babble"])
    """Noises drawn from, uniformly: ``coloured`` (synthetic, one of ``colours``) and ``babble`` (up to four other
    speakers of the clip's micro-batch, summed at equal power; coloured noise where the micro-batch has none)."""
    colours: list[str] = field(default_factory=lambda: ["white", "pink", "brown"])
    """Synthetic noise colours drawn from (1/f^0, 1/f^1, 1/f^2 power spectra)."""


@dataclass
class GainConfig:
    """A gain in dB drawn from a range."""

    prob: float = 0.0
    """Share of the training clips whose level is changed."""
    db: list[float] = field(default_factory=lambda: [-6.0, 6.0])
    """Gain range in dB, drawn uniformly."""


@dataclass
class AugmentConfig:
    """What is done to a training clip after decoding, before its features (off by default)."""

    speed: SpeedConfig = field(default_factory=SpeedConfig)
    reverb: ReverbConfig = field(default_factory=ReverbConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    gain: GainConfig = field(default_factory=GainConfig)

    def __post_init__(self):
        for name in ("speed", "reverb", "noise", "gain"):
            part = getattr(self, name)
            if isinstance(part, dict):  # from YAML
                part = {"speed": SpeedConfig, "reverb": ReverbConfig, "noise": NoiseConfig, "gain": GainConfig}[name](**part)
                setattr(self, name, part)
            if not 0.0 <= part.prob <= 1.0:
                raise NabraError(f"data.augment.{name}.prob must be within 0..1, got {part.prob}")
        if any(f <= 0 for f in self.speed.factors) or not self.speed.factors:
            raise NabraError(f"data.augment.speed.factors must be positive numbers, got {self.speed.factors}")
        for name, pair in (("reverb.rt60", self.reverb.rt60), ("noise.snr", self.noise.snr), ("gain.db", self.gain.db)):
            if len(pair) != 2 or pair[0] > pair[1]:
                raise NabraError(f"data.augment.{name} must be a [low, high] range, got {pair}")
        if self.reverb.rt60[0] <= 0:
            raise NabraError(f"data.augment.reverb.rt60 must be positive seconds, got {self.reverb.rt60}")
        bad = sorted(set(self.noise.sources) - set(NOISE_SOURCES))
        if bad or not self.noise.sources:
            raise NabraError(f"data.augment.noise.sources: unknown {bad or 'none given'}; choose from "
                             f"{', '.join(NOISE_SOURCES)}")
        unknown = sorted(set(self.noise.colours) - set(COLOUR_EXPONENTS))
        if unknown or not self.noise.colours:
            raise NabraError(f"data.augment.noise.colours: unknown {unknown or 'none given'}; choose from "
                             f"{', '.join(COLOUR_EXPONENTS)}")

    def describe(self) -> str:
        """One line: what is on, with its probability and range."""
        s, r, n, g = self.speed, self.reverb, self.noise, self.gain
        parts = [f"speed {s.prob:g} x{'/'.join(f'{f:g}' for f in s.factors)}" if s.prob else "",
                 f"reverb {r.prob:g} rt60 {r.rt60[0]:g}-{r.rt60[1]:g} s" if r.prob else "",
                 f"noise {n.prob:g} ({', '.join(n.sources)}) SNR {n.snr[0]:g}-{n.snr[1]:g} dB" if n.prob else "",
                 f"gain {g.prob:g} {g.db[0]:+g}..{g.db[1]:+g} dB" if g.prob else ""]
        return "; ".join(p for p in parts if p) or "off"

    @property
    def active(self) -> bool:
        return any(getattr(self, name).prob > 0 for name in ("speed", "reverb", "noise", "gain"))

    @property
    def max_stretch(self) -> float:
        """The most a clip can grow (1 / the slowest factor): what length estimates and token budgets use."""
        return 1.0 / min(self.speed.factors) if self.speed.prob > 0 else 1.0


BABBLE_TALKERS = 4
"""Babble is at most this many other speakers at once (a crowd, not every clip of a large micro-batch)."""
NOISE_SOURCES = ("coloured", "babble")
"""The built-in noise sources (no noise corpus needed)."""
COLOUR_EXPONENTS = {"white": 0.0, "pink": 1.0, "brown": 2.0}
"""Power-spectrum exponent of each noise colour (power ∝ 1/f^exponent)."""


def rng_for(seed: int, example_id: str, epoch: int) -> np.random.Generator:
    """The generator of one (run seed, example, epoch): the same three give the same draws anywhere
    (a stable hash of the id, not Python's salted ``hash``)."""
    digest = int.from_bytes(hashlib.blake2b(example_id.encode("utf-8"), digest_size=8).digest(), "little")
    return np.random.default_rng([seed & 0xFFFFFFFF, digest, epoch])


def power(x: np.ndarray) -> float:
    """Mean square of ``x`` (float64)."""
    return float(np.mean(np.square(x, dtype=np.float64))) if x.size else 0.0


def speed(wave: np.ndarray, factor: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``wave`` played ``factor`` times faster (and higher): read at ``factor × rate``, resampled back with soxr."""
    import soxr

    if factor == 1.0 or not wave.size:
        return wave
    out = soxr.resample(wave.astype(np.float32, copy=False), sample_rate * factor, sample_rate, quality="HQ")
    return np.ascontiguousarray(out, dtype=np.float32)


def synthetic_rir(rng: np.random.Generator, rt60: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """An impulse response: a direct path, then Gaussian reflections under an exponential envelope that
    falls 60 dB in ``rt60`` seconds (the statistical late-reverberation model), unit energy."""
    n = max(2, int(rt60 * sample_rate))
    t = np.arange(n) / sample_rate
    rir = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60)  # ln(1000) = 6.9078: -60 dB at rt60
    rir[0] = np.abs(rir).max() * 4.0  # the direct sound dominates
    return (rir / np.linalg.norm(rir)).astype(np.float32)


def reverberate(wave: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``wave`` convolved with ``rir`` (scipy's FFT convolution), cut to its own length (the tail past
    the end is dropped, as lhotse does), at the input's RMS level."""
    from scipy.signal import fftconvolve

    if not wave.size:
        return wave
    wet = fftconvolve(wave.astype(np.float64), rir.astype(np.float64))[: wave.size]
    before, after = power(wave), power(wet)
    if after > 0:
        wet *= np.sqrt(before / after)
    return wet.astype(np.float32)


def coloured_noise(rng: np.random.Generator, n: int, colour: str) -> np.ndarray:
    """``n`` samples of noise whose power spectrum falls as 1/f^k (k: :data:`COLOUR_EXPONENTS`), unit power."""
    if colour not in COLOUR_EXPONENTS:
        raise NabraError(f"unknown noise colour {colour!r}; choose from {', '.join(COLOUR_EXPONENTS)}")
    spectrum = np.fft.rfft(rng.standard_normal(max(n, 2)))
    f = np.arange(spectrum.size, dtype=np.float64)
    f[0] = 1.0
    spectrum *= f ** (-COLOUR_EXPONENTS[colour] / 2)  # amplitude ∝ f^(-k/2): power ∝ f^-k
    spectrum[0] = 0.0  # no DC offset
    noise = np.fft.irfft(spectrum, max(n, 2))[:n]
    p = power(noise)
    return (noise / np.sqrt(p) if p > 0 else noise).astype(np.float32)


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


def babble(rng: np.random.Generator, talkers: list[np.ndarray], n: int) -> np.ndarray:
    """Several other speakers at once (``talkers``' clips summed at equal power), ``n`` samples, unit power."""
    mix = np.zeros(n, dtype=np.float64)
    for talk in talkers:
        part = fit_length(talk, n, rng).astype(np.float64)
        p = power(part)
        if p > 0:
            mix += part / np.sqrt(p)
    p = power(mix)
    return (mix / np.sqrt(p) if p > 0 else mix).astype(np.float32)


def add_noise(wave: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``wave`` plus ``noise`` (as long) scaled so that power(wave) / power(scaled noise) is ``snr_db``."""
    if noise.size != wave.size:
        raise NabraError(f"noise of {noise.size} samples for a clip of {wave.size}")
    ps, pn = power(wave), power(noise)
    if ps == 0 or pn == 0:
        return wave
    scale = np.sqrt(ps / (pn * 10.0 ** (snr_db / 10.0)))
    return (wave.astype(np.float64) + scale * noise.astype(np.float64)).astype(np.float32)


def gain(wave: np.ndarray, db: float) -> np.ndarray:
    """``wave`` louder (or softer) by ``db``."""
    return (wave * np.float32(10.0 ** (db / 20.0))).astype(np.float32)


@dataclass
class Applied:
    """What was done to one clip (for the run's log and the tests)."""

    speed: float = 1.0
    rt60: float | None = None
    snr: float | None = None
    noise: str | None = None
    gain_db: float | None = None


class Augmenter:
    """Applies an :class:`AugmentConfig` to training clips. ``rirs``: real impulse responses drawn from
    instead of synthetic ones; ``noises``: noise recordings drawn from instead of coloured noise (both read
    by the caller); ``talkers`` (per call): other speakers' clips, for the ``babble`` source."""

    def __init__(self, cfg: AugmentConfig, *, seed: int = 0, sample_rate: int = SAMPLE_RATE,
                 rirs: list[np.ndarray] | None = None, noises: list[np.ndarray] | None = None):
        self.cfg, self.seed, self.sample_rate = cfg, seed, sample_rate
        self.rirs, self.noises = list(rirs or []), list(noises or [])

    def __call__(self, wave: np.ndarray, example_id: str, epoch: int,
                 talkers: list[np.ndarray] | None = None) -> tuple[np.ndarray, Applied]:
        """The augmented ``wave`` of ``example_id`` in ``epoch``, and what was applied. Every probability and
        value is drawn, in a fixed order, whether or not it is used, so one knob's change leaves the others'
        draws as they were."""
        cfg, rng, done = self.cfg, rng_for(self.seed, example_id, epoch), Applied()
        draws = rng.random(4)
        factor = float(cfg.speed.factors[int(rng.integers(len(cfg.speed.factors)))])
        rt60 = float(rng.uniform(*cfg.reverb.rt60))
        snr = float(rng.uniform(*cfg.noise.snr))
        colour = cfg.noise.colours[int(rng.integers(len(cfg.noise.colours)))]
        source = cfg.noise.sources[int(rng.integers(len(cfg.noise.sources)))]
        db = float(rng.uniform(*cfg.gain.db))
        signal = np.random.default_rng(rng.integers(2**63))  # the signal draws (their count varies with length)
        out = wave
        if draws[0] < cfg.speed.prob and factor != 1.0:
            out, done.speed = speed(out, factor, self.sample_rate), factor
        if draws[1] < cfg.reverb.prob:
            rir = (self.rirs[int(signal.integers(len(self.rirs)))] if self.rirs
                   else synthetic_rir(signal, rt60, self.sample_rate))
            out, done.rt60 = reverberate(out, rir), (None if self.rirs else rt60)
        if draws[2] < cfg.noise.prob and out.size:
            if source == "babble" and talkers:
                picked = signal.choice(len(talkers), min(BABBLE_TALKERS, len(talkers)), replace=False)
                noise, done.noise = babble(signal, [talkers[i] for i in sorted(picked)], out.size), "babble"
            elif self.noises:
                noise = fit_length(self.noises[int(signal.integers(len(self.noises)))], out.size, signal)
                done.noise = "recording"
            else:
                noise, done.noise = coloured_noise(signal, out.size, colour), colour
            out, done.snr = add_noise(out, noise, snr), snr
        if draws[3] < cfg.gain.prob:
            out, done.gain_db = gain(out, db), db
        return out, done

    def batch(self, samples: list, epoch: int, speaker_of: dict[str, str | None] | None = None) -> list:
        """A micro-batch's ``(example, waveform)`` pairs augmented (text-only ones as they are), each clip's babble
        from the batch's other speakers (``speaker_of``: utterance id -> speaker; other utterances where it names
        none). The decoded waveforms are not changed: each result is a new array."""
        speaker_of = speaker_of or {}

        def voice(ex) -> str:
            return speaker_of.get(ex.utt_id) or ex.utt_id

        out = []
        for ex, wave in samples:
            if wave is not None:
                talkers = [w for other, w in samples if w is not None and voice(other) != voice(ex)]
                wave = self(wave, ex.id, epoch, talkers)[0]
            out.append((ex, wave))
        return out
