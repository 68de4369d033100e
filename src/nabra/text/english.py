"""English text normalization for WER: Whisper's ``EnglishTextNormalizer`` from transformers (the one
OpenAI's Whisper evaluations and the Open ASR Leaderboard use: case, punctuation, contractions,
numbers and spellings), not one of our own. Its British -> American spelling table ships with
Whisper checkpoints (``normalizer.json``), not with transformers; without one it is empty here."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def _normalizer():
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    return EnglishTextNormalizer({})


def normalize_english(text: str) -> str:
    """``text`` as Whisper's English normalizer writes it (lower case, no punctuation, ``mister``...)."""
    return _normalizer()(text)


def is_english(language: str | None) -> bool:
    """Whether an utterance's ``language`` (``en``, ``en-US``, ``eng``) is English."""
    base = (language or "").split("-")[0].split("_")[0].lower()
    return base in ("en", "eng", "english")
