"""Checks the tests share that need pytest or the use/ room (the shipped ``nabra.testing`` needs neither)."""

from pathlib import Path

import pytest

from nabra.corpus.manifest import read_manifest
from nabra.tasks import prompt_example
from nabra.use.analyze import Analyzer, label_probabilities, label_probabilities_cached


def check_cached_label_scoring(run: str | Path, manifest: str | Path, n: int = 5) -> None:
    """Assert that analyze's cached label scoring equals whole-sequence scoring on ``n`` test clips
    of ``manifest`` (batches of other sizes: other padding), for DID and SER."""
    analyzer = Analyzer(run)
    try:
        utts = [u for u in read_manifest(manifest) if u.split == "test"][:n]
        for task in analyzer.task_set.label_tasks():
            examples = [prompt_example(u, task, task_set=analyzer.task_set) for u in utts]
            if not examples:
                continue
            args = (analyzer.model, analyzer.bundle, analyzer.collator, analyzer.store, examples,
                    analyzer.task_set.labels(task).names)
            ref = label_probabilities(*args, batch_size=2, progress=False)
            got = label_probabilities_cached(*args, batch_size=3, progress=False)
            for r, g in zip(ref, got, strict=True):
                assert g == pytest.approx(r, abs=1e-5)
    finally:
        analyzer.close()
