"""Article text made speakable for the speech-summarization builder (:mod:`nabra.corpus.ssum`): what a
TTS voice can read (Arabic letters, digits, plain punctuation), cut into sentences a voice reads in one go."""

from __future__ import annotations

import re
import unicodedata

_SPEAKABLE = re.compile(r"[\u0621-\u064a\u066e-\u06d3\u06fa-\u06ff\u0750-\u077f\u08a0-\u08c9\d]")  # letter, digit
# Arabic script (letters, diacritics, Arabic-Indic digits, ، ؛ ؟), ASCII digits, whitespace and the
# punctuation eSpeak reads as pauses or Arabic words; anything else (Latin above all) is dropped.
_UNSUPPORTED = re.compile(r"[^\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff0-9\s.,!?;:()\"'%/\-«»…]")
_INVISIBLE = re.compile(r"[\u0640\u00ad\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")  # tatweel, marks
_EMPTY_BRACKETS = re.compile(r"\(\s*\)|«\s*»|\"\s*\"")  # what is left of "(BBC)"
_LEADING_JUNK = re.compile(r"^[\s.,!?;:،؛؟\-/…]+")
_SPACE = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?؟…۔])\s+|\s*\n\s*")
_CLAUSE_MARKS = "،؛;"


def clean_for_tts(text: str) -> str:
    """``text`` with only what an Arabic TTS should read: Arabic script, digits, punctuation."""
    # NFKC turns presentation forms (ﻻ, ﷺ) and full-width digits into what eSpeak knows; invisible
    # marks go without a space so that the word they sit in stays whole.
    text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
    text = _EMPTY_BRACKETS.sub(" ", _UNSUPPORTED.sub(" ", text))
    return _SPACE.sub(" ", _LEADING_JUNK.sub("", text)).strip()


def split_sentences(text: str, max_chars: int = 200) -> list[str]:
    """The cleaned sentences of ``text`` (split at . ! ? ؟ and newlines), none over ``max_chars``
    unless a single word is; sentences with nothing to speak are dropped."""
    sentences = []
    for raw in _SENTENCE_END.split(text):
        sentence = clean_for_tts(raw)
        if _SPEAKABLE.search(sentence):
            sentences += [s for s in _break_long(sentence, max_chars) if _SPEAKABLE.search(s)]
    return sentences


def _break_long(sentence: str, max_chars: int) -> list[str]:
    parts = []
    while len(sentence) > max_chars:
        cut = _cut_point(sentence, max_chars)
        parts.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    return [*parts, sentence]


def _cut_point(sentence: str, max_chars: int) -> int:
    """Where to cut a long sentence: after the last clause mark, else the last space, in the second
    half of the first ``max_chars`` (near the limit, so no tiny fragments); else at the limit."""
    window = sentence[: max_chars + 1]
    for marks in (_CLAUSE_MARKS, " "):
        i = max(window.rfind(m) for m in marks)
        if i >= max_chars // 2:
            return i + 1
    return max_chars


# ---------------------------------------------------------------------------------------------
# The TTS backend (nabra.corpus.tts)
