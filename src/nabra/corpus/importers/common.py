"""What every importer shares: the skip report, the checks before writing, and the writer.

An importer is a generator of :class:`Row` (an utterance plus where it came from). It counts every
input row it reads in ``report.seen`` and either yields it or records why it skipped it. The
writer (:func:`run_import`) then rejects rows the manifest would not accept (bad values, unknown
labels, duplicate ids, unreadable audio with ``check_audio``), writes the rest through
:func:`~nabra.corpus.manifest.write_manifest` and validates the result, so that in the end
``imported + skipped == seen``: no row is lost without a reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import TextIO

from nabra.corpus.audio import AudioInfo, audio_info
from nabra.corpus.manifest import (
    ManifestLineError,
    Utterance,
    display_line,
    iter_lines,
    open_text,
    parse_line,
    parse_record,
    write_manifest,
)
from nabra.corpus.validate import (
    AUDIO_CHUNK,
    ValidationConfig,
    audio_pool,
    check_utterance,
    reason_key,
    segment_problem,
    validate_manifest,
)
from nabra.errors import AudioError, NabraError
from nabra.files import atomic_path, check_output_file, commit, remove
from nabra.progress import progress_bar

AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac"})
"""File types the importers pick up from folders (all of them load through ``load_audio``)."""



@dataclass(slots=True)
class Row:
    """One utterance from the source, with where it came from (for the skip report)."""

    where: str
    """``FILE:LINE`` or a path: where a user finds the input row."""
    utt: Utterance
    """The utterance; a relative ``audio`` path is relative to the working directory."""
    rows: int = 1
    """Input rows behind this utterance (more than one when an importer merges rows)."""
    prepare: Callable[[], None] | None = None
    """Work to do only once the row is accepted (e.g. writing its audio file out)."""


class SkipReport:
    """Counts of rows seen, imported and skipped (by reason), and the list of skipped rows.

    Skipped rows go to ``sink`` as JSON lines when one is given (the CLI's ``*.skipped.jsonl``),
    otherwise to ``items`` in memory.
    """

    def __init__(self, sink: TextIO | None = None):
        self.seen = 0
        """Input rows read by the importer."""
        self.imported = 0
        """Input rows behind the utterances written."""
        self.utterances = 0
        """Lines written to the manifest."""
        self.reasons: Counter[str] = Counter()
        """Skipped rows per reason."""
        self.items: list[dict] = []
        self.notes: list[str] = []
        """What the summary should say besides the counts (e.g. a split file the source lacks)."""
        self._sink = sink

    @property
    def skipped(self) -> int:
        return sum(self.reasons.values())

    def skip(self, where: str, reason: str, detail: str | None = None, rows: int = 1) -> None:
        """Record that the row(s) at ``where`` were not imported, and why."""
        reason, where = display_line(reason), display_line(where)  # an input's bad bytes must not stop the list
        self.reasons[reason] += rows
        item = {"where": where, "reason": reason}
        if detail is not None:
            item["detail"] = display_line(str(detail))
        if rows != 1:
            item["rows"] = rows
        if self._sink is not None:
            self._sink.write(json.dumps(item, ensure_ascii=False) + "\n")
        else:
            self.items.append(item)

    def check_balance(self) -> None:
        """Raise if rows went missing: that is a bug in an importer, not a user error."""
        if self.imported + self.skipped != self.seen:
            raise RuntimeError(f"import lost rows: seen {self.seen}, imported {self.imported}, "
                               f"skipped {self.skipped}")

    def summary(self, done: str = "imported", unit: str = "rows", result: str = "utterances") -> str:
        """Human-readable lines: imported N of M rows, then the skipped rows by reason."""
        lines = [f"{done} {self.imported:,} of {self.seen:,} {unit} as {self.utterances:,} {result}"]
        if self.skipped:
            lines.append(f"skipped {self.skipped:,} {unit}:")
            lines += [f"  {n:>9,}  {reason}" for reason, n in self.reasons.most_common()]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


@dataclass
class ImportOptions(ValidationConfig):
    """The validation settings (the one core of ``data validate``, training and imports: label sets,
    ``check_audio``, ``min_duration``, ``workers``) and what only an import adds."""

    progress: bool = False
    """Show a progress bar on stderr."""
    force: bool = False
    """Replace an existing manifest even with fewer lines, or a file at ``out`` that is not a manifest."""

    def validation(self) -> ValidationConfig:
        """The checks of the written manifest: these settings, without re-reading the audio (an
        import checks it row by row before writing)."""
        return replace(self, check_audio=False)


@dataclass
class ImportResult:
    manifest: Path
    report: SkipReport = field(repr=False)


def run_import(rows: Iterable[Row], out: str | os.PathLike, report: SkipReport,
               opts: ImportOptions | None = None) -> ImportResult:
    """Check ``rows``, write the accepted ones to the manifest ``out`` and validate it.

    The manifest is written beside ``out`` and moved into place only when it holds something, and,
    when ``out`` is a manifest already, only when it holds as many lines or more (or ``opts.force``):
    an import that finds less never replaces what was there. A file at ``out`` that is not a
    manifest is refused before any work (unless ``opts.force``)."""
    opts = opts or ImportOptions()
    out = check_output_file(out, what="manifest")
    existing = existing_manifest(out, opts.force)
    cfg = opts.validation()
    line_rows = array("L")  # input rows behind each written line, for the post-validation pass

    def accepted() -> Iterator[Utterance]:
        for row in _checked(_with_progress(rows, report, opts.progress), report, opts, cfg):
            line_rows.append(row.rows)
            yield row.utt

    staged = staged_manifest(out)
    try:
        report.utterances = write_manifest(staged, accepted())
        report.imported = sum(line_rows)
        _validate_written(staged, report, cfg, line_rows, name=out.name)
        report.check_balance()
        if not report.utterances:
            report.notes.append(f"nothing imported: {out} not written" + (" (kept as it was)" if existing else ""))
        else:
            replace_manifest(staged, out, report.utterances, existing, opts.force, "this import")
    finally:
        remove(staged)
    return ImportResult(out, report)


def staged_manifest(out: Path) -> Path:
    """Where a manifest for ``out`` is written first: beside it (relative audio paths stay right)."""
    return out.with_name(f".staged.{out.name}")


def replace_manifest(staged: Path, out: Path, lines: int, existing: int | None, force: bool, what: str) -> None:
    """Move the finished ``staged`` manifest of ``lines`` lines to ``out``, unless the manifest there holds
    more (``existing``) and ``force`` is not given."""
    if existing is not None and existing > lines and not force:
        raise NabraError(f"{out}: holds {existing:,} utterances and {what} {lines:,}: not replaced "
                         "(pass --force to replace it; nothing was written)")
    commit(staged, out)


def existing_manifest(out: Path, force: bool) -> int | None:
    """The line count of the manifest at ``out`` (None: no file); refuses a file that is no manifest
    unless ``force``."""
    if not out.is_file():
        return None
    try:
        count, first = 0, None
        for _, line in iter_lines(out, max_bytes=None):
            first = line if first is None else first
            count += 1
        parse_line(first) if first is not None else None
    except (ManifestLineError, NabraError, OSError, EOFError, UnicodeDecodeError) as e:
        if force:
            return None
        raise NabraError(f"{out}: exists and is not a manifest ({e}): choose another --out "
                         "(or pass --force to replace it)") from None
    return count


def skipped_path(out: str | os.PathLike) -> Path:
    """``data/cv.jsonl`` -> ``data/cv.skipped.jsonl`` (the skip list beside the manifest)."""
    out = Path(out)
    name = out.name
    for suffix in (".jsonl.gz", ".jsonl", ".json"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return out.with_name(name + ".skipped.jsonl")


def require_dir(path: Path, layout: str) -> Path:
    """``path`` if it is a folder, else a NabraError naming it and the expected layout."""
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "not found"
        raise NabraError(f"{path}: {what}; expected layout:\n{layout}")
    return path


def require_file(path: Path, layout: str) -> Path:
    """``path`` if it is a file, else a NabraError naming it and the expected layout."""
    if not path.is_file():
        raise NabraError(f"{path}: expected file not found; expected layout:\n{layout}")
    return path


def audio_files(root: Path, unreadable: list[tuple[str, str]] | None = None) -> Iterator[Path]:
    """Audio files under ``root``, recursively, in a stable (sorted) order. A folder that cannot be
    listed is added to ``unreadable`` as (path, reason); without the list it stops the walk."""

    def failed(e: OSError) -> None:
        if unreadable is None:
            raise NabraError(f"{e.filename}: cannot list the folder ({e.strerror})")
        unreadable.append((str(e.filename), e.strerror or str(e)))

    for folder, dirs, files in os.walk(root, onerror=failed):
        dirs.sort()
        for name in sorted(files):
            if os.path.splitext(name)[1].lower() in AUDIO_SUFFIXES:
                yield Path(folder) / name


_SAFE_NAME = re.compile(r"[\w\-][\w.\-]{0,99}")
_NAME_BYTES = 200  # file names are limited to 255 bytes; Arabic letters take 2, some scripts 3-4


def safe_name(text: str) -> str:
    """``text`` as a file name that stays in its folder (ids become audio file names): kept as it is
    when it already is one (letters, digits, ``._-``, no leading dot, at most 100 characters), else
    sanitized with a short hash of ``text`` added, so that two ids never share a name
    (``a/b`` -> ``a_b-1c3f09e2``, ``a_b`` -> ``a_b``, ``../../x`` -> ``x-…``)."""
    if _SAFE_NAME.fullmatch(text) and len(text.encode("utf-8")) <= _NAME_BYTES:
        return text
    cleaned = re.sub(r"[^\w.\-]+", "_", text).strip("._")[:100]
    while len(cleaned.encode("utf-8", "surrogatepass")) > _NAME_BYTES:
        cleaned = cleaned[:-1]
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=4).hexdigest()
    return f"{cleaned}-{digest}" if cleaned else digest


# ----------------------------------------------------------------------------- checks

def _checked(rows: Iterable[Row], report: SkipReport, opts: ImportOptions, cfg: ValidationConfig) -> Iterator[Row]:
    """Rows that pass the metadata checks (and the audio checks with ``check_audio``)."""
    seen_ids: set[str] = set()
    pending: list[Row] = []
    with audio_pool(opts) as pool:
        for row in rows:
            if row.utt.audio is not None:  # the manifest may be written anywhere: pin the path down
                row.utt.audio = os.path.abspath(row.utt.audio)
            reason = _metadata_problem(row.utt, cfg, seen_ids)
            if reason is not None:
                report.skip(row.where, *reason, rows=row.rows)
                continue
            if row.prepare is not None and not _prepared(row, report):
                continue
            if not opts.check_audio or row.utt.audio is None:
                yield row
                continue
            pending.append(row)
            if len(pending) >= AUDIO_CHUNK:
                yield from _audio_checked(pool, pending, report)
                pending = []
        yield from _audio_checked(pool, pending, report)


def _metadata_problem(utt: Utterance, cfg: ValidationConfig, seen_ids: set[str]) -> tuple[str, str] | None:
    """(reason, detail) of the first problem the manifest validation would find, or None."""
    try:
        parse_record(utt.to_dict())
    except ManifestLineError as e:
        return reason_key(str(e)), str(e)
    reasons = check_utterance(utt, cfg)
    if reasons:
        return reason_key(reasons[0]), "; ".join(reasons)
    if utt.id in seen_ids:
        return "duplicate id", utt.id
    seen_ids.add(utt.id)
    return None


def _prepared(row: Row, report: SkipReport) -> bool:
    try:
        row.prepare()
    except (NabraError, OSError, ValueError) as e:
        report.skip(row.where, "audio could not be written", str(e), rows=row.rows)
        return False
    return True


def _audio_checked(pool, rows: list[Row], report: SkipReport) -> Iterator[Row]:
    if not rows:
        return
    for row, problem in zip(rows, pool.map(_audio_problem, [r.utt for r in rows]), strict=True):
        if problem is None:
            yield row
        else:
            report.skip(row.where, *problem, rows=row.rows)


def _audio_problem(utt: Utterance) -> tuple[str, str] | None:
    """Check the header of ``utt.audio``; fill in a missing duration. (reason, detail) or None."""
    try:
        info = _cached_info(utt.audio)
    except AudioError as e:
        return ("audio file not found" if "not found" in e.reason else "unreadable audio"), str(e)
    problem = segment_problem(utt, info)
    if problem is None and utt.duration is None:
        utt.duration = round(info.duration - utt.offset, 3)
    return problem


@lru_cache(maxsize=4096)  # segments of one long recording share a header
def _cached_info(path: str) -> AudioInfo:
    return audio_info(path)


def _validate_written(out: Path, report: SkipReport, cfg: ValidationConfig, line_rows: array,
                      name: str | None = None) -> None:
    """Validate the written manifest; drop (and report) any line it rejects, and note its warnings.

    The checks above already apply the validation rules, so this pass finds nothing unless they
    drift apart; it is what guarantees that an import never leaves an invalid manifest behind.
    """
    bad: dict[int, str] = {}
    warned: Counter[str] = Counter()
    for problem in validate_manifest(out, cfg):
        if problem.warning:
            warned[reason_key(problem.reason)] += 1
        else:
            bad.setdefault(problem.line, problem.reason)
    report.notes += [f"{n:,} warning(s): {kind} (nabra data validate {out.with_name(name or out.name)} lists them)"
                     for kind, n in warned.most_common()]
    if not bad:
        return
    with atomic_path(out) as tmp, open_text(tmp, "w") as f:
        for lineno, line in iter_lines(out):
            if lineno not in bad:
                f.write(line + "\n")
                continue
            try:
                uid = parse_line(line).id
            except ManifestLineError:
                uid = "?"
            rows = line_rows[lineno - 1]
            report.skip(f"{name or out.name}:{lineno} (id {uid})", reason_key(bad[lineno]), bad[lineno], rows=rows)
            report.imported -= rows
            report.utterances -= 1


def _with_progress(rows: Iterable[Row], report: SkipReport, enabled: bool) -> Iterator[Row]:
    """Pass rows through, showing a live count of rows read when ``enabled`` (and stderr is a tty)."""
    with progress_bar("importing", None, enabled=enabled, unit="rows read", transient=True) as advance:
        for i, row in enumerate(rows):
            if i % 1000 == 0:
                advance(report.seen)
            yield row


@contextmanager
def skip_sink(path: Path) -> Iterator[SkipReport]:
    """A :class:`SkipReport` writing to ``path``; the file is removed again when nothing was skipped."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        report = SkipReport(sink=f)
        try:
            yield report
        finally:
            f.close()
            if report.skipped == 0:
                path.unlink(missing_ok=True)


def counted_lines(path: Path, report: SkipReport) -> Iterator[tuple[int, str, str]]:
    """``(line number, "FILE:LINE", text)`` of every non-blank line of a JSONL file, each counted
    in ``report.seen`` so that imported + skipped adds up to the input."""
    for lineno, line in iter_lines(path):
        report.seen += 1
        yield lineno, f"{path.name}:{lineno}", line
