"""Errors a user can cause. The CLI prints them as one line and exits non-zero; anything else is a bug."""

from __future__ import annotations


class NabraError(Exception):
    """A problem with the user's input (a file, a flag, a config), not with Nabra itself."""


class AudioError(NabraError):
    """An audio file that cannot be read or used; the message names the file."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


_UNSHOWN = {c: f"\\u{c:04x}" for c in (*range(0x00, 0x20), *range(0x7F, 0xA0), 0x061C, 0x200E, 0x200F,
                                       *range(0x202A, 0x202F), *range(0x2066, 0x206A)) if c not in (0x09, 0x0A)}


def printable(text: str) -> str:
    """``text`` with control characters and bidirectional-formatting characters (which can make a path
    read as another on a terminal: U+202E, U+2066...) written as escapes; line breaks and tabs stay."""
    return str(text).translate(_UNSHOWN)


def choices_text(options) -> str:
    """``a, b or c`` (``None`` written as null): how an error lists the values a setting takes."""
    shown = ["null" if o is None else str(o) for o in options]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"


def check_choices(obj, section: str) -> None:
    """Refuse a value outside its ``Literal[...]`` type in any field of the dataclass ``obj`` (the run
    config's sections): the one check of every setting that takes one of a few words."""
    import dataclasses
    import typing

    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        tp = hints[f.name]
        args = typing.get_args(tp)
        literal = tp if typing.get_origin(tp) is typing.Literal else next(
            (a for a in args if typing.get_origin(a) is typing.Literal), None)
        if literal is None:
            continue
        allowed = (*typing.get_args(literal), *((None,) if type(None) in args else ()))
        value = getattr(obj, f.name)
        if value not in allowed:
            raise NabraError(f"{section}.{f.name} must be {choices_text(allowed)}, got {value!r}")
