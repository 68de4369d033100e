"""Atomic writes: a file or folder is written under a temporary name beside it and renamed once
complete, so a crash, a kill or a full disk never leaves half of it under the real name."""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from nabra.errors import NabraError

_STREAM_SIGNS = ("unexpected pos", "basic_ios::clear", "failed writing file", "No space left", "os error 28")
"""How a full disk shows through torch.save (C++ stream errors) and safetensors (a Rust I/O error)."""


def free_bytes(path: str | os.PathLike) -> int:
    """Free bytes on the file system holding ``path`` (or its nearest existing parent)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def size_text(n: float) -> str:
    """``1536`` -> ``1.5 KiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} TiB"


def disk_full(error: BaseException, path: str | os.PathLike, needed: int | None = None) -> NabraError | None:
    """The one-line error for ``error`` when it means the disk holding ``path`` is full, else None.

    An ``OSError`` says so by its errno; torch's and safetensors' writers wrap it in C++/Rust errors
    ("basic_ios::clear: iostream error", "unexpected pos ..."), which count as a full disk when under
    16 MiB are left. ``needed``: what the write needed, for the message."""
    chain, e = [], error
    while e is not None and len(chain) < 8:
        chain.append(e)
        e = e.__cause__ or e.__context__
    full = any(isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT) for e in chain)
    free = free_bytes(path)
    if not full and any(sign in str(e) for e in chain for sign in _STREAM_SIGNS):
        full = free < (16 << 20)  # the stream errors say nothing of why: only a nearly full disk explains them
    if not full:
        return None
    need = f"; it needs about {size_text(needed)}" if needed else ""
    return NabraError(f"{path}: no space left on device ({size_text(free)} free{need})")


def _overlap(out: Path, other: Path) -> str | None:
    """How ``out`` and ``other`` (both resolved) overlap: "is", "is inside", "holds", or None."""
    if out == other:
        return "is"
    if other in out.parents:
        return "is inside"
    if out in other.parents:
        return "holds"
    return None


def check_output_folder(out: str | os.PathLike, marker: str, *, force: bool = False, what: str = "output",
                        protect: Iterable[tuple[str, str | os.PathLike]] = ()) -> Path:
    """The one rule of every command that writes a folder (export, model init-tiny/compose/merge): the
    folder may be absent or empty, or hold an earlier output of the same command (recognised by its
    ``marker`` file), which only ``force`` replaces; never a folder of someone else's files, a file,
    or a folder that holds or lies inside one of ``protect`` ((name, path): the run being exported,
    its weights, the base model). Checked before any work; returns ``out`` made absolute."""
    out = Path(os.path.abspath(out))
    where = out.resolve()
    for name, path in protect:
        relation = _overlap(where, Path(path).resolve())
        if relation is not None:
            raise NabraError(f"{out}: {relation} {name} {path}: write the {what} to a folder of its own")
    if out.exists() and not out.is_dir():
        raise NabraError(f"{out}: is a file, not a folder: the {what} is written to an absent or empty folder")
    if out.is_dir():
        held = sorted(p.name for p in out.iterdir())
        if held and marker not in held:
            shown = ", ".join(held[:5]) + (f" and {len(held) - 5} more" if len(held) > 5 else "")
            raise NabraError(f"{out}: holds {shown}, and is not an earlier {what} of Nabra's (no {marker}): Nabra "
                             "never replaces what it did not write; choose an absent or empty folder")
        if held and not force:
            raise NabraError(f"{out}: holds an earlier {what} (its {marker}): pass --force to replace it")
    _check_parent_writable(out)
    return out


def check_output_file(out: str | os.PathLike, *, what: str = "output",
                      protect: Iterable[tuple[str, str | os.PathLike]] = ()) -> Path:
    """The checks of a command that writes one file, before any work: not a folder, not inside one of
    ``protect``, in a folder that can be written. Returns ``out`` made absolute."""
    out = Path(os.path.abspath(out))
    for name, path in protect:
        relation = _overlap(out.resolve(), Path(path).resolve())
        if relation is not None:
            raise NabraError(f"{out}: {relation} {name} {path}: write the {what} elsewhere")
    if out.is_dir():
        raise NabraError(f"{out}: is a folder: --out names the file to write")
    _check_parent_writable(out)
    return out


