import gzip
import json

import pytest

from nabra.corpus.manifest import (
    ManifestLineError,
    Utterance,
    iter_manifest,
    parse_line,
    read_manifest,
    write_manifest,
)
from nabra.errors import NabraError
from nabra.testing import write_lines


@pytest.mark.parametrize(
    ("fields", "tasks"),
    [
        ({"audio": "a.wav", "transcript": "نص"}, ("asr",)),
        ({"audio": "a.wav", "summary": "ملخص"}, ("ssum",)),
        ({"audio": "a.wav", "transcript": "نص", "summary": "ملخص"}, ("asr", "ssum", "tsum")),
        ({"transcript": "نص", "summary": "ملخص"}, ("tsum",)),  # a text summarization pair
        ({"audio": "a.wav", "dialect": "EGY", "emotion": "sad"}, ("did", "ser")),
        ({"dialect": "EGY"}, ()),  # a label without audio serves nothing
        ({"audio": "a.wav"}, ()),
    ],
)
def test_tasks_follow_from_annotations(fields, tasks):
    assert Utterance(id="x", **fields).tasks() == tasks


def test_round_trip_keeps_unknown_fields_and_relative_paths(tmp_path):
    src = write_lines(tmp_path / "in.jsonl", [
        {"id": "a", "audio": "clips/a.wav", "transcript": "مرحبا", "gender": "f", "meta": {"snr": 12}},
        {"id": "b", "audio": "/abs/b.wav", "offset": 1.5, "duration": 2.0, "dialect": "EGY", "split": "test"},
    ])
    utts = read_manifest(src)
    assert utts[0].audio == str(tmp_path / "clips" / "a.wav")  # resolved against the manifest's folder
    assert utts[0].extra == {"gender": "f", "meta": {"snr": 12}}
    out = tmp_path / "out.jsonl"
    assert write_manifest(out, utts) == 2
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert lines[0] == {"id": "a", "audio": "clips/a.wav", "transcript": "مرحبا", "gender": "f", "meta": {"snr": 12}}
    assert lines[1]["audio"] == "/abs/b.wav" and lines[1]["offset"] == 1.5
    assert "مرحبا" in out.read_text(encoding="utf-8")  # UTF-8, not \u escapes


def test_gzip_manifests_are_read_and_written(tmp_path):
    path = tmp_path / "m.jsonl.gz"
    write_manifest(path, [Utterance(id="a", transcript="نص", audio="a.wav")])
    with gzip.open(path, "rt", encoding="utf-8") as f:
        assert json.loads(f.readline())["id"] == "a"
    assert [u.id for u in iter_manifest(path)] == ["a"]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", "bad JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"audio": "a.wav"}', "missing id"),
        ('{"id": "  "}', "empty id"),
        ('{"id": 7}', "field 'id' must be a string, got int"),
        ('{"id": "a", "duration": "3.2"}', "field 'duration' must be a number, got str"),
        ('{"id": "a", "duration": true}', "field 'duration' must be a number, got bool"),
        ('{"id": "a", "duration": -1}', "must be a finite positive number"),
        ('{"id": "a", "transcript": "   "}', "empty transcript"),
        ('{"id": "a", "split": "validation"}', "split 'validation' is not one of train, dev, test"),
    ],
)
def test_bad_lines_are_rejected_with_a_reason(line, reason):
    with pytest.raises(ManifestLineError, match=reason):
        parse_line(line)


def test_iter_manifest_names_file_and_line(tmp_path):
    path = write_lines(tmp_path / "m.jsonl", [{"id": "a", "transcript": "x"}, "", "{oops"])
    with pytest.raises(NabraError, match=r"m\.jsonl:3: bad JSON"):
        list(iter_manifest(path))


def test_missing_manifest_is_a_clear_error(tmp_path):
    with pytest.raises(NabraError, match="manifest not found"):
        list(iter_manifest(tmp_path / "nope.jsonl"))
