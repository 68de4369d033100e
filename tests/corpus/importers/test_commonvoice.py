import json

import pytest

from nabra.cli import main
from nabra.corpus.importers import ImportOptions, import_corpus
from nabra.errors import NabraError
from nabra.testing import write_clip

# Common Voice 17+ header; older releases lack sentence_id/sentence_domain/variant and say "accent".
HEADER = ["client_id", "path", "sentence_id", "sentence", "sentence_domain", "up_votes", "down_votes",
          "age", "gender", "accents", "variant", "locale", "segment"]
OLD_HEADER = ["client_id", "path", "sentence", "up_votes", "down_votes", "age", "gender", "accent", "locale", "segment"]


def cv_row(clip, sentence, client="c1", header=HEADER):
    values = {"client_id": client, "path": clip, "sentence_id": "s" + clip[:4], "sentence": sentence,
              "sentence_domain": "", "up_votes": "2", "down_votes": "0", "age": "twenties",
              "gender": "male_masculine", "accents": "مصري", "accent": "egyptian", "variant": "",
              "locale": "ar", "segment": ""}
    return "\t".join(values[c] for c in header)


def write_tsv(path, rows, header=HEADER):
    path.write_text("\n".join(["\t".join(header), *rows]) + "\n", encoding="utf-8")


@pytest.fixture
def release(tmp_path):
    """A small release: 4 clips (one corrupt), TSVs with good and bad rows, clip_durations.tsv."""
    root = tmp_path / "cv-corpus-17.0" / "ar"
    for name, sec in (("common_voice_ar_1.mp3", 1.0), ("common_voice_ar_2.mp3", 1.2), ("common_voice_ar_3.mp3", 0.8)):
        write_clip(root / "clips" / name, sec, sample_rate=44100, fmt="MP3")
    (root / "clips" / "common_voice_ar_4.mp3").write_bytes(b"not an mp3 at all")
    write_tsv(root / "train.tsv", [
        cv_row("common_voice_ar_1.mp3", "مرحبا بكم"),
        cv_row("common_voice_ar_2.mp3", "   "),                          # empty sentence
        cv_row("common_voice_ar_9.mp3", "الملف غير موجود"),                # clip missing
        cv_row("common_voice_ar_4.mp3", "ملف تالف", client="c2"),
    ])
    write_tsv(root / "dev.tsv", [cv_row("common_voice_ar_2.mp3", 'قال "نعم" ثم ذهب', client="c3")])
    write_tsv(root / "test.tsv", ["c4\tcommon_voice_ar_3.mp3\ttoo few fields"])  # malformed
    write_tsv(root / "validated.tsv", [cv_row("common_voice_ar_1.mp3", "مرحبا بكم"),
                                       cv_row("common_voice_ar_3.mp3", "صباح الخير")])
    (root / "clip_durations.tsv").write_text(
        "clip\tduration[ms]\ncommon_voice_ar_1.mp3\t1000\ncommon_voice_ar_2.mp3\t1200\n", encoding="utf-8")
    return root


def test_train_dev_test_with_skips_by_reason(release, tmp_path, import_checked):
    report, utts = import_checked("commonvoice", release, tmp_path / "out" / "cv.jsonl")
    assert report.seen == 6
    assert dict(report.reasons) == {"empty transcript": 1, "audio file not found": 1, "malformed row": 1}
    assert set(utts) == {"common_voice_ar_1", "common_voice_ar_4", "common_voice_ar_2"}
    u = utts["common_voice_ar_1"]
    assert (u.transcript, u.speaker, u.split, u.language, u.duration) == ("مرحبا بكم", "c1", "train", "ar", 1.0)
    assert u.extra == {"age": "twenties", "gender": "male_masculine", "accents": "مصري"}
    assert utts["common_voice_ar_2"].transcript == 'قال "نعم" ثم ذهب'  # quotes are text, not CSV quoting
    assert utts["common_voice_ar_2"].split == "dev"
    assert utts["common_voice_ar_4"].duration is None  # not in clip_durations.tsv, no probing


def test_check_audio_skips_the_corrupt_clip_and_fills_durations(release, tmp_path, import_checked):
    report, utts = import_checked("commonvoice", release, tmp_path / "cv.jsonl", ImportOptions(check_audio=True))
    assert report.reasons["unreadable audio"] == 1
    assert "common_voice_ar_4" not in utts
    assert all(u.duration for u in utts.values())


def test_probe_audio_reads_missing_durations(release, tmp_path, import_checked):
    (release / "clip_durations.tsv").unlink()
    report, utts = import_checked("commonvoice", release, tmp_path / "cv.jsonl", tsvs=["validated"], probe_audio=True)
    assert report.seen == 2 and not report.skipped
    assert abs(utts["common_voice_ar_3"].duration - 0.8) < 0.06
    assert all(u.split is None for u in utts.values())  # validated.tsv is no split


def test_old_release_header(tmp_path, import_checked):
    root = tmp_path / "cv5"
    write_clip(root / "clips" / "a.mp3", 0.5, sample_rate=44100, fmt="MP3")
    write_clip(root / "clips" / "b.mp3", 0.5, sample_rate=44100, fmt="MP3")
    rows = [cv_row("a.mp3", "نص", header=OLD_HEADER), cv_row("b", "نص آخر", header=OLD_HEADER)]  # early: no ".mp3"
    write_tsv(root / "train.tsv", rows, header=OLD_HEADER)
    _, utts = import_checked("commonvoice", root, tmp_path / "cv.jsonl", tsvs=["train"])
    assert utts["a"].extra["accents"] == "egyptian"
    assert utts["b"].audio.endswith("clips/b.mp3")


