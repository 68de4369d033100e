"""Merge manifests into one, refusing colliding ids (or prefixing every id with its source).

Audio paths are resolved against each input's folder and written relative to the output's
folder where they lie under it, absolute otherwise, so the output can live anywhere.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from nabra.corpus.importers.common import existing_manifest, replace_manifest, staged_manifest
from nabra.corpus.manifest import (
    ManifestLineError,
    Utterance,
    iter_lines,
    parse_line,
    resolve_audio,
    write_manifest,
)
from nabra.errors import NabraError
from nabra.files import check_output_file, remove

_SHOWN = 20  # colliding ids listed in the error


def merge_manifests(inputs: Sequence[str | os.PathLike], out: str | os.PathLike, *, prefix_ids: bool = False,
                    force: bool = False) -> int:
    """Write the utterances of ``inputs`` to ``out`` in order; returns the number written.

    Colliding ids raise a :class:`NabraError` listing them with ``FILE:LINE``. With
    ``prefix_ids`` every id becomes ``<prefix>/<id>``, the prefix being the input's file name
    without extension (made unique by its position when two inputs share a name). A file at ``out``
    that is not a manifest, or a manifest of more lines than the merge, is replaced only with ``force``.
    """
    inputs = [Path(p) for p in inputs]
    if not inputs:
        raise NabraError("nothing to merge: name at least one manifest")
    if Path(out).resolve() in {p.resolve() for p in inputs}:
        raise NabraError(f"{out}: the output must not be one of the inputs")
    out = check_output_file(out, what="manifest")
    existing = existing_manifest(out, force)
    prefixes = _prefixes(inputs) if prefix_ids else [None] * len(inputs)
    _check_ids(inputs, prefixes)
    staged = staged_manifest(out)
    try:
        n = write_manifest(staged, _utterances(inputs, prefixes))
        replace_manifest(staged, out, n, existing, force, "the merge")
    finally:
        remove(staged)
    return n


def _prefixes(inputs: list[Path]) -> list[str]:
    names = [p.name.split(".")[0] for p in inputs]
    return [f"{n}{i + 1}" if names.count(n) > 1 else n for i, n in enumerate(names)]


def _records(inputs: list[Path], prefixes: list[str | None]) -> Iterator[tuple[Path, int, Utterance]]:
    for path, prefix in zip(inputs, prefixes, strict=True):
        root = path.resolve().parent
        for lineno, line in iter_lines(path):
            try:
                utt = parse_line(line)
            except ManifestLineError as e:
                raise NabraError(f"{path}:{lineno}: {e} (run `nabra data validate {path}`)") from None
            if prefix is not None:
                utt.id = f"{prefix}/{utt.id}"
            yield path, lineno, resolve_audio(utt, root)


def _check_ids(inputs: list[Path], prefixes: list[str | None]) -> None:
    first: dict[str, str] = {}
    collisions: list[str] = []
    for path, lineno, utt in _records(inputs, prefixes):
        where = f"{path}:{lineno}"
        if utt.id in first:
            collisions.append(f"  {utt.id!r}: {first[utt.id]} and {where}")
        else:
            first[utt.id] = where
    if collisions:
        more = f"\n  ... and {len(collisions) - _SHOWN} more" if len(collisions) > _SHOWN else ""
        hint = "" if prefixes[0] is not None else " (--prefix-ids prefixes every id with its manifest's name)"
        raise NabraError(f"{len(collisions)} colliding id(s){hint}:\n" + "\n".join(collisions[:_SHOWN]) + more)


def _utterances(inputs: list[Path], prefixes: list[str | None]) -> Iterator[Utterance]:
    for _, _, utt in _records(inputs, prefixes):
        yield utt
