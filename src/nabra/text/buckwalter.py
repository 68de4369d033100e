"""Buckwalter transliteration: the table, conversion to Arabic script, and telling Latin text from Arabic.

QCRI's releases write Arabic in Buckwalter where a tool wanted ASCII: MGB-2's dev and test Kaldi files
(``text.all``, ``text.non_overlap_speech``) and its ``xml/bw`` transcripts are Buckwalter, beside
``xml/utf8`` in Arabic script. MADA, which produced them, tags Latin words with ``@@LAT@@`` (its
``tagEnglish`` script puts the tag before every word holding A-Z or a-z), so that they are not read as
Buckwalter: such a word keeps its letters and loses its tag (ESPnet's MGB-2 recipe does
``sed 's/@@LAT@@//g'``; the word is spoken, so it stays in the transcript).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

LATIN_TAG = "@@LAT@@"

# Buckwalter -> Arabic, complete: the 36 letters and hamza forms, the diacritics, tatweel and wasla,
# the letters of other languages QCRI's table adds (P V J G), and the XML-safe alternatives O W I for
# > & < (unused letters in the standard scheme, so mapping them is safe). Punctuation and digits are
# left as they are: the scheme does not define them.
BUCKWALTER = {
    "'": "\u0621", "|": "\u0622", ">": "\u0623", "O": "\u0623", "&": "\u0624", "W": "\u0624",
    "<": "\u0625", "I": "\u0625", "}": "\u0626", "A": "\u0627", "b": "\u0628", "p": "\u0629",
    "t": "\u062a", "v": "\u062b", "j": "\u062c", "H": "\u062d", "x": "\u062e", "d": "\u062f",
    "*": "\u0630", "r": "\u0631", "z": "\u0632", "s": "\u0633", "$": "\u0634", "S": "\u0635",
    "D": "\u0636", "T": "\u0637", "Z": "\u0638", "E": "\u0639", "g": "\u063a", "_": "\u0640",
    "f": "\u0641", "q": "\u0642", "k": "\u0643", "l": "\u0644", "m": "\u0645", "n": "\u0646",
    "h": "\u0647", "w": "\u0648", "Y": "\u0649", "y": "\u064a", "F": "\u064b", "N": "\u064c",
    "K": "\u064d", "a": "\u064e", "u": "\u064f", "i": "\u0650", "~": "\u0651", "o": "\u0652",
    "`": "\u0670", "{": "\u0671", "P": "\u067e", "J": "\u0686", "V": "\u06a4", "G": "\u06af",
}  # fmt: skip
"""Buckwalter character -> Arabic character."""
_FROM_BUCKWALTER = str.maketrans(BUCKWALTER)
_WORD = re.compile(re.escape(LATIN_TAG) + r"(\S*)|(\S+)")
_TAGGED = re.compile(re.escape(LATIN_TAG) + r"\S*")

_ARABIC_LETTER = re.compile("[\u0620-\u064a\u066e-\u066f\u0671-\u06d3\u06d5\u06fa-\u06ff\u0750-\u077f"
                            "\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufefc]")
_LATIN_LETTER = re.compile("[A-Za-z\u00c0-\u024f]")
# What English never has and Buckwalter does: its symbol letters, or a capital after a small letter
# inside a word (Alr}ys, mrHbA, AlEAlm).
_BUCKWALTER_MARK = re.compile(r"[|>&<}*$~`{']|[a-z][A-Z]")


def from_buckwalter(text: str) -> str:
    """Buckwalter transliteration -> Arabic script; ``@@LAT@@`` words keep their Latin letters, untagged."""
    return _WORD.sub(lambda m: m.group(1) if m.group(2) is None else m.group(2).translate(_FROM_BUCKWALTER), text)


def strip_latin_tags(text: str) -> str:
    """``@@LAT@@CNN`` -> ``CNN`` in text that is already in Arabic script."""
    return text.replace(LATIN_TAG, "") if LATIN_TAG in text else text


def latin_script(text: str) -> str | None:
    """``"buckwalter"`` or ``"latin"`` when ``text`` has Latin letters and no Arabic letter (``@@LAT@@``
    words aside), ``None`` otherwise (Arabic script, Arabic with Latin words in it, digits only)."""
    if LATIN_TAG in text:
        text = _TAGGED.sub("", text)
    if _ARABIC_LETTER.search(text) or not _LATIN_LETTER.search(text):  # Arabic text stops at its first letter
        return None
    return "buckwalter" if _BUCKWALTER_MARK.search(text) else "latin"


def is_buckwalter_source(texts: Iterable[str]) -> bool:
    """Whether the transcripts of one file of an Arabic corpus are Buckwalter: none has an Arabic
    letter and some have Latin letters. One Arabic line makes the file Arabic script (its Latin-only
    lines are names or English, which ``data validate`` points out)."""
    latin = False
    for text in texts:
        if _ARABIC_LETTER.search(text):
            return False
        latin = latin or latin_script(text) is not None
    return latin
