"""Label sets for dialect (DID) and emotion (SER): names plus Arabic and English aliases.

The label sets are configuration: these are only the defaults (ADI-5 regions; five emotions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

from nabra.errors import NabraError
from nabra.text.arabic import normalize


def label_key(text: str) -> str:
    """The form labels are compared in: Arabic-normalized (diacritics, alef/ya/ta-marbuta variants,
    punctuation), case-folded, single-spaced."""
    return normalize(str(text), ta_marbuta=True).casefold()


@dataclass(frozen=True)
class LabelSet:
    """The allowed labels of one classification field, with aliases used to parse free text."""

    field: str
    """Manifest field the labels belong to (``dialect`` or ``emotion``)."""
    names: tuple[str, ...]
    """Canonical label names, as written in the manifest."""
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Other spellings (Arabic, English) of each canonical name."""

    def __contains__(self, name: object) -> bool:
        return name in self.names

    @cached_property
    def keys(self) -> dict[str, str]:
        """:func:`label_key` of every name and alias -> its canonical name (a name wins over
        another label's alias)."""
        table = {label_key(alias): name for name in self.names for alias in self.aliases.get(name, ())}
        table.update({label_key(name): name for name in self.names})
        table.pop("", None)
        return table

    def lookup(self, value: object) -> str | None:
        """The canonical name that ``value`` spells (a name or an alias, compared by
        :func:`label_key`), else None. The one matcher of importers and of generated answers."""
        return None if value is None else self.keys.get(label_key(value))

    def with_names(self, names: list[str] | tuple[str, ...]) -> LabelSet:
        """The same field restricted/extended to ``names`` (aliases kept for names that have them)."""
        names = tuple(n.strip() for n in names if n.strip())
        if not names:
            raise NabraError(f"empty {self.field} label set")
        if len(set(names)) != len(names):
            raise NabraError(f"duplicate names in {self.field} label set: {', '.join(names)}")
        return LabelSet(self.field, names, {n: self.aliases.get(n, ()) for n in names})


DIALECTS = LabelSet(
    "dialect",
    ("EGY", "GLF", "LAV", "NOR", "MSA"),
    {
        "EGY": ("Egyptian", "مصري", "مصرية", "المصرية", "اللهجة المصرية"),
        "GLF": ("Gulf", "Khaleeji", "خليجي", "خليجية", "الخليجية", "اللهجة الخليجية"),
        "LAV": ("Levantine", "Shami", "شامي", "شامية", "الشامية", "اللهجة الشامية"),
        "NOR": ("North African", "Maghrebi", "مغاربي", "مغاربية", "المغاربية", "اللهجة المغاربية"),
        "MSA": ("Modern Standard Arabic", "Standard", "فصحى", "الفصحى", "العربية الفصحى"),
    },
)

EMOTIONS = LabelSet(
    "emotion",
    ("neutral", "happy", "sad", "angry", "surprised"),
    {
        "neutral": ("محايد", "حياد", "هادئ"),
        "happy": ("joy", "happiness", "سعيد", "سعادة", "فرح"),
        "sad": ("sadness", "حزين", "حزن"),
        "angry": ("anger", "غاضب", "غضب"),
        "surprised": ("surprise", "متفاجئ", "مندهش", "دهشة", "مفاجأة"),
    },
)


def label_sets(dialects: Sequence[str] | str | None = None,
               emotions: Sequence[str] | str | None = None) -> tuple[LabelSet, LabelSet]:
    """The dialect and emotion label sets of a run or a command: the defaults, or the defaults
    narrowed/renamed to ``dialects``/``emotions`` (lists, or comma-separated as on a command line)."""
    def pick(default: LabelSet, names) -> LabelSet:
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",") if n.strip()]
        return default.with_names(list(names)) if names else default

    return pick(DIALECTS, dialects), pick(EMOTIONS, emotions)
