import os

import pytest

from nabra.cli import main
from nabra.corpus.importers.merge import merge_manifests
from nabra.corpus.manifest import Utterance, read_manifest, write_manifest
from nabra.errors import NabraError
from nabra.testing import write_clip, write_lines


@pytest.fixture
def two(tmp_path):
    """Two manifests in different folders, relative audio paths, one id in both."""
    paths = []
    for name in ("cv", "mgb"):
        folder = tmp_path / name
        write_clip(folder / "clips" / "x.wav", 0.3)
        utts = [Utterance("shared", audio=str(folder / "clips" / "x.wav"), transcript=name),
                Utterance(f"only-{name}", audio=str(folder / "clips" / "x.wav"), transcript=name)]
        write_manifest(folder / "train.jsonl", utts)
        paths.append(folder / "train.jsonl")
    return paths


def test_colliding_ids_are_listed_with_file_and_line(two, tmp_path):
    with pytest.raises(NabraError, match=r"1 colliding id\(s\) \(--prefix-ids .*\n  'shared': .*cv/train\.jsonl:1 and .*mgb/train\.jsonl:1"):
        merge_manifests(two, tmp_path / "out" / "all.jsonl")


def test_prefix_ids_and_paths_resolve_from_another_folder(two, tmp_path):
    out = tmp_path / "elsewhere" / "all.jsonl"
    assert merge_manifests(two, out, prefix_ids=True) == 4
    utts = read_manifest(out)
    assert [u.id for u in utts] == ["train1/shared", "train1/only-cv", "train2/shared", "train2/only-mgb"]
    assert all(os.path.isfile(u.audio) for u in utts)
    assert utts[0].audio == str(tmp_path / "cv" / "clips" / "x.wav")


def test_paths_under_the_output_folder_stay_relative(tmp_path):
    write_clip(tmp_path / "a" / "x.wav", 0.2)
    write_manifest(tmp_path / "a" / "m.jsonl", [Utterance("u", audio=str(tmp_path / "a" / "x.wav"), transcript="t")])
    merge_manifests([tmp_path / "a" / "m.jsonl"], tmp_path / "merged.jsonl")
    assert '"audio": "a/x.wav"' in (tmp_path / "merged.jsonl").read_text()


def test_bad_inputs(two, tmp_path):
    with pytest.raises(NabraError, match="must not be one of the inputs"):
        merge_manifests(two, two[0])
    (tmp_path / "bad.jsonl").write_text('{"id": "x", "transcript": 5}\n')
    with pytest.raises(NabraError, match=r"bad\.jsonl:1: field 'transcript' must be a string"):
        merge_manifests([tmp_path / "bad.jsonl"], tmp_path / "o.jsonl")


def test_cli(two, tmp_path, capsys):
    out = tmp_path / "all.jsonl"
    assert main(["data", "merge", *map(str, two), "--out", str(out)]) == 2
    assert "colliding" in capsys.readouterr().err
    assert main(["data", "merge", *map(str, two), "--out", str(out), "--prefix-ids"]) == 0
    assert main(["data", "validate", str(out), "--check-audio"]) == 0


def test_merge_never_replaces_what_it_did_not_write(tmp_path, capsys):
    a = write_lines(tmp_path / "a.jsonl", [{"id": "a1", "transcript": "نص"}])
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    assert main(["data", "merge", str(a), "--out", str(notes)]) == 2
    assert "exists and is not a manifest" in capsys.readouterr().err and notes.read_text() == "my notes\n"
    big = write_lines(tmp_path / "big.jsonl", [{"id": f"b{i}", "transcript": "نص"} for i in range(5)])
    assert main(["data", "merge", str(a), "--out", str(big)]) == 2
    assert "holds 5 utterances and the merge 1: not replaced" in capsys.readouterr().err
    assert main(["data", "merge", str(a), "--out", str(big), "--force"]) == 0
    assert len(big.read_text().splitlines()) == 1
