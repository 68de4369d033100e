"""The synthetic Arabic speech corpus: eSpeak NG clips a tiny model can learn four tasks from.

Short clips (most of the corpus) carry a transcript, a dialect and an emotion, chosen
independently: the dialect is audible only in the words (per-dialect lexicons, ``lexicon/synth_ar.json``),
the emotion only in the prosody (pitch, speed, amplitude, pitch range), so DID and SER cannot
lean on each other. News paragraphs carry a transcript and a one-sentence reference summary
(ASR, SSUM, TSUM); some are long enough to exceed the 30 s the Whisper feature extractor sees.

eSpeak voice variants are the speakers, and the splits are speaker-disjoint. Every random choice
is made up front from one seed (:func:`plan_corpus`); only the eSpeak calls run in parallel, so
the same seed and config give byte-identical manifests and WAVs.
"""

from __future__ import annotations

import json
import os
import random
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from nabra.corpus.audio import SAMPLE_RATE, save_wav
from nabra.corpus.labels import DIALECTS, EMOTIONS
from nabra.corpus.manifest import Utterance, write_manifest
from nabra.corpus.tts import JITTER, MAX_AMPLITUDE, PROSODY, SPLIT_VOICES, Prosody, espeak, require_espeak
from nabra.errors import NabraError
from nabra.progress import progress_bar

MANIFEST_NAME = "manifest.jsonl"

SPLIT_SHARES = {"train": 0.8, "dev": 0.1, "test": 0.1}


# eSpeak reads MSA news at ~1.6-1.8 words/s at speed 150-170: 65 words last ~36 s or more, past 30 s
# (80 words took 47-58 s; each second costs every step that draws the clip), while a 3-sentence
# paragraph (~30 words) stays near 20 s.
LONG_MIN_WORDS = 65