def test_missing_layout_names_the_path(release, tmp_path):
    from nabra.corpus.importers import import_corpus

    with pytest.raises(NabraError, match=r"(?s)nope: not found; expected layout:\n.*clips/\*\.mp3"):
        import_corpus("commonvoice", tmp_path / "nope", tmp_path / "x.jsonl")
    with pytest.raises(NabraError, match=r"other\.tsv: expected file not found"):
        import_corpus("commonvoice", release, tmp_path / "x.jsonl", tsvs=["other"])
    write_tsv(release / "train.tsv", ["x\ty"], header=["client_id", "file"])
    with pytest.raises(NabraError, match="header lacks column"):
        import_corpus("commonvoice", release, tmp_path / "x.jsonl", tsvs=["train"])


def test_cli_writes_manifest_and_skip_list(release, tmp_path, capsys):
    out = tmp_path / "cv.jsonl"
    assert main(["data", "import", "commonvoice", str(release), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "imported 3 of 6 rows as 3 utterances" in printed and "empty transcript" in printed
    skipped = [json.loads(line) for line in (tmp_path / "cv.skipped.jsonl").read_text().splitlines()]
    assert sorted(s["where"] for s in skipped) == ["test.tsv:2", "train.tsv:3", "train.tsv:4"]
    assert main(["data", "validate", str(out)]) == 0


def test_a_release_without_dev_imports_its_other_splits(release, tmp_path, import_checked, capsys):
    (release / "dev.tsv").unlink()  # some releases ship no dev split for a small locale
    report, utts = import_checked("commonvoice", release, tmp_path / "cv.jsonl")
    assert {u.split for u in utts.values()} == {"train"} and report.seen == 5  # 4 train rows + 1 test row
    assert report.notes == [f"{release / 'dev.tsv'} not found: no dev split imported"]
    assert main(["data", "import", "commonvoice", str(release), "--out", str(tmp_path / "cli.jsonl")]) == 0
    assert "dev.tsv not found: no dev split imported" in capsys.readouterr().out
    for name in ("train", "test"):
        (release / f"{name}.tsv").unlink()
    with pytest.raises(NabraError, match=r"none of train\.tsv, dev\.tsv, test\.tsv found"):
        import_corpus("commonvoice", release, tmp_path / "none.jsonl")


def test_a_byte_that_is_not_utf8_skips_its_row_only(release, tmp_path, import_checked):
    tsv = release / "train.tsv"
    tsv.write_bytes(tsv.read_bytes().replace("مرحبا بكم".encode(), b"\xffbad") + cv_row(
        "common_voice_ar_3.mp3", "بعده").encode() + b"\n")
    report, utts = import_checked("commonvoice", release, tmp_path / "cv.jsonl", tsvs=["train"])
    assert report.reasons["not valid UTF-8: byte 0xFF in field X"] == 1
    assert any(u.transcript == "بعده" for u in utts.values())  # the rows after it are read


def test_columns_are_read_by_header_name_and_rows_must_match_it(tmp_path, import_checked):
    """A Common Voice TSV is read by its header's names (the column order changed across releases: 17.0
    added sentence_id, sentence_domain, variant). A row with more fields than the header — a TAB inside the
    sentence — would shift every column after it: refused, not read shifted. A UTF-8 BOM (written by
    spreadsheet tools re-saving the TSV) must not hide client_id."""
    root = tmp_path / "cv" / "ar"
    for name in ("a.mp3", "b.mp3", "c.mp3"):
        write_clip(root / "clips" / name, 0.3, sample_rate=44100, fmt="MP3")
    shifted = cv_row("b.mp3", "قال\tنعم")  # 14 fields for a 13-column header
    rows = [cv_row("a.mp3", "مرحبا بكم"), shifted, cv_row("c.mp3", "صباح الخير", client="c9")]
    (root / "train.tsv").write_text("\ufeff" + "\n".join(["\t".join(HEADER), *rows]) + "\n", encoding="utf-8")
    report, utts = import_checked("commonvoice", root, tmp_path / "cv.jsonl", tsvs=["train"])
    assert set(utts) == {"a", "c"}
    assert report.reasons == {"malformed row": 1} and report.items[0]["detail"] == "14 fields, the header has 13"
    assert (utts["c"].speaker, utts["c"].extra["gender"], utts["c"].extra["age"]) == ("c9", "male_masculine", "twenties")


def test_skip_reasons_name_the_kind_not_a_placeholder(tmp_path, import_checked):
    root = tmp_path / "cv" / "ar"
    write_clip(root / "clips" / "a.mp3", 0.3, sample_rate=44100, fmt="MP3")
    write_tsv(root / "train.tsv", [cv_row("a.mp3", "؟")])  # punctuation only: empty once normalized
    report, _ = import_checked("commonvoice", root, tmp_path / "cv.jsonl", tsvs=["train"])
    (reason,) = report.reasons
    assert reason == "transcript is empty once normalized (only diacritics, tatweel, punctuation)"
    assert report.items[0]["detail"].endswith("'؟'")


@pytest.mark.skipif(__import__("os").geteuid() == 0, reason="root reads a file of mode 000")
def test_a_tsv_that_cannot_be_read_is_one_line(release, tmp_path, capsys):
    """Issue 28 #7: an unreadable TSV gave a traceback."""
    (release / "dev.tsv").chmod(0)
    assert main(["data", "import", "commonvoice", str(release), "--tsv", "dev", "--out", str(tmp_path / "cv.jsonl"),
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "dev.tsv: Permission denied" in err and "Traceback" not in err and err.count("\n") == 1
