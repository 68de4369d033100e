import pytest

from nabra.cli import main
from nabra.corpus.importers import ImportOptions, import_corpus
from nabra.corpus.importers.folder import parse_label_map
from nabra.corpus.labels import EMOTIONS
from nabra.errors import NabraError
from nabra.testing import write_clip


@pytest.fixture
def emotions(tmp_path):
    """EYASE-like: <gender>/<emotion>/<speaker>_<n>.<ext>, in several formats, one corrupt file."""
    root = tmp_path / "ser"
    write_clip(root / "Female" / "ang" / "f1_01.wav", 0.3)
    write_clip(root / "Female" / "hap" / "f1_02.flac", 0.3, fmt="FLAC")
    write_clip(root / "Male" / "neu" / "m1_01.ogg", 0.3, fmt="OGG")
    write_clip(root / "Male" / "sad" / "m1_02.mp3", 0.5, sample_rate=44100, fmt="MP3")
    write_clip(root / "Male" / "sad" / "m1_03.opus", 0.3, sample_rate=48000, fmt="OGG", subtype="OPUS")
    write_clip(root / "Male" / "fea" / "m1_04.wav", 0.3)           # no such emotion
    (root / "Male" / "ang").mkdir(parents=True)
    (root / "Male" / "ang" / "m1_05.wav").write_bytes(b"RIFF....WAVEjunk")  # corrupt
    (root / "Male" / "ang" / "readme.txt").write_text("not audio")
    return root


LABELS = {"ang": "angry", "hap": "happy", "neu": "neutral", "sad": "sad"}


def test_label_folder_at_depth_with_a_map(emotions, tmp_path, import_checked):
    report, utts = import_checked("folder", emotions, tmp_path / "ser.jsonl", ImportOptions(check_audio=True),
                              field="emotion", labels=EMOTIONS, label_map=LABELS, label_depth=2,
                              speaker_regex=r"/(?P<speaker>[fm]\d+)_")
    assert report.seen == 7
    assert dict(report.reasons) == {"unknown emotion label": 1, "unreadable audio": 1}
    assert {k: u.emotion for k, u in utts.items()} == {
        "Female-ang-f1_01": "angry", "Female-hap-f1_02": "happy", "Male-neu-m1_01": "neutral",
        "Male-sad-m1_02": "sad", "Male-sad-m1_03": "sad"}
    assert utts["Male-sad-m1_03"].speaker == "m1" and utts["Male-sad-m1_03"].duration == pytest.approx(0.3, abs=0.01)


def test_labels_are_matched_by_alias_without_a_map(tmp_path, import_checked):
    write_clip(tmp_path / "c" / "غضب" / "a.wav", 0.2)
    write_clip(tmp_path / "c" / "Joy" / "b.wav", 0.2)
    _, utts = import_checked("folder", tmp_path / "c", tmp_path / "c.jsonl", field="emotion", labels=EMOTIONS)
    assert {u.emotion for u in utts.values()} == {"angry", "happy"}


def test_baved_style_file_name_labels(tmp_path, import_checked):
    # BAVED: <speaker>-<gender>-<age>-<word>-<emotion level>-<record>.wav, in one folder per word.
    root = tmp_path / "baved"
    for name in ("0-m-21-0-0-1.wav", "0-m-21-0-1-2.wav", "7-f-30-3-2-3.wav", "7-f-30-3-9-4.wav", "oops.wav"):
        write_clip(root / "3" / name, 0.2)
    levels = EMOTIONS.with_names(["low", "neutral", "high"])
    report, utts = import_checked("folder", root, tmp_path / "b.jsonl", ImportOptions(emotions=levels),
                              field="emotion", labels=levels, label_map={"0": "low", "1": "neutral", "2": "high"},
                              label_regex=r"(?P<label>\d)-\d+\.wav$", speaker_regex=r"/(\d+)-")
    assert dict(report.reasons) == {"unknown emotion label": 1, "path does not match --label-regex": 1}
    assert {u.emotion for u in utts.values()} == {"low", "neutral", "high"}
    assert utts["3-7-f-30-3-2-3"].speaker == "7"


def test_label_map_parsing(tmp_path):
    assert parse_label_map("ang=angry, hap=happy") == {"ang": "angry", "hap": "happy"}
    (tmp_path / "m.json").write_text('{"neu": "neutral", "fea": null}')
    assert parse_label_map(str(tmp_path / "m.json")) == {"neu": "neutral", "fea": None}
    with pytest.raises(NabraError, match="expected a JSON file or"):
        parse_label_map("ang")


def test_bad_options(emotions, tmp_path):
    with pytest.raises(NabraError, match="needs a group named 'label'"):
        import_corpus("folder", emotions, tmp_path / "x.jsonl", field="emotion", labels=EMOTIONS, label_regex="a(b)(c)")
    with pytest.raises(NabraError, match=r"(?s)nope: not found; expected layout"):
        import_corpus("folder", tmp_path / "nope", tmp_path / "x.jsonl", field="emotion", labels=EMOTIONS)


def test_cli(emotions, tmp_path, capsys):
    out = tmp_path / "ser.jsonl"
    code = main(["data", "import", "folder", str(emotions), "--out", str(out), "--field", "emotion",
                 "--label-depth", "2", "--label-map", "ang=angry,hap=happy,neu=neutral", "--quiet"])
    assert code == 0
    # "sad" needs no mapping; the corrupt file passes without --check-audio.
    assert "imported 6 of 7 rows" in capsys.readouterr().out
    assert (tmp_path / "ser.skipped.jsonl").read_text().count("\n") == 1
