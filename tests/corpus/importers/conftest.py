import pytest

from nabra.corpus.importers import ImportOptions, SkipReport, import_corpus
from nabra.corpus.manifest import read_manifest
from nabra.corpus.validate import validate_manifest


def _run(kind, src, out, options=None, **kind_options):
    """Import, then check what every import must satisfy: rows balance and the output validates."""
    options = options or ImportOptions()
    report = SkipReport()
    import_corpus(kind, src, out, options=options, report=report, **kind_options)
    assert report.imported + report.skipped == report.seen
    assert len(out.read_text(encoding="utf-8").splitlines()) == report.utterances
    assert [p.format(out) for p in validate_manifest(out, options.validation())] == []
    return report, {u.id: u for u in read_manifest(out)}


@pytest.fixture
def import_checked():
    return _run
