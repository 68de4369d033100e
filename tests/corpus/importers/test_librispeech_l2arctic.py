"""LibriSpeech and L2-ARCTIC importers on fixture trees in the corpora's own layouts (the README's
formats: LibriSpeech's padded, pipe-separated SPEAKERS.TXT whose first comment holds a pipe, its
upper-case trans.txt lines beside FLAC; L2-ARCTIC's per-speaker wav/transcript/annotation folders
at 44.1 kHz), with a bad row of each kind counted."""

import json
import os
import re
from pathlib import Path

import pytest

from nabra.cli import main
from nabra.corpus.importers.l2arctic import L1_SPLIT, SPEAKERS, speaker_splits
from nabra.errors import NabraError
from nabra.testing import write_clip

SPEAKERS_TXT = """\
; Some pipe(|) separated metadata about all LibriVox readers, whose work was used in the corpus.
;
; The meaning of the fields in left-to-right order is as follows:
;
; reader_id: the ID of the reader in the LibriVox's database
; gender: 'F' for female, 'M' for male
; subset: the corpus subset to which the reader's audio is assigned
; duration: total number of minutes of speech by the reader, included in the corpus
; name: the name under which the reader is registered in LibriVox
;
;ID  |SEX| SUBSET           |MINUTES| NAME
19   | F | train-clean-100  | 25.19 | Kara Shallenberg
84   | F | dev-clean        | 8.02  | Christie Nowak
121  | M | test-clean       | 8.05  | Someone
"""


@pytest.fixture
def librispeech(tmp_path):
    root = tmp_path / "LibriSpeech"
    root.mkdir()
    (root / "SPEAKERS.TXT").write_text(SPEAKERS_TXT)
    chapters = {("train-clean-100", "19", "198"): ["19-198-0000 NORTHANGER ABBEY", "19-198-0001 THIS LITTLE WORK",
                                                   "19-198-0002", "19-198-0003 NO AUDIO FOR THIS ONE"],
                ("dev-clean", "84", "121123"): ["84-121123-0000 GO DO YOU HEAR", "85-121123-0001 WRONG SPEAKER"],
                ("test-clean", "121", "121726"): ["121-121726-0000 ALSO A POPULAR CONTRIVANCE"]}
    for (subset, speaker, chapter), lines in chapters.items():
        folder = root / subset / speaker / chapter
        for line in lines:
            uid = line.split()[0]
            if "NO AUDIO" not in line and "WRONG" not in line:
                write_clip(folder / f"{uid}.flac", 0.5)
        (folder / f"{speaker}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n")
    return root


def test_librispeech_subsets_become_splits_and_readers_their_gender(librispeech, tmp_path, import_checked):
    report, utts = import_checked("librispeech", librispeech, tmp_path / "ls.jsonl")
    assert report.seen == 7
    assert dict(report.reasons) == {"empty transcript": 1, "audio file not found": 1,
                                    "utterance id not of this chapter": 1}
    assert set(utts) == {"19-198-0000", "19-198-0001", "84-121123-0000", "121-121726-0000"}
    u = utts["19-198-0001"]
    assert (u.transcript, u.speaker, u.split, u.language, u.source) == ("THIS LITTLE WORK", "19", "train", "en",
                                                                       "librispeech")
    assert u.extra == {"chapter": "198", "subset": "train-clean-100", "gender": "female"}
    assert utts["84-121123-0000"].split == "dev" and utts["121-121726-0000"].extra["gender"] == "male"
    assert u.audio.endswith("train-clean-100/19/198/19-198-0001.flac")


def test_librispeech_one_subset_folder_or_named_subsets(librispeech, tmp_path, import_checked):
    _, utts = import_checked("librispeech", librispeech / "dev-clean", tmp_path / "dev.jsonl")
    assert set(utts) == {"84-121123-0000"} and utts["84-121123-0000"].extra["gender"] == "female"  # SPEAKERS.TXT above
    _, utts = import_checked("librispeech", librispeech, tmp_path / "two.jsonl", subsets=["dev-clean", "test-clean"])
    assert {u.split for u in utts.values()} == {"dev", "test"}
    with pytest.raises(NabraError, match="no subset folder train-other-500; it has dev-clean, test-clean, train-clean-100"):
        import_checked("librispeech", librispeech, tmp_path / "x.jsonl", subsets=["train-other-500"])
    with pytest.raises(NabraError, match="no LibriSpeech subset folder"):
        import_checked("librispeech", tmp_path, tmp_path / "y.jsonl")


def _l2arctic(tmp_path, speakers=("ABA", "SKA", "BWC")):
    root = tmp_path / "l2arctic_release_v5.0"
    for spk in speakers:
        for n, text in ((1, "Author of the danger trail, Philip Steels, etc."), (2, "Not at this particular case, Tom.")):
            write_clip(root / spk / "wav" / f"arctic_a000{n}.wav", 0.6, sample_rate=44100)
            (root / spk / "transcript").mkdir(parents=True, exist_ok=True)
            (root / spk / "transcript" / f"arctic_a000{n}.txt").write_text(text + "\n")
        (root / spk / "annotation").mkdir()
        (root / spk / "annotation" / "arctic_a0001.TextGrid").write_text('File type = "ooTextFile"\n')
    write_clip(root / "ABA" / "wav" / "arctic_b0013.wav", 0.6, sample_rate=44100)        # no transcript
    write_clip(root / "SKA" / "wav" / "arctic_a0003.wav", 0.6, sample_rate=44100)
    (root / "SKA" / "transcript" / "arctic_a0003.txt").write_text("  \n")                  # empty
    write_clip(root / "suitcase_corpus" / "wav" / "aba.wav", 2.0, sample_rate=44100)
    (root / "suitcase_corpus" / "transcript").mkdir(parents=True)
    (root / "suitcase_corpus" / "transcript" / "aba.txt").write_text("so I packed my suitcase\n")
    return root


