import json

import pytest

from nabra.corpus.importers import ImportOptions, SkipReport, common, run_import
from nabra.corpus.importers.common import Row, reason_key, skipped_path
from nabra.corpus.labels import DIALECTS, EMOTIONS
from nabra.corpus.manifest import Utterance, read_manifest
from nabra.testing import write_clip


def rows(report, utts):
    for i, utt in enumerate(utts, 1):
        report.seen += 1
        yield Row(f"src:{i}", utt)


def test_checks_before_writing(tmp_path):
    clip = str(write_clip(tmp_path / "a.wav", 1.0))
    utts = [
        Utterance("ok", audio=clip, transcript="نص"),
        Utterance("ok", audio=clip, transcript="نص"),                      # duplicate id
        Utterance("lbl", audio=clip, dialect="Martian"),                     # unknown label
        Utterance("none", audio=clip),                                       # no annotation
        Utterance("short", audio=clip, transcript="نص", duration=0.01),
        Utterance("past", audio=clip, transcript="نص", offset=0.5, duration=2.0),
        Utterance("gone", audio=str(tmp_path / "gone.wav"), transcript="نص"),
        Utterance("seg", audio=clip, transcript="نص", offset=0.25),
    ]
    report = SkipReport()
    run_import(rows(report, utts), tmp_path / "m.jsonl", report, ImportOptions(check_audio=True, workers=2))
    assert dict(report.reasons) == {
        "duplicate id": 1, "dialect X is not in the label set (EGY, GLF, LAV, NOR, MSA)": 1,
        "no annotation (needs at least one of transcript, summary, dialect, emotion)": 1,
        "duration N s is shorter than the minimum N s": 1, "segment runs past the end of the audio": 1,
        "audio file not found": 1}
    written = {u.id: u for u in read_manifest(tmp_path / "m.jsonl")}
    assert written["ok"].duration == 1.0 and written["seg"].duration == 0.75  # filled from the header
    assert report.items[0] == {"where": "src:2", "reason": "duplicate id", "detail": "ok"}


def test_validation_after_writing_is_the_safety_net(tmp_path, monkeypatch):
    # If the checks before writing ever miss something, the written manifest is still cleaned.
    monkeypatch.setattr(common, "_metadata_problem", lambda utt, cfg, seen: None)
    report = SkipReport()
    utts = [Utterance("a", transcript="x", audio="a.wav"), Utterance("a", transcript="y", audio="b.wav")]
    run_import(rows(report, utts), tmp_path / "m.jsonl", report)
    assert report.seen == 2 and report.imported == 1 and report.utterances == 1
    assert report.items[0]["where"] == "m.jsonl:2 (id a)"
    assert [u.transcript for u in read_manifest(tmp_path / "m.jsonl")] == ["x"]


def test_lost_rows_are_a_bug():
    report = SkipReport()
    report.seen = 3
    report.imported = 1
    report.skip("x", "why")
    with pytest.raises(RuntimeError, match="import lost rows"):
        report.check_balance()


def test_helpers():
    assert skipped_path("data/cv.jsonl").name == "cv.skipped.jsonl"
    assert skipped_path("data/cv.jsonl.gz").name == "cv.skipped.jsonl"
    assert reason_key("duration 0.05 s is shorter than the minimum 0.1 s") == "duration N s is shorter than the minimum N s"
    assert DIALECTS.lookup(" egyptian ") == "EGY" and EMOTIONS.lookup("غضب") == "angry"
    assert DIALECTS.lookup("EGY ") == "EGY" and DIALECTS.lookup("Martian") is None


def test_relative_source_paths_resolve_from_the_manifest(tmp_path, monkeypatch, import_checked):
    # An importer given a relative SRC yields relative audio paths; the manifest, written in
    # another folder, must still point at the files.
    write_clip(tmp_path / "corpus" / "angry" / "a.wav", 0.2)
    monkeypatch.chdir(tmp_path)
    _, utts = import_checked("folder", "corpus", tmp_path / "out" / "m.jsonl", field="emotion", labels=EMOTIONS)
    assert utts["angry-a"].audio == str(tmp_path / "corpus" / "angry" / "a.wav")


def test_skip_list_takes_bad_bytes_and_lone_surrogates(tmp_path):
    from nabra.corpus.importers.common import skip_sink

    path = tmp_path / "x.skipped.jsonl"
    with skip_sink(path) as report:
        report.skip("list.txt:3", "unknown dialect label", "\udcff\udcfe")  # a byte that is not UTF-8, kept escaped
        report.skip("list.txt:4", "bad", "\ud800")  # a lone surrogate from a JSON escape
    items = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    assert [i["detail"] for i in items] == ["\ufffd\ufffd", "\\ud800"]


def test_safe_names_are_distinct_and_stay_in_their_folder():
    from nabra.corpus.importers.common import safe_name

    ids = ["a_b", "a/b", "../../x", "x", ".hidden", "مرحبا", "a" * 150, "/", "ok-1.2", "ب" * 150]
    names = [safe_name(i) for i in ids]
    assert len(set(names)) == len(ids)
    assert names[0] == "a_b" and names[3] == "x" and names[5] == "مرحبا"  # plain names are kept
    assert all("/" not in n and not n.startswith(".") and len(n.encode()) <= 255 for n in names)


def test_an_import_never_replaces_a_manifest_with_less(tmp_path, capsys):
    """Issue 28 #6: `--out keep.jsonl` holding 80 lines became an empty file when the import found nothing.
    Now nothing is written then, and a manifest is replaced by fewer lines only with --force."""
    from nabra.cli import main
    from nabra.testing import tiny_manifest

    keep = tiny_manifest(tmp_path / "keep", 8)
    before = keep.read_bytes()
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"messages": [{"role": "user", "content": "<audio>"}]}\n')
    assert main(["data", "import", "swift", str(empty), "--out", str(keep), "--quiet"]) == 1
    assert "nothing imported, nothing written" in capsys.readouterr().err
    assert keep.read_bytes() == before
    three = tmp_path / "three.jsonl"
    three.write_text("".join(json.dumps({"messages": [{"role": "user", "content": "Summarize the text:\nنص طويل"},
                                                      {"role": "assistant", "content": f"ملخص {i}"}]},
                                        ensure_ascii=False) + "\n" for i in range(3)), encoding="utf-8")
    assert main(["data", "import", "swift", str(three), "--out", str(keep), "--quiet"]) == 2
    assert "holds 8 utterances and this import 3: not replaced (pass --force" in capsys.readouterr().err
    assert keep.read_bytes() == before and not list(keep.parent.glob(".*"))
    assert main(["data", "import", "swift", str(three), "--out", str(keep), "--quiet", "--force"]) == 0
    assert len(keep.read_text().splitlines()) == 3
    thesis = tmp_path / "thesis.txt"
    thesis.write_text("three years of work\n")
    assert main(["data", "import", "swift", str(three), "--out", str(thesis), "--quiet"]) == 2
    assert "exists and is not a manifest" in capsys.readouterr().err and thesis.read_text() == "three years of work\n"
    assert main(["data", "import", "swift", str(three), "--out", str(tmp_path), "--quiet"]) == 2
    assert "is a folder" in capsys.readouterr().err
