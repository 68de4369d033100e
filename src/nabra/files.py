"""Atomic writes: a file or folder is written under a temporary name beside it and renamed once
complete, so a crash, a kill or a full disk never leaves half of it under the real name."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def temp_path(final: str | os.PathLike) -> Path:
    """The temporary name of ``final``: ``.tmp.<name>`` beside it (the suffix stays: ``.gz`` stays
    compressed, ``.wav`` stays a WAV)."""
    final = Path(final)
    return final.with_name(f".tmp.{final.name}")


def remove(path: str | os.PathLike) -> None:
    """Remove a file or a folder tree if it exists."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def commit(tmp: str | os.PathLike, final: str | os.PathLike) -> Path:
    """Move the finished ``tmp`` to ``final``, replacing what was there (a folder is replaced whole)."""
    final = Path(final)
    if Path(tmp).is_dir() and final.is_dir():
        shutil.rmtree(final)  # os.replace cannot replace a non-empty folder
    os.replace(tmp, final)
    return final


@contextmanager
def atomic_path(final: str | os.PathLike, *, folder: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write ``final`` to (an empty folder with ``folder=True``); it
    replaces ``final`` when the block ends, and is removed instead when the block raises."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(final)
    remove(tmp)  # a leftover of an earlier, killed attempt
    if folder:
        tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        remove(tmp)
        raise
    commit(tmp, final)


def read_records(path: str | os.PathLike) -> tuple[list[dict], list[int]]:
    """The JSON objects of a JSONL log Nabra wrote (``metrics.jsonl``, ``quarantine.jsonl``), and the
    numbers of the lines that are not one: a kill mid-write tears the last line, which must not
    stop the run that reads the log again."""
    records, torn = [], []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
                torn.append(lineno)
                continue
            if isinstance(record, dict):
                records.append(record)
            else:
                torn.append(lineno)
    return records, torn


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
