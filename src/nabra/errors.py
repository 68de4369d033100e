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
