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