@dataclass
class SynthConfig:
    """What to synthesize. Every field has a default; the checks run on construction."""

    utterances: int = 1000
    """Total clips (short labelled clips + summary paragraphs; ``min_summaries`` may add paragraphs)."""
    seed: int = 0
    """Seed of every random choice (texts, labels, prosody jitter, voices)."""
    summary_fraction: float = 0.1
    """Share of clips that are multi-sentence news paragraphs with a summary."""
    long_fraction: float = 0.3
    """Share of those paragraphs made long enough to exceed 30 s of audio."""
    dialect_density: float = 0.75
    """Share of the words of a short clip drawn from its dialect's lexicon (the rest neutral filler)."""
    words_per_utterance: tuple[int, int] = (4, 4)
    """Min, max words per short clip (FACTS: 3 dialect words + 1 filler is learnable in minutes)."""
    imbalance: float = 1.0
    """Most-frequent / least-frequent label count, geometric in label order (1 = balanced); dialect and emotion.
    ``dialect_shares`` / ``emotion_shares`` give the shape label by label instead."""
    dialect_shares: dict[str, float] | None = None
    """Relative frequency of each dialect label (``{MSA: 40, EGY: 25, ...}``; scaled to the clips), e.g. a
    real corpus's label counts; ``None``: the ``imbalance`` shape. Every label of ``dialects`` needs one."""
    emotion_shares: dict[str, float] | None = None
    """Relative frequency of each emotion label, as ``dialect_shares``."""
    dialect_fraction: float = 1.0
    """Share of the short clips whose dialect is labelled (the others are ASR-only for DID): real DID sets
    are a fraction of the transcribed speech. Labelled clips follow the shares too."""
    emotion_fraction: float = 1.0
    """Share of the short clips whose emotion is labelled, as ``dialect_fraction``."""
    split_shares: dict[str, float] = field(default_factory=lambda: dict(SPLIT_SHARES))
    """Share of the clips in each split (train, dev, test): a larger corpus keeps its test split small."""
    min_summaries: dict[str, int] = field(default_factory=dict)
    """At least this many news paragraphs (with their summaries) in a split (``{test: 40}``): a summary score over
    the five paragraphs a small split gets is noise. The extra paragraphs are planned after every other clip,
    from a random stream of their own, so the rest of the corpus is the same, clip for clip, as without them."""
    disjoint_sentences: bool = False
    """Dev and test clips never say what a train clip says: a clip whose sentence (or paragraph) train has is
    given another, drawn from a random stream of its own, so every other clip is the same clip for clip as
    without it (four words of a dialect's lexicon recur: 24 of the demo's 100 short test clips did)."""
    balanced_splits: tuple[str, ...] = ()
    """Splits whose short clips are label-balanced and all labelled (``[test]``: macro-F1 then measures the
    rare labels on as many clips as the frequent ones); the other splits follow the shares and fractions."""
    workers: int = 0
    """Parallel eSpeak threads (0 = one per CPU core)."""
    dialects: tuple[str, ...] = DIALECTS.names
    """Dialect labels to generate; each needs a lexicon in ``lexicon/synth_ar.json``."""
    emotions: tuple[str, ...] = EMOTIONS.names
    """Emotion labels to generate; each needs prosody settings in :data:`PROSODY`."""

    def __post_init__(self) -> None:
        self.words_per_utterance = tuple(self.words_per_utterance)
        self.dialects, self.emotions = tuple(self.dialects), tuple(self.emotions)
        if self.utterances < 1:
            raise NabraError(f"utterances must be at least 1, got {self.utterances}")
        self.balanced_splits = tuple(self.balanced_splits)
        for name in ("summary_fraction", "long_fraction", "dialect_density", "dialect_fraction", "emotion_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise NabraError(f"{name} must be between 0 and 1, got {getattr(self, name)}")
        lo, hi = self.words_per_utterance
        if not 1 <= lo <= hi:
            raise NabraError(f"words_per_utterance must be (min, max) with 1 <= min <= max, got {(lo, hi)}")
        if self.imbalance < 1.0:
            raise NabraError(f"imbalance must be at least 1 (1 = balanced), got {self.imbalance}")
        if self.workers < 0:
            raise NabraError(f"workers must be >= 0 (0 = one per CPU core), got {self.workers}")
        _check_labels("dialect", self.dialects, load_lexicon()["dialects"])
        _check_labels("emotion", self.emotions, PROSODY)
        for kind, names in (("dialect", self.dialects), ("emotion", self.emotions)):
            shares = getattr(self, f"{kind}_shares")
            if shares is None:
                continue
            if self.imbalance != 1.0:
                raise NabraError(f"give imbalance or {kind}_shares, not both")
            if set(shares) != set(names) or not all(isinstance(v, int | float) and v > 0 for v in shares.values()):
                raise NabraError(f"{kind}_shares must give a positive number for each of {', '.join(names)}, "
                                 f"got {shares}")
        self.split_shares = dict(self.split_shares)
        if set(self.split_shares) != set(SPLIT_SHARES) or not all(
                isinstance(v, int | float) and v > 0 for v in self.split_shares.values()):
            raise NabraError(f"split_shares must give a positive share to each of train, dev, test, got {self.split_shares}")
        if not isinstance(self.disjoint_sentences, bool):
            raise NabraError(f"disjoint_sentences must be true or false, got {self.disjoint_sentences!r}")
        self.min_summaries = dict(self.min_summaries)
        bad = {k: v for k, v in self.min_summaries.items()
               if k not in SPLIT_SHARES or not isinstance(v, int) or isinstance(v, bool) or v < 0}
        if bad:
            raise NabraError(f"min_summaries must give a count >= 0 for some of {', '.join(SPLIT_SHARES)}, got {bad}")
        unknown = [s for s in self.balanced_splits if s not in SPLIT_SHARES]
        if unknown:
            raise NabraError(f"balanced_splits: unknown split(s) {', '.join(unknown)} (splits: {', '.join(SPLIT_SHARES)})")

    def label_weights(self, kind: str) -> list[float]:
        """Relative frequency of each ``dialect`` or ``emotion`` label, in label order."""
        names, shares = getattr(self, f"{kind}s"), getattr(self, f"{kind}_shares")
        if shares is not None:
            return [float(shares[n]) for n in names]
        k = len(names)
        return [self.imbalance ** (-i / (k - 1)) if k > 1 else 1.0 for i in range(k)]


def _check_labels(kind: str, names: tuple[str, ...], known: dict) -> None:
    if not names or len(set(names)) != len(names):
        raise NabraError(f"{kind} labels must be a non-empty list without duplicates, got {list(names)}")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise NabraError(f"no synthetic {kind} for {', '.join(unknown)} (known: {', '.join(known)})")


@dataclass(frozen=True)
class Clip:
    """Everything needed to render one clip: decided up front, so rendering is deterministic."""

    id: str
    split: str
    voice: str
    text: str
    pitch: int
    speed: int
    amplitude: int
    range: str
    summary: str | None = None
    dialect: str | None = None
    emotion: str | None = None

    @property
    def speaker(self) -> str:
        """The speaker id of the voice, e.g. ``synth-m1`` for ``ar+m1``."""
        return "synth-" + self.voice.split("+", 1)[1]

    @property
    def audio(self) -> str:
        """The WAV path, relative to the manifest's folder."""
        return f"audio/{self.id}.wav"

    def utterance(self, duration: float) -> Utterance:
        """The manifest record of this clip once rendered."""
        return Utterance(
            id=self.id, audio=self.audio, duration=duration, language="ar", transcript=self.text,
            summary=self.summary, dialect=self.dialect, emotion=self.emotion, speaker=self.speaker,
            source="synth", split=self.split,
        )  # fmt: skip


@dataclass
class SynthResult:
    """What :func:`synthesize` wrote."""

    out_dir: Path
    """The corpus folder."""
    manifest: Path
    """Its manifest."""
    utterances: int
    """Clips written."""
    short_clips: int
    """Short labelled clips (ASR, DID, SER)."""
    paragraphs: int
    """News paragraphs with a summary (ASR, SSUM, TSUM)."""
    long_paragraphs: int
    """Paragraphs whose audio lasts more than 30 s."""
    splits: dict[str, int]
    """Clips per split."""
    audio_seconds: float
    """Total audio written, in seconds."""
    elapsed: float
    """Wall-clock seconds spent synthesizing."""
    clips_per_s: float
    """Synthesis throughput."""
    durations: dict[str, float] = field(default_factory=dict, repr=False)
    """Duration of every clip by id."""


# ---------------------------------------------------------------------------------------------
# eSpeak


def speak(clip: Clip) -> np.ndarray:
    """Speak ``clip`` with eSpeak NG: mono float32 samples at 16 kHz, end silences trimmed."""
    return espeak(clip.text, clip.voice, Prosody(clip.pitch, clip.speed, clip.amplitude, clip.range), name=clip.id)


def render_clip(clip: Clip, path: Path) -> float:
    """Speak ``clip`` with eSpeak NG and write it as 16 kHz mono 16-bit WAV; returns its duration."""
    samples = speak(clip)
    save_wav(path, samples)
    return round(len(samples) / SAMPLE_RATE, 3)


# ---------------------------------------------------------------------------------------------
# Planning: every random choice, no audio


@cache
def load_lexicon() -> dict:
    """The packaged word lists and news templates (``nabra/corpus/lexicon/synth_ar.json``)."""
    text = resources.files("nabra.corpus").joinpath("lexicon/synth_ar.json").read_text(encoding="utf-8")
    return json.loads(text)


def apportion(total: int, weights: list[float]) -> list[int]:
    """Split ``total`` into integer parts proportional to ``weights`` (largest remainder; ties to
    the earlier part), so parts always sum to ``total`` and differ from the exact share by < 1."""
    exact = [total * w / sum(weights) for w in weights]
    parts = [int(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in by_remainder[: total - sum(parts)]:
        parts[i] += 1
    return parts


def _label_pairs(n: int, config: SynthConfig, rng: random.Random, balanced: bool = False) -> list[tuple[str, str]]:
    """(dialect, emotion) for ``n`` clips with exact marginal counts and near-independent factors.

    Dialects are laid out in blocks; emotions in a low-discrepancy order (each spread evenly over
    the sequence), so every dialect block holds each emotion in proportion: with 5 x 5 balanced
    labels and n a multiple of 25, every dialect x emotion cell is exactly equal. ``balanced``: equal
    counts whatever the config's shape.
    """
    d_counts = apportion(n, [1.0] * len(config.dialects) if balanced else config.label_weights("dialect"))
    e_counts = apportion(n, [1.0] * len(config.emotions) if balanced else config.label_weights("emotion"))
    dialects = [d for d, c in zip(config.dialects, d_counts, strict=True) for _ in range(c)]
    spread = sorted(((j + 0.5) / c, i) for i, c in enumerate(e_counts) for j in range(c))
    pairs = [(d, config.emotions[i]) for d, (_, i) in zip(dialects, spread, strict=True)]
    rng.shuffle(pairs)
    return pairs


def _labelled(rng: random.Random, labels: list[str], names: tuple[str, ...], fraction: float) -> list[bool]:
    """Which of the clips (their ``labels``) keep their label: ``fraction`` of them, apportioned over the
    labels as the clips are (so the labelled counts follow the same shape exactly), chosen at random."""
    if fraction >= 1.0:
        return [True] * len(labels)
    have = [labels.count(name) for name in names]
    want = apportion(int(fraction * len(labels) + 0.5), have)
    keep = [False] * len(labels)
    for name, k in zip(names, want, strict=True):
        rows = [i for i, label in enumerate(labels) if label == name]
        for i in rng.sample(rows, min(k, len(rows))):
            keep[i] = True
    return keep


def _jittered(rng: random.Random, emotion: str) -> dict:
    """The eSpeak settings of one clip: its emotion's prosody, each number jittered."""
    p = PROSODY[emotion]
    return dict(
        pitch=rng.randint(p.pitch - JITTER.pitch, p.pitch + JITTER.pitch),
        speed=rng.randint(p.speed - JITTER.speed, p.speed + JITTER.speed),
        amplitude=min(
            MAX_AMPLITUDE, rng.randint(p.amplitude - JITTER.amplitude, p.amplitude + JITTER.amplitude)
        ),
        range=p.range,
    )


def _pick(rng: random.Random, pool: list[str], k: int) -> list[str]:
    """``k`` words, without repetition as long as the pool lasts."""
    return rng.sample(pool, min(k, len(pool))) + rng.choices(pool, k=max(0, k - len(pool)))


def _short_text(rng: random.Random, dialect: str, config: SynthConfig) -> str:
    lex = load_lexicon()
    n = rng.randint(*config.words_per_utterance)
    n_dialect = int(config.dialect_density * n + 0.5)
    words = _pick(rng, lex["dialects"][dialect], n_dialect) + _pick(rng, lex["filler"], n - n_dialect)
    rng.shuffle(words)
    return " ".join(words)


_SLOT = re.compile(r"\{(\w+)\}")


def _fill_slots(rng: random.Random, templates: list[str], topic: dict) -> dict[str, str]:
    """A value for every ``{slot}`` in ``templates``; ``{team}`` and ``{team2}`` draw distinct
    values from the same pool; ``{person}`` is a first and a last name."""
    shared = load_lexicon()["news"]["slots"]
    names = sorted({m for t in templates for m in _SLOT.findall(t)})
    used: dict[str, set[str]] = {}
    values = {}
    for name in names:
        base = name.rstrip("0123456789")
        if base == "person":
            values[name] = f"{rng.choice(shared['first_name'])} {rng.choice(shared['last_name'])}"
            continue
        pool = [v for v in topic["slots"].get(base) or shared[base] if v not in used.get(base, set())]
        values[name] = rng.choice(pool)
        used.setdefault(base, set()).add(values[name])
    return values


def news_words() -> tuple[str, ...]:
    """Every Arabic word of the news lexicon (templates, slot values, fillers): the words a tiny model's
    tokenizer may keep whole (``TinyConfig.whole_words``)."""
    words: set[str] = set()

    def walk(value) -> None:
        if isinstance(value, str):
            words.update(re.findall(r"[\u0621-\u064A]+", value))
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(load_lexicon()["news"])
    return tuple(sorted(words))


def summary_pairs(n: int, seed: int) -> list[Utterance]:
    """``n`` news paragraphs with their summaries as text only (``text-NNNNN``: transcript + summary, no
    audio — TSUM examples alone), split 80/10/10: text summarization for a base to learn, as a real
    LLM knows it before it ever hears a summary spoken."""
    rng = random.Random(seed)
    pairs = []
    splits = apportion(n, list(SPLIT_SHARES.values()))
    names = [split for split, k in zip(SPLIT_SHARES, splits, strict=True) for _ in range(k)]
    for i, split in enumerate(names):
        text, summary = _paragraph(rng, long=False)
        pairs.append(Utterance(id=f"text-{i:05d}", transcript=text, summary=summary, language="ar",
                               source="synth-text", split=split))
    return pairs


def _paragraph(rng: random.Random, long: bool) -> tuple[str, str]:
    """A news paragraph and its one-sentence summary (every summary slot is in the lead)."""
    news = load_lexicon()["news"]
    topic = rng.choice(news["topics"])
    lead, summary = rng.choice(topic["lead"]), rng.choice(topic["summary"])
    details, quotes = list(topic["details"]), list(topic["quotes"])
    rng.shuffle(details)
    rng.shuffle(quotes)
    if long:
        fillers = list(news["filler_sentences"])
        rng.shuffle(fillers)
        body = []
        for sentence in details + quotes[:1] + fillers:
            if len(" ".join([lead, *body]).split()) >= LONG_MIN_WORDS:
                break
            body.append(sentence)
    else:
        body = [details[0], quotes[0]]
    sentences = [lead, *body]
    slots = _fill_slots(rng, [*sentences, summary], topic)

    def fill(template: str) -> str:
        return _SLOT.sub(lambda m: slots[m.group(1)], template)

    return " ".join(fill(s) for s in sentences), fill(summary)


REDRAWS = 100
"""Draws ``disjoint_sentences`` makes for one clip before it gives up with an error."""


class _Unsaid:
    """``disjoint_sentences``: the train split's texts (none: every first draw stands), and the random stream
    that redraws a clip which says one."""

    def __init__(self, said: set[str] = frozenset(), seed: int = 0, words: tuple[int, int] = (4, 4)):
        self.said, self.words = said, words
        self.rng = random.Random(f"disjoint_sentences-{seed}")

    def __call__(self, value, draw, text=lambda v: v, what: str = "sentence"):
        """``value``, or if train says its ``text``, the first ``draw(rng)`` whose text train does not say."""
        if text(value) not in self.said:
            return value
        for _ in range(REDRAWS):
            value = draw(self.rng)
            if text(value) not in self.said:
                return value
        lo, hi = self.words
        raise NabraError(f"disjoint_sentences: {REDRAWS} draws of a {what} all said in the train split too "
                         f"({lo}-{hi} words a short clip); give longer sentences (words_per_utterance) or "
                         f"leave disjoint_sentences off")


_ANY = _Unsaid()
"""No ``disjoint_sentences``: nothing to avoid."""


def _news(rng: random.Random, n: int, config: SynthConfig, unsaid: _Unsaid = _ANY) -> list[dict]:
    """``n`` news paragraphs with their summaries (without split or voice), ``long_fraction`` of them long;
    ``unsaid`` may redraw one that train says (:class:`_Unsaid`)."""
    n_long = int(config.long_fraction * n + 0.5)
    news = []
    for i in range(n):
        long = i < n_long
        text, summary = unsaid(_paragraph(rng, long=long), lambda r, long=long: _paragraph(r, long=long),
                               text=lambda v: v[0], what="news paragraph")
        # News is read in neutral prosody; it carries no emotion label, so SER stays balanced.
        news.append(dict(text=text, summary=summary, **_jittered(rng, "neutral")))
    return news


def _plan_split(rng: random.Random, split: str, n: int, n_para: int, config: SynthConfig,
                unsaid: _Unsaid = _ANY) -> list[dict]:
    """The clips of one split (without ids), in random order; ``unsaid``: see :class:`_Unsaid`."""
    voices = SPLIT_VOICES[split]
    clips = _news(rng, n_para, config, unsaid)
    balanced = split in config.balanced_splits
    pairs = _label_pairs(n - n_para, config, rng, balanced)
    keep_d = _labelled(rng, [d for d, _ in pairs], config.dialects, 1.0 if balanced else config.dialect_fraction)
    keep_e = _labelled(rng, [e for _, e in pairs], config.emotions, 1.0 if balanced else config.emotion_fraction)
    for (dialect, emotion), has_d, has_e in zip(pairs, keep_d, keep_e, strict=True):
        text = unsaid(_short_text(rng, dialect, config), lambda r, d=dialect: _short_text(r, d, config),
                      what=f"{dialect} sentence")
        # The clip is spoken in its dialect's words and its emotion's prosody whether or not it is labelled.
        clips.append(dict(text=text, dialect=dialect if has_d else None, emotion=emotion if has_e else None,
                          **_jittered(rng, emotion)))
    rng.shuffle(clips)
    # Voices rotate over the shuffled order, paragraphs and short clips each on their own turn,
    # so every voice reads about the same share of each label and of the news.
    for kind in (True, False):
        for j, c in enumerate(c for c in clips if ("summary" in c) is kind):
            c.update(split=split, voice=voices[j % len(voices)])
    return clips


def plan_corpus(config: SynthConfig) -> list[Clip]:
    """Every clip of the corpus, in id order (train, dev, test), with all random choices made."""
    rng = random.Random(config.seed)
    shares = [config.split_shares[s] for s in SPLIT_SHARES]
    sizes = apportion(config.utterances, shares)
    n_para = apportion(int(config.summary_fraction * config.utterances + 0.5), shares)
    plans, unsaid = [], _ANY
    for split, n, n_p in zip(SPLIT_SHARES, sizes, n_para, strict=True):
        plans += _plan_split(rng, split, n, min(n_p, n), config, unsaid)
        if split == "train" and config.disjoint_sentences:  # train is planned first: dev and test avoid it
            unsaid = _Unsaid({p["text"] for p in plans}, config.seed, config.words_per_utterance)
    plans += _extra_paragraphs(plans, config, unsaid)
    width = max(6, len(str(len(plans) - 1)))
    return [Clip(id=f"synth-{i:0{width}d}", **p) for i, p in enumerate(plans)]


def _extra_paragraphs(plans: list[dict], config: SynthConfig, unsaid: _Unsaid = _ANY) -> list[dict]:
    """The paragraphs ``min_summaries`` asks for beyond those the shares gave (their own random stream, read by
    their split's voices in turn after its paragraphs; ``long_fraction`` of them long)."""
    rng = random.Random(f"min_summaries-{config.seed}")
    extra = []
    for split, want in config.min_summaries.items():
        have = sum(p["split"] == split and "summary" in p for p in plans)
        voices = SPLIT_VOICES[split]
        for i, clip in enumerate(_news(rng, max(0, want - have), config, _ANY if split == "train" else unsaid)):
            extra.append(dict(clip, split=split, voice=voices[(have + i) % len(voices)]))
    return extra


# ---------------------------------------------------------------------------------------------
# Synthesis


def synthesize(out_dir: str | os.PathLike, config: SynthConfig, *, progress: bool = True) -> SynthResult:
    """Write the synthetic corpus: ``out_dir/manifest.jsonl`` (audio paths relative to it) and
    16 kHz mono WAVs under ``out_dir/audio/``. An existing corpus there is regenerated."""
    require_espeak()
    out_dir = Path(out_dir)
    manifest = out_dir / MANIFEST_NAME
    audio_dir = out_dir / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    # A manifest left from an earlier run would describe WAVs this run overwrites: drop it first,
    # so a failed run leaves no manifest rather than a wrong one.
    manifest.unlink(missing_ok=True)
    clips = plan_corpus(config)
    start = time.perf_counter()
    durations = _render_all(clips, audio_dir, config.workers or os.cpu_count() or 1, progress)
    elapsed = time.perf_counter() - start
    write_manifest(manifest, (c.utterance(d) for c, d in zip(clips, durations, strict=True)))
    _remove_stale(audio_dir, {f"{c.id}.wav" for c in clips})
    return _result(out_dir, manifest, clips, durations, elapsed)


def _render_all(clips: list[Clip], audio_dir: Path, workers: int, progress: bool) -> list[float]:
    durations = []
    with progress_bar("synth", len(clips), enabled=progress, unit="clips") as advance, ThreadPoolExecutor(workers) as pool:
        try:
            # map yields in submission order: durations line up with clips whatever finishes first.
            for d in pool.map(lambda c: render_clip(c, audio_dir.parent / c.audio), clips):
                durations.append(d)
                advance()
        except BaseException:
            # One failed clip (or Ctrl-C) fails the corpus: don't render the thousands still queued.
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return durations


_CLIP_FILE = re.compile(r"synth-\d{6,}\.wav")


def _remove_stale(audio_dir: Path, keep: set[str]) -> None:
    """Delete clip files of an earlier, larger run that the new manifest does not list."""
    for path in audio_dir.iterdir():
        if _CLIP_FILE.fullmatch(path.name) and path.name not in keep:
            path.unlink()


def _result(
    out_dir: Path, manifest: Path, clips: list[Clip], durations: list[float], elapsed: float
) -> SynthResult:
    paragraphs = [d for c, d in zip(clips, durations, strict=True) if c.summary is not None]
    return SynthResult(
        out_dir=out_dir, manifest=manifest, utterances=len(clips),
        short_clips=len(clips) - len(paragraphs), paragraphs=len(paragraphs),
        long_paragraphs=sum(d > 30.0 for d in paragraphs),
        splits={s: sum(c.split == s for c in clips) for s in SPLIT_SHARES},
        audio_seconds=round(sum(durations), 3), elapsed=elapsed,
        clips_per_s=len(clips) / elapsed if elapsed > 0 else float("inf"),
        durations={c.id: d for c, d in zip(clips, durations, strict=True)},
    )  # fmt: skip