def test_l2arctic_speakers_carry_l1_gender_and_annotations(tmp_path, import_checked):
    root = _l2arctic(tmp_path)
    report, utts = import_checked("l2arctic", root, tmp_path / "l2.jsonl")
    assert report.seen == 8 and dict(report.reasons) == {"no transcript": 1, "empty transcript": 1}
    u = utts["ABA-arctic_a0001"]
    assert (u.transcript, u.speaker, u.language, u.split) == ("Author of the danger trail, Philip Steels, etc.",
                                                              "ABA", "en", None)
    assert u.extra["l1"] == "Arabic" and u.extra["gender"] == "male" and u.extra["style"] == "read"
    assert u.extra["annotation"].endswith("ABA/annotation/arctic_a0001.TextGrid")
    assert "annotation" not in utts["ABA-arctic_a0002"].extra
    assert (utts["BWC-arctic_a0002"].extra["l1"], utts["SKA-arctic_a0001"].extra["gender"]) == ("Mandarin", "female")
    _, utts = import_checked("l2arctic", root, tmp_path / "sc.jsonl", suitcase=True, speaker_split="test=BWC;dev=SKA")
    assert utts["ABA-suitcase"].extra["style"] == "spontaneous" and utts["ABA-suitcase"].split == "train"
    assert {u.speaker: u.split for u in utts.values()} == {"ABA": "train", "SKA": "dev", "BWC": "test"}


def test_l2arctic_speaker_splits_are_disjoint_and_cover_every_l1():
    splits = speaker_splits("l1")
    assert set(splits) == set(SPEAKERS) and len(SPEAKERS) == 24
    for split in ("dev", "test"):
        chosen = [s for s, v in splits.items() if v == split]
        assert sorted(SPEAKERS[s][1] for s in chosen) == sorted({l1 for _, l1 in SPEAKERS.values()})
        assert sorted(SPEAKERS[s][0] for s in chosen) == ["female"] * 3 + ["male"] * 3
    assert not set(L1_SPLIT["dev"]) & set(L1_SPLIT["test"])
    with pytest.raises(NabraError, match="not in L2-ARCTIC: XYZ"):
        speaker_splits("test=XYZ")
    with pytest.raises(NabraError, match="expected SPLIT=SPK,SPK"):
        speaker_splits("exam=ABA")


def test_the_cli_imports_english_corpora_as_english(librispeech, tmp_path, capsys):
    out = tmp_path / "cli.jsonl"
    assert main(["data", "import", "librispeech", str(librispeech), "--out", str(out), "--quiet"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["language"] for r in rows} == {"en"} and len(rows) == 4
    skipped = [json.loads(line) for line in (tmp_path / "cli.skipped.jsonl").read_text().splitlines()]
    assert len(skipped) == 3 and {s["where"] for s in skipped} >= {"train-clean-100/19/198/19-198.trans.txt:3"}
    root = _l2arctic(tmp_path / "l2")
    assert main(["data", "import", "l2arctic", str(root), "--out", str(tmp_path / "l2.jsonl"), "--speaker-split", "l1",
                 "--quiet"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "l2.jsonl").read_text().splitlines()]
    assert {(r["speaker"], r["split"]) for r in rows} == {("ABA", "train"), ("SKA", "dev"), ("BWC", "dev")}


def test_l2arctic_annotation_path_resolves_like_the_audio(tmp_path, monkeypatch, import_checked):
    """A relative SRC: the audio is written absolute, so must the annotation be (it was relative to the
    working directory the import ran in, and broke once the manifest was read from elsewhere)."""
    _l2arctic(tmp_path)
    monkeypatch.chdir(tmp_path)
    _, utts = import_checked("l2arctic", "l2arctic_release_v5.0", tmp_path / "out" / "l2.jsonl")
    u = utts["ABA-arctic_a0001"]
    assert u.extra["annotation"] == str(tmp_path / "l2arctic_release_v5.0" / "ABA" / "annotation" / "arctic_a0001.TextGrid")
    assert os.path.isabs(u.audio)


def test_the_docs_describe_the_l1_split_the_importer_makes():
    """docs/importers/l2arctic.md states which Arabic speakers train under --speaker-split l1."""
    docs = (Path(__file__).parents[3] / "docs" / "importers" / "l2arctic.md").read_text(encoding="utf-8")
    stated = re.search(r"\((\w+) and (\w+), two of the Arabic speakers, train; (\w+) is dev, (\w+) test\)", docs)
    assert stated, "the sentence about the Arabic speakers' splits is gone from docs/importers/l2arctic.md"
    arabic = {s: split for s, split in speaker_splits("l1").items() if SPEAKERS[s][1] == "Arabic"}
    train, dev, test = (sorted(s for s, split in arabic.items() if split == name) for name in ("train", "dev", "test"))
    assert (sorted(stated.groups()[:2]), [stated[3]], [stated[4]]) == (train, dev, test)
