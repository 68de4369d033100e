"""Importers of public Arabic speech corpora and peer-toolkit formats, one module per kind.

Each module has ``read(src, report, **options)``, a generator of
:class:`~nabra.corpus.importers.common.Row` that accounts for every input row in the
:class:`~nabra.corpus.importers.common.SkipReport`; :func:`import_corpus` runs one and writes the
manifest. ``swift`` and ``lhotse`` also ``export``.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import TYPE_CHECKING

from nabra.errors import NabraError

if TYPE_CHECKING:
    from nabra.corpus.importers.common import ImportOptions, ImportResult, SkipReport

IMPORTERS: dict[str, str] = {
    "commonvoice": "Common Voice release folder (TSV metadata + clips/)",
    "mgb2": "MGB-2 release (train XML, dev/test Kaldi tables in Buckwalter), or a Kaldi data folder",
    "adi": "ADI-5 / ADI-17 dialect identification layouts",
    "folder": "a folder of audio with the label in folder or file names",
    "hf": "a Hugging Face dataset saved on disk (save_to_disk folder or parquet)",
    "swift": "ms-swift / LLaMA-Factory data: JSONL or a JSON array (messages, sharegpt, alpaca, query/response)",
    "lhotse": "Lhotse recordings + supervisions manifests",
    "librispeech": "LibriSpeech subsets (English read speech; SPEAKERS.TXT for gender)",
    "l2arctic": "L2-ARCTIC (English of 24 speakers of six L1s: l1 and gender fields)",
    "nemo": "a NeMo ASR manifest (audio_filepath, duration, text): the Arabic ASR leaderboard's test sets",
    "csv": "a CSV/TSV table of audio paths with label, transcript or other columns (ANAD, SADA, ...)",
}
"""Kind -> what it reads. The kind is also the module name under this package (but :data:`MODULES`)."""
MODULES = {"csv": "table"}
"""Kinds whose module has another name (``csv`` would shadow the standard library's module)."""


def importer(kind: str) -> ModuleType:
    """The module implementing ``kind`` (imported on first use: some need optional extras)."""
    if kind not in IMPORTERS:
        raise NabraError(f"unknown import kind {kind!r}; kinds: {', '.join(IMPORTERS)}")
    return importlib.import_module(f"{__name__}.{MODULES.get(kind, kind)}")


def import_corpus(kind: str, src: str | os.PathLike, out: str | os.PathLike, *,
                  options: ImportOptions | None = None, report: SkipReport | None = None,
                  **kind_options) -> ImportResult:
    """Import ``src`` as ``kind`` into the manifest ``out``; ``kind_options`` go to its ``read``."""
    from nabra.corpus.importers.common import SkipReport, run_import

    report = report if report is not None else SkipReport()
    rows = importer(kind).read(src, report, **kind_options)
    return run_import(rows, out, report, options)


def __getattr__(name: str):
    # The shared machinery is loaded on first use, so that `nabra --help` does not pay for the
    # audio stack (numpy, soundfile) just to list these verbs.
    if name in ("ImportOptions", "ImportResult", "SkipReport", "run_import"):
        from nabra.corpus.importers import common

        return getattr(common, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["IMPORTERS", "ImportOptions", "ImportResult", "SkipReport", "import_corpus", "importer", "run_import"]
