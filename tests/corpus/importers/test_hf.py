import io
import sys

import numpy as np
import pytest
import soundfile as sf

from nabra.corpus.audio import load_audio
from nabra.corpus.importers import import_corpus
from nabra.corpus.importers.hf import parse_columns
from nabra.errors import NabraError
from nabra.testing import tone, write_clip


def encoded(seconds, fmt):
    buf = io.BytesIO()
    sf.write(buf, tone(seconds), 16000, format=fmt)
    return buf.getvalue()


@pytest.fixture
def saved(tmp_path):
    """A DatasetDict saved with save_to_disk: Audio column (encoded bytes), text, a ClassLabel."""
    datasets = pytest.importorskip("datasets")
    datasets.disable_progress_bars()
    from datasets import Audio, ClassLabel, Dataset, DatasetDict, Features, Value

    # Built as a plain struct and cast: encoding through Audio() needs torchcodec in datasets 4+.
    features = Features({"audio": {"bytes": Value("binary"), "path": Value("string")}, "sentence": Value("string"),
                         "label": ClassLabel(names=["EGY", "GLF", "Martian"]), "client_id": Value("string"),
                         "up_votes": Value("int64")})

    def part(rows):
        ds = Dataset.from_dict({k: [r[i] for r in rows] for i, k in enumerate(features)}, features=features)
        return ds.cast_column("audio", Audio(decode=False))

    train = part([
        ({"bytes": encoded(0.5, "FLAC"), "path": "a.flac"}, "مرحبا", 0, "c1", 3),
        ({"bytes": encoded(0.4, "WAV"), "path": None}, "أهلا", 1, "c2", 1),
        ({"bytes": encoded(0.4, "WAV"), "path": "e.wav"}, "", 0, "c3", 0),       # empty transcript
        ({"bytes": encoded(0.4, "WAV"), "path": "m.wav"}, "نص", 2, "c4", 0),     # unknown label
    ])
    test = part([({"bytes": encoded(0.3, "OGG"), "path": "t.ogg"}, "سلام", 1, "c5", 2)])
    root = tmp_path / "ds"
    DatasetDict({"train": train, "validation": test}).save_to_disk(str(root))
    return root


def test_saved_dataset_dict(saved, tmp_path, import_checked):
    out = tmp_path / "out" / "hf.jsonl"
    report, utts = import_checked("hf", saved, out, audio_dir=out.parent / "audio",
                              columns=parse_columns("dialect=label"))
    assert report.seen == 5
    assert dict(report.reasons) == {"empty transcript": 1, "unknown dialect label": 1}
    assert {u.split for u in utts.values()} == {"train", "dev"}
    first = utts["ds-train-000001"]
    assert (first.transcript, first.dialect, first.speaker, first.extra) == ("مرحبا", "EGY", "c1", {"up_votes": 3})
    assert first.audio.endswith("audio/ds-train-000001.flac")
    assert abs(load_audio(first.audio).size - 8000) <= 1
    # Audio is written only for the rows that were imported.
    assert sorted(p.name for p in (out.parent / "audio").iterdir()) == [
        "ds-dev-000001.ogg", "ds-train-000001.flac", "ds-train-000002.wav"]


def test_parquet_with_paths_and_arrays(tmp_path, import_checked):
    pytest.importorskip("datasets")
    import pyarrow as pa
    import pyarrow.parquet as pq

    write_clip(tmp_path / "data" / "clips" / "p1.wav", 0.5)
    table = pa.table({
        "uid": ["p1", "p2", "p3"],
        "file": ["clips/p1.wav", None, "clips/missing.wav"],
        "wave": [None, {"array": tone(0.25, 8000).tolist(), "sampling_rate": 8000}, None],
        "emotion": ["غضب", "joy", "sad"],
    })
    pq.write_table(table, tmp_path / "data" / "train-00000-of-00001.parquet")
    pq.write_table(table.slice(0, 1), tmp_path / "data" / "test-00000-of-00001.parquet")  # same id again
    out = tmp_path / "o" / "p.jsonl"
    report, utts = import_checked("hf", tmp_path / "data", out, audio_dir=out.parent / "audio",
                              columns={"id": "uid", "audio": "file", "emotion": "emotion"})
    # p2 has no path in "file": it is read from the array column only when that column is mapped.
    assert dict(report.reasons) == {"serves no task: dialect/emotion/summary-only annotations need an audio file": 1,
                                    "duplicate id": 1}
    assert utts["p1"].emotion == "angry" and utts["p1"].audio == str(tmp_path / "data" / "clips" / "p1.wav")
    report, utts = import_checked("hf", tmp_path / "data" / "train-00000-of-00001.parquet", out.with_name("p2.jsonl"),
                              audio_dir=out.parent / "audio", columns={"id": "uid", "audio": "wave"})
    assert utts["p2"].emotion == "happy" and utts["p2"].duration == 0.25
    assert abs(load_audio(utts["p2"].audio).size - 4000) <= 2


def test_columns_are_checked(saved, tmp_path):
    with pytest.raises(NabraError, match="unknown field 'words'"):
        parse_columns("words=sentence")
    with pytest.raises(NabraError, match=r"no column 'nope' for transcript \(columns: audio, sentence"):
        import_corpus("hf", saved, tmp_path / "x.jsonl", audio_dir=tmp_path, columns={"transcript": "nope"})
    with pytest.raises(NabraError, match="not a saved Hugging Face dataset"):
        import_corpus("hf", tmp_path, tmp_path / "x.jsonl", audio_dir=tmp_path)


def test_without_datasets_the_error_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)
    (tmp_path / "d").mkdir()
    with pytest.raises(NabraError, match=r"pip install 'nabra\[hf\]'"):
        import_corpus("hf", tmp_path / "d", tmp_path / "x.jsonl", audio_dir=tmp_path)


def test_written_audio_matches_the_source(saved, tmp_path, import_checked):
    out = tmp_path / "hf.jsonl"
    _, utts = import_checked("hf", saved, out, audio_dir=tmp_path / "audio", columns={"dialect": "label"})
    np.testing.assert_allclose(load_audio(utts["ds-train-000002"].audio), tone(0.4), atol=1e-4)


def test_cli_writes_audio_beside_the_manifest(saved, tmp_path, capsys):
    from nabra.cli import main

    out = tmp_path / "out" / "hf.jsonl"
    assert main(["data", "import", "hf", str(saved), "--out", str(out), "--columns", "dialect=label", "--quiet"]) == 0
    assert "imported 3 of 5 rows" in capsys.readouterr().out
    assert '"audio": "audio/ds-train-000001.flac"' in out.read_text()
    assert main(["data", "validate", str(out), "--check-audio"]) == 0
