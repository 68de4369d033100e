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
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nabra.corpus.noise import ArrayBank, NoiseBank, RirBank, collection, fit_length
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
    rirs: list[str] = field(default_factory=list)
    """Real impulse responses instead of synthetic ones: recordings lists (``nabra data import rirs`` of
    RIRS_NOISES) or folders of impulse-response audio; their ``rir`` recordings are drawn from uniformly."""


@dataclass
class NoiseConfig:
    """Additive noise at a signal-to-noise ratio drawn from a range."""

    prob: float = 0.0
    """Share of the training clips with noise added."""
    snr: list[float] = field(default_factory=lambda: [5.0, 20.0])
    """SNR range in dB (signal power over noise power, over the whole clip), drawn uniformly."""
    sources: list[str] = field(default_factory=lambda: ["coloured", "babble"])
    """Noises drawn from, uniformly: ``coloured`` (synthetic, one of ``colours``), ``babble`` (up to four other
    speakers of the clip's micro-batch, summed at equal power; coloured noise where the micro-batch has none) and
    ``recordings`` (a stretch of one of ``recordings``)."""
    recordings: list[str] = field(default_factory=list)
    """Noise recordings for the ``recordings`` source: recordings lists (``nabra data import musan``) or folders
    of audio."""
    kinds: list[str] = field(default_factory=lambda: ["noise", "music"])
    """Which of the lists' recordings are used (MUSAN's parts: noise, music, speech)."""
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
        if ("recordings" in self.noise.sources) != bool(self.noise.recordings):
            raise NabraError("data.augment.noise: the 'recordings' source needs noise.recordings (a recordings list "
                             "from `nabra data import musan`, or a folder of audio), and noise.recordings needs "
                             "'recordings' in noise.sources" + (f" (sources: {self.noise.sources})" if self.noise.recordings else ""))
        bad_kinds = sorted(set(self.noise.kinds) - {"noise", "music", "speech"})
        if bad_kinds or not self.noise.kinds:
            raise NabraError(f"data.augment.noise.kinds: unknown {bad_kinds or 'none given'}; choose from noise, music, speech")
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
NOISE_SOURCES = ("coloured", "babble", "recordings")
"""The noise sources: two built in (no noise corpus needed) and a noise corpus's recordings."""
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
    instead of synthetic ones; ``noises``: the ``recordings`` source's noises (each a
    :class:`~nabra.corpus.noise.RirBank` / :class:`~nabra.corpus.noise.NoiseBank`, or arrays in memory;
    :meth:`from_config` reads the config's); ``talkers`` (per call): other speakers' clips, for ``babble``."""

    def __init__(self, cfg: AugmentConfig, *, seed: int = 0, sample_rate: int = SAMPLE_RATE,
                 rirs: RirBank | ArrayBank | list[np.ndarray] | None = None,
                 noises: NoiseBank | ArrayBank | list[np.ndarray] | None = None):
        self.cfg, self.seed, self.sample_rate = cfg, seed, sample_rate
        self.rirs = ArrayBank(rirs) if isinstance(rirs, list) else rirs
        self.noises = ArrayBank(noises) if isinstance(noises, list) else noises
        if self.rirs is not None and not len(self.rirs):
            self.rirs = None
        if "recordings" in cfg.noise.sources and not self.noises:
            raise NabraError("data.augment.noise: the 'recordings' source has no recordings")

    @classmethod
    def from_config(cls, cfg: AugmentConfig, *, seed: int = 0, sample_rate: int = SAMPLE_RATE) -> Augmenter:
        """An augmenter with the config's noise recordings and impulse responses (their lists read now)."""
        noises = (NoiseBank(collection(cfg.noise.recordings, cfg.noise.kinds, folder_kind="noise"), sample_rate)
                  if cfg.noise.recordings else None)
        rirs = RirBank(collection(cfg.reverb.rirs, ["rir"], folder_kind="rir"), sample_rate) if cfg.reverb.rirs else None
        return cls(cfg, seed=seed, sample_rate=sample_rate, rirs=rirs, noises=noises)

    def sources(self) -> str:
        """What the noise and room draws come from (for the run's log)."""
        parts = []
        if self.noises is not None and isinstance(self.noises, NoiseBank):
            n = len(self.noises)
            parts.append(f"{n:,} noise recording{'s' * (n != 1)} ({self.noises.hours():.1f} h)")
        if self.rirs is not None:
            n = len(self.rirs)
            parts.append(f"{n:,} impulse response{'s' * (n != 1)}")
        return ", ".join(parts) or "built-in noises and synthetic rooms"

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
            rir = self.rirs.rir(signal) if self.rirs is not None else synthetic_rir(signal, rt60, self.sample_rate)
            out, done.rt60 = reverberate(out, rir), (None if self.rirs is not None else rt60)
        if draws[2] < cfg.noise.prob and out.size:
            if source == "babble" and talkers:
                picked = signal.choice(len(talkers), min(BABBLE_TALKERS, len(talkers)), replace=False)
                noise, done.noise = babble(signal, [talkers[i] for i in sorted(picked)], out.size), "babble"
            elif source == "recordings":
                noise, done.noise = self.noises.segment(signal, out.size), "recording"
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


