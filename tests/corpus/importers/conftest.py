import pytest

from nabra.corpus.importers import ImportOptions, SkipReport, import_corpus
from nabra.corpus.manifest import read_manifest
from nabra.corpus.validate import validate_manifest


def _run(kind, src, out, options=None, allow_warnings=False, **kind_options):
    """Import, then check what every import must satisfy: rows balance and the output validates
    (without a warning either, unless ``allow_warnings``)."""
    options = options or ImportOptions()
    report = SkipReport()
    import_corpus(kind, src, out, options=options, report=report, **kind_options)
    assert report.imported + report.skipped == report.seen
    if not report.utterances:  # nothing imported: nothing written
        assert not out.exists()
        return report, {}
    assert len(out.read_text(encoding="utf-8").splitlines()) == report.utterances
    problems = [p for p in validate_manifest(out, options.validation()) if not (allow_warnings and p.warning)]
    assert [p.format(out) for p in problems] == []
    return report, {u.id: u for u in read_manifest(out)}


@pytest.fixture
def import_checked():
    return _run
