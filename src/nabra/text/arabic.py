"""The one Arabic text normalizer, used by data preparation and by every metric.

Two named schemes:

- ``default``: strip diacritics and tatweel, fold alef variants to ا and ى to ي (optionally ة to ه),
  map Arabic-Indic and Persian digits to ASCII, drop Arabic and Latin punctuation, collapse whitespace.
- ``leaderboard``: the normalization of the Open Universal Arabic ASR Leaderboard (arXiv 2412.13788)
  as its ``eval.py`` does it today (commit 8fce859, 2026-07-27), step for step: ASCII and ، ؛ ؟
  punctuation removed, U+064B–U+0652 removed, hamza seats folded, Eastern Arabic digits mapped, a
  standalone و attached to the next word, whitespace collapsed. It leaves ى, ة and tatweel as they are.
- ``leaderboard-2024``: the same code at its first commit (7185c3b, 2024-12-10), which the paper's
  table used: its punctuation regex removes nothing from ordinary text (a bug fixed on 2026-07-27),
  no و attachment, only the ends stripped.
"""

from __future__ import annotations

import re
import string
import unicodedata

SCHEMES = ("default", "leaderboard", "leaderboard-2024")

TATWEEL = "\u0640"
# Harakat, tanween, shadda, sukun, maddah/hamza marks, other Quranic combining marks and the
# superscript alef (U+0670), which is a vowel sign too.
_DIACRITICS = "".join(chr(c) for c in range(0x064B, 0x0660)) + "\u0670" + "".join(
    chr(c) for c in range(0x06D6, 0x06EE) if c not in (0x06DE, 0x06E5, 0x06E6, 0x06E9)
)
_ALEFS = "\u0622\u0623\u0625\u0671\u0672\u0673"  # آ أ إ ٱ ٲ ٳ
_DIGITS = {chr(0x0660 + i): str(i) for i in range(10)} | {chr(0x06F0 + i): str(i) for i in range(10)}

_DEFAULT_TABLE = str.maketrans(
    {**{c: None for c in _DIACRITICS + TATWEEL}, **{c: "\u0627" for c in _ALEFS}, "\u0649": "\u064a", **_DIGITS}
)
_WS = re.compile(r"\s+")

# The leaderboard's eval.py (github.com/Natural-Language-Processing-Elm/open_universal_arabic_asr_leaderboard),
# its regexes verbatim. HEAD (8fce859, 2026-07-27): the punctuation class as fixed in 64b4732, then the
# conjunction و attached to the next word and whitespace collapsed. The first commit (7185c3b,
# 2024-12-10), which the paper's numbers used: an unescaped ']' closes its class after '\\', so the
# pattern is "[...]^_`{" | "}~،؛؟]" and removes no punctuation from ordinary text; only the ends stripped.
_LB_PUNCT = re.compile(r'[!"#$%&\'()*+,\-./:;<=>?@\[\\\]^_`{|}~،؛؟]')
_LB2024_PUNCT = re.compile(r'[!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~،؛؟]')
_LB_DIACRITICS = re.compile("[\u064b-\u0652]")
_LB_WAW = re.compile(r"(^|\s)و\s+")
_LB_TABLE = str.maketrans(
    {"پ": "ب", "ڤ": "ف", "آ": "ا", "أ": "ا", "إ": "ا", "ؤ": "و", "ئ": "ي", "ء": None}
    | {chr(0x0660 + i): str(i) for i in range(10)}
)


def _punct_class() -> re.Pattern:
    # Unicode punctuation (Arabic ، ؛ ؟ « » ٪ included) plus the ASCII symbols of string.punctuation.
    chars = {chr(c) for c in range(0x10000) if unicodedata.category(chr(c))[0] == "P"}
    chars |= set(string.punctuation)
    return re.compile("[" + "".join(re.escape(c) for c in sorted(chars)) + "]+")


# Punctuation becomes a space, not nothing: "قال:نعم" is two words.
_PUNCT = _punct_class()


def normalize(text: str, scheme: str = "default", *, ta_marbuta: bool = False) -> str:
    """Normalize Arabic ``text`` under ``scheme`` (``default``, ``leaderboard`` or ``leaderboard-2024``).

    ``ta_marbuta=True`` also folds ة to ه (default scheme only; the leaderboard keeps ة).
    """
    if scheme == "default":
        text = unicodedata.normalize("NFC", text).translate(_DEFAULT_TABLE)
        if ta_marbuta:
            text = text.replace("\u0629", "\u0647")
        return _WS.sub(" ", _PUNCT.sub(" ", text)).strip()
    if scheme == "leaderboard":
        text = _LB_DIACRITICS.sub("", _LB_PUNCT.sub("", text)).translate(_LB_TABLE)
        return _WS.sub(" ", _LB_WAW.sub(r"\1و", text)).strip()
    if scheme == "leaderboard-2024":
        return _LB_DIACRITICS.sub("", _LB2024_PUNCT.sub("", text)).translate(_LB_TABLE).strip()
    raise ValueError(f"unknown normalization scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")


# What the default scheme removes entirely (besides folding letters): whitespace, diacritics, tatweel,
# punctuation. A text made only of these normalizes to nothing.
_BLANK = re.compile("[\\s" + re.escape(_DIACRITICS + TATWEEL) + _PUNCT.pattern[1:-2] + "]*")


def is_blank(text: str) -> bool:
    """Whether ``normalize(text)`` is empty (only spaces, diacritics, tatweel, punctuation), without
    normalizing: a regex that stops at the first letter, digit or symbol (cheap per manifest line).
    NFC composition does not change the answer: marks compose only onto letters."""
    return _BLANK.fullmatch(text) is not None


def strip_diacritics(text: str) -> str:
    """Remove diacritics and tatweel only (no letter folding)."""
    return text.translate(str.maketrans({c: None for c in _DIACRITICS + TATWEEL}))