# ============================================================================================
# evaluation conditions
# ============================================================================================

CONDITION_KINDS = {
    "clean": {},
    "noise": {"snr": float, "source": str},
    "reverb": {"rt60": float, "rirs": str},
    "speed": {"factor": float},
    "gain": {"db": float},
}
"""Condition kinds and the keys each takes (``noise:snr=0,source=babble``)."""
CONDITION_DEFAULTS = {"noise": {"snr": 10.0, "source": "white"}, "reverb": {"rt60": 0.6}, "speed": {"factor": 1.1},
                      "gain": {"db": -20.0}}
CONDITION_SEED = 0
"""The seed of every condition's draws: the same corruption of the same utterance for every run."""
CONDITION_HELP = ("clean; noise[:snr=DB][,source=white|pink|brown|babble|LIST_OR_FOLDER] (default snr 10, white); "
                  "reverb[:rt60=S | :rirs=LIST_OR_FOLDER] (default rt60 0.6); speed[:factor=F]; gain[:db=DB]")


@dataclass
class Condition:
    """One way of hearing the evaluated audio (``nabra evaluate --condition``): clean, or corrupted by noise at an
    SNR, a room, a speed or a gain. The draws (noise samples, room, babble talkers) come from :data:`CONDITION_SEED`,
    the condition and the utterance id, never from the run: every run is scored on the same audio, and an
    utterance's tasks (its ASR and its SER) hear the same clip."""

    kind: str
    params: dict = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: str) -> Condition:
        """``kind[:key=value,...]`` (:data:`CONDITION_HELP`); unknown kinds, keys and values are refused."""
        head, _, rest = spec.strip().partition(":")
        kind = head.strip().lower()
        if kind not in CONDITION_KINDS:
            raise NabraError(f"--condition {spec!r}: unknown kind {kind!r}; conditions: {CONDITION_HELP}")
        params = dict(CONDITION_DEFAULTS.get(kind, {}))
        for item in filter(None, (p.strip() for p in rest.split(","))):
            key, eq, value = item.partition("=")
            key = key.strip().lower()
            if not eq or key not in CONDITION_KINDS[kind]:
                raise NabraError(f"--condition {spec!r}: {kind} takes {', '.join(CONDITION_KINDS[kind]) or 'no keys'} "
                                 f"as key=value, got {item!r}")
            try:
                params[key] = CONDITION_KINDS[kind][key](value.strip())
            except ValueError:
                raise NabraError(f"--condition {spec!r}: {key} must be a number, got {value!r}") from None
        if kind == "reverb" and "rirs" in params:
            params.pop("rt60", None)
        cond = cls(kind, params)
        cond.check()
        return cond

    def check(self) -> None:
        p = self.params
        if self.kind == "noise" and p["source"] not in (*COLOUR_EXPONENTS, "babble") and not Path(p["source"]).exists():
            raise NabraError(f"--condition {self.name}: source {p['source']!r} is neither "
                             f"{', '.join(COLOUR_EXPONENTS)}, babble, nor a recordings list or folder")
        if self.kind == "reverb" and "rirs" in p and not Path(p["rirs"]).exists():
            raise NabraError(f"--condition {self.name}: no recordings list or folder {p['rirs']}")
        if self.kind == "reverb" and p.get("rt60", 1.0) <= 0 or self.kind == "speed" and p["factor"] <= 0:
            raise NabraError(f"--condition {self.name}: must be positive")

    @property
    def name(self) -> str:
        """The canonical spelling (defaults filled in): how tables and metrics.json name it."""
        if not self.params:
            return self.kind
        return f"{self.kind}:" + ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                          for k, v in self.params.items())

    @property
    def slug(self) -> str:
        """A folder name: ``noise-snr_0-babble`` (a path source by its file name)."""
        values = [f"{k}_{v:g}" if isinstance(v, float) else Path(str(v)).name.split(".")[0] if k in ("source", "rirs")
                  else str(v) for k, v in self.params.items()]
        return re.sub(r"[^A-Za-z0-9._+-]+", "-", "-".join([self.kind, *values])).strip("-")

    @property
    def snr(self) -> float | None:
        return self.params.get("snr") if self.kind == "noise" else None

    @property
    def clean(self) -> bool:
        return self.kind == "clean"

    def describe(self) -> dict:
        """What metrics.json records of the condition."""
        return {"name": self.name, "kind": self.kind, **self.params}

    def rng(self, utt_id: str) -> np.random.Generator:
        return rng_for(CONDITION_SEED, f"{self.slug}\x00{utt_id}", 0)

    def apply(self, wave: np.ndarray, utt_id: str, talkers: list[np.ndarray] | None = None,
              sample_rate: int = SAMPLE_RATE) -> np.ndarray:
        """``wave`` (utterance ``utt_id``) as heard in this condition; ``talkers``: other speakers' clips for
        babble (the caller's choice, the same for every run)."""
        if self.kind == "clean" or not wave.size:
            return wave
        rng, p = self.rng(utt_id), self.params
        if self.kind == "speed":
            return speed(wave, p["factor"], sample_rate)
        if self.kind == "gain":
            return gain(wave, p["db"])
        if self.kind == "reverb":
            rir = self._bank("rirs", sample_rate).rir(rng) if "rirs" in p else synthetic_rir(rng, p["rt60"], sample_rate)
            return reverberate(wave, rir)
        source = p["source"]
        if source == "babble":
            if not talkers:
                raise NabraError(f"--condition {self.name}: no other speaker's clip to make babble from")
            picked = rng.choice(len(talkers), min(BABBLE_TALKERS, len(talkers)), replace=False)
            noise = babble(rng, [talkers[i] for i in sorted(picked)], wave.size)
        elif source in COLOUR_EXPONENTS:
            noise = coloured_noise(rng, wave.size, source)
        else:
            noise = self._bank("source", sample_rate).segment(rng, wave.size)
        return add_noise(wave, noise, p["snr"])

    def _bank(self, key: str, sample_rate: int):
        cache = self.__dict__.setdefault("_banks", {})
        if key not in cache:
            if key == "rirs":
                cache[key] = RirBank(collection([self.params["rirs"]], ["rir"], folder_kind="rir"), sample_rate)
            else:
                cache[key] = NoiseBank(collection([self.params["source"]], ["noise", "music", "speech"],
                                                  folder_kind="noise"), sample_rate)
        return cache[key]


def parse_conditions(specs: list[str] | None) -> list[Condition]:
    """The conditions of ``--condition`` options (duplicates, by canonical name, refused)."""
    out = [Condition.parse(s) for s in specs or ()]
    names = [c.name for c in out]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise NabraError(f"--condition given twice: {', '.join(twice)}")
    slugs = [c.slug for c in out]
    if len(set(slugs)) != len(slugs):
        raise NabraError(f"--condition: two conditions would share an output folder ({', '.join(slugs)})")
    return out
