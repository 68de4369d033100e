"""The NeMo importer on the leaderboard's own manifests (datasets/mgb2_test.json in
github.com/Natural-Language-Processing-Elm/open_universal_arabic_asr_leaderboard). Its models/*.py fill the
placeholder with ``item["audio_filepath"].format(data_folder=data_folder)`` and open the result, so a
relative data folder is relative to the working directory, not to the manifest."""

import json

from nabra.cli import main
from nabra.testing import write_clip

UID = "03BD00C0-2C0B-4C81-BA8C-018175D0B4E3_spk-0001_seg-0001671:0002252"
LINE = {"audio_filepath": "{data_folder}/" + UID + ".wav", "duration": 0.5,
        "text": "أهلا بكم مشاهدينا الكرام في حلقة جديدة", "id": UID}


def test_relative_data_folder_is_relative_to_the_working_directory(tmp_path, monkeypatch, import_checked):
    work = tmp_path / "work"
    write_clip(work / "lb" / "mgb2" / f"{UID}.wav", 0.5)
    manifest = tmp_path / "repo" / "datasets" / "mgb2_test.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps(LINE, ensure_ascii=False) + "\n", encoding="utf-8")
    monkeypatch.chdir(work)
    report, utts = import_checked("nemo", manifest, tmp_path / "lb.jsonl", data_folder="lb/mgb2", split="test")
    assert utts[UID].audio == str(work / "lb" / "mgb2" / f"{UID}.wav")
    assert any("working directory" in note for note in report.notes)


def test_plain_relative_paths_stay_relative_to_the_manifest(tmp_path, monkeypatch, import_checked):
    """Without the placeholder NeMo itself resolves a relative audio_filepath against the manifest's folder."""
    write_clip(tmp_path / "set" / "wav" / "a.wav", 0.5)
    manifest = tmp_path / "set" / "test.json"
    manifest.write_text(json.dumps({"audio_filepath": "wav/a.wav", "duration": 0.5, "text": "نعم"}) + "\n")
    monkeypatch.chdir(tmp_path)
    _, utts = import_checked("nemo", manifest, tmp_path / "o.jsonl")
    assert utts["a"].audio == str(tmp_path / "set" / "wav" / "a.wav")


def test_cli_relative_data_folder(tmp_path, monkeypatch, capsys):
    write_clip(tmp_path / "wavs" / f"{UID}.wav", 0.5)
    manifest = tmp_path / "datasets" / "mgb2_test.json"
    manifest.parent.mkdir()
    manifest.write_text(json.dumps(LINE, ensure_ascii=False) + "\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["data", "import", "nemo", "datasets/mgb2_test.json", "--data-folder", "wavs",
                 "--out", "lb.jsonl", "--quiet"]) == 0
    assert "imported 1 of 1 rows" in capsys.readouterr().out