def _check_parent_writable(out: Path) -> None:
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise NabraError(f"{parent}: is a file, not a folder: {out} cannot be written there")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise NabraError(f"{parent}: not writable (permission denied): {out} cannot be written there")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()
"""The mode a file gets from ``open()`` here. safetensors writes its files 0600 (a temporary file
renamed): weights would be the only files of a folder others cannot read."""


def normalize_modes(path: str | os.PathLike) -> None:
    """Give the files written at ``path`` (a file, or a folder's files) the mode ``open()`` gives."""
    path = Path(path)
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file() and not p.is_symlink()]
    for f in files:
        if f.stat().st_mode & 0o777 != _FILE_MODE:
            os.chmod(f, _FILE_MODE)


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
    """Move the finished ``tmp`` to ``final``, replacing what was there (a folder is replaced whole:
    the old one is moved aside first and put back if the rename fails)."""
    final = Path(final)
    if Path(tmp).is_dir() and final.is_dir():  # os.replace cannot replace a non-empty folder
        old = final.with_name(f".old.{final.name}")
        remove(old)
        os.replace(final, old)
        try:
            os.replace(tmp, final)
        except BaseException:
            os.replace(old, final)
            raise
        remove(old)
        return final
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
    except BaseException as e:
        full = disk_full(e, final) if isinstance(e, Exception) else None
        remove(tmp)
        if full is not None:
            raise full from None
        raise
    try:
        normalize_modes(tmp)
        commit(tmp, final)
    except BaseException:
        remove(tmp)  # a failed rename (the target became a folder, a read-only folder) leaves no .tmp.*
        raise


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


def open_append(path: str | os.PathLike):
    """Open a JSONL log for appending (UTF-8), first ending a line a kill left without its newline,
    so the next record is not glued to the torn one (and lost with it when it is dropped)."""
    path = Path(path)
    if path.is_file() and path.stat().st_size:
        with open(path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            torn = f.read(1) != b"\n"
        if torn:
            with open(path, "ab") as f:
                f.write(b"\n")
    return open(path, "a", encoding="utf-8")


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


@contextmanager
def staged_folder(final: str | os.PathLike, *, replace: bool = False) -> Iterator[Path]:
    """A temporary folder beside ``final`` to write a model into; on success its files are moved into
    ``final`` (created if absent), ``config.json`` last, so a kill never leaves a folder that looks like
    a model, and an existing empty folder (a mount point, a symlink) stays the folder it is. With
    ``replace`` what ``final`` held is removed first (an earlier output :func:`check_output_folder`
    allowed replacing). The temporary folder is removed either way."""
    final = Path(final)
    tmp = temp_path(final)
    remove(tmp)
    try:
        tmp.mkdir(parents=True)
        yield tmp
        normalize_modes(tmp)
        final.mkdir(parents=True, exist_ok=True)
        if replace:
            for path in final.iterdir():
                remove(path)
        for path in sorted(tmp.iterdir(), key=lambda p: p.name == "config.json"):
            os.replace(path, final / path.name)
    finally:
        remove(tmp)


def read_json(path: Path) -> dict:
    """The JSON object in ``path``, or a NabraError naming the file (never a decode traceback)."""
    try:
        value = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise NabraError(f"{path}: not a JSON file (not UTF-8 text: byte 0x{e.object[e.start]:02X} at "
                         f"offset {e.start})") from None
    except json.JSONDecodeError as e:
        raise NabraError(f"{path}: not a JSON file ({e.msg} at line {e.lineno} column {e.colno})") from None
    except RecursionError:
        raise NabraError(f"{path}: not a usable JSON file (nested too deeply)") from None
    if not isinstance(value, dict):
        raise NabraError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value
