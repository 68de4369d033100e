import numpy as np
import pytest
import soundfile as sf

from nabra.corpus.audio import load_audio
from nabra.corpus.importers import ImportOptions, import_corpus
from nabra.errors import NabraError
from nabra.testing import write_clip
from nabra.text.buckwalter import BUCKWALTER, from_buckwalter, strip_latin_tags

REC = "20080709_153236_alaraby_AIM"

# The MGB-2 XML as released (ids, times, WMER/PMER/AWD, word elements); the second <segments>
# block must be ignored in favour of annotation_id="transcript_align".
XML = """<?xml version="1.0" encoding="utf-8"?>
<transcript>
  <head>
    <recording filename="{rec}.wav" />
    <annotations><annotation id="transcript_align" type="transcript" /></annotations>
  </head>
  <body>
    <segments annotation_id="transcript_orig">
      <segment id="{rec}_orig_1" starttime="0.00" endtime="9.00" who="speaker1"><element>{w1}</element></segment>
    </segments>
    <segments annotation_id="transcript_align" annotation_id_ref="transcript_orig">
      <segment id="{rec}_utt_1_align" starttime="0.50" endtime="2.10" AWD="0.32" PMER="8.1" WMER="10.0" who="speaker1">
        <element id="{rec}_w1" starttime="0.50" dur="0.40" wordconfidence="0.95">{w1}</element>
        <element id="{rec}_w2" starttime="0.90" dur="0.60" wordconfidence="0.90">{w2}</element>
      </segment>
      <segment id="{rec}_utt_2_align" starttime="2.50" endtime="4.00" WMER="90.0" who="speaker2">
        <element>{w2}</element>
      </segment>
      <segment id="{rec}_utt_3_align" starttime="4.10" endtime="4.80" WMER="0.0" who="speaker1">
        <element>###</element><element>#unk</element>
      </segment>
      <segment id="{rec}_utt_4_align" starttime="5.00" endtime="4.90" WMER="0.0" who="speaker2">
        <element>{w1}</element>
      </segment>
      <segment id="{rec}_utt_5_align" starttime="5.20" endtime="9.50" WMER="0.0" who="speaker2">
        <element>{w1}</element>
      </segment>
    </segments>
  </body>
</transcript>
"""


def long_recording(path, seconds=6.0):
    ramp = np.linspace(-0.5, 0.5, int(16000 * seconds), dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, ramp, 16000, subtype="FLOAT")
    return ramp


@pytest.fixture
def part(tmp_path):
    """A training part of the release: wav/, xml/utf8 (Arabic) and xml/bw (Buckwalter)."""
    root = tmp_path / "mgb2" / "train"
    long_recording(root / "wav" / f"{REC}.wav")
    for sub, w1, w2 in (("utf8", "مرحبا", "بالعالم"), ("bw", "mrHbA", "bAlEAlm")):
        (root / "xml" / sub).mkdir(parents=True)
        (root / "xml" / sub / f"{REC}.xml").write_text(XML.format(rec=REC, w1=w1, w2=w2), encoding="utf-8")
        (root / "xml" / sub / "no_audio_rec.xml").write_text(XML.format(rec="no_audio_rec", w1=w1, w2=w2), encoding="utf-8")
        (root / "xml" / sub / "broken.xml").write_text("<transcript><body><segments>", encoding="utf-8")
    return root


def test_xml_segments_with_reasons(part, tmp_path, import_checked):
    report, utts = import_checked("mgb2", part, tmp_path / "mgb2.jsonl", ImportOptions(check_audio=True), max_wmer=80)
    assert report.seen == 11  # 5 + 5 segments, and the broken file as one row
    assert dict(report.reasons) == {
        "WMER above 80": 1, "empty transcript": 1, "segment ends before it starts": 1,
        "segment runs past the end of the audio": 1, "audio file not found": 5, "unreadable XML": 1,
    }
    u = utts[f"{REC}_utt_1_align"]
    assert (u.transcript, u.offset, u.duration, u.split, u.speaker) == ("مرحبا بالعالم", 0.5, 1.6, "train", f"{REC}_speaker1")
    assert u.extra == {"wmer": 10.0}


def test_segment_audio_loads_from_the_long_file(part, tmp_path, import_checked):
    ramp = np.linspace(-0.5, 0.5, 16000 * 6, dtype=np.float32)
    _, utts = import_checked("mgb2", part, tmp_path / "m.jsonl")
    u = utts[f"{REC}_utt_1_align"]
    np.testing.assert_array_equal(load_audio(u.audio, offset=u.offset, duration=u.duration), ramp[8000:33600])


def test_buckwalter_release_is_converted(part, tmp_path, import_checked):
    _, utts = import_checked("mgb2", part, tmp_path / "m.jsonl", buckwalter=True)
    assert utts[f"{REC}_utt_1_align"].transcript == "مرحبا بالعالم"
    assert utts[f"{REC}_utt_2_align"].transcript == "بالعالم"


def test_buckwalter_only_release_is_converted_and_said(part, tmp_path, import_checked):
    import shutil

    shutil.rmtree(part / "xml" / "utf8")
    report, utts = import_checked("mgb2", part, tmp_path / "m.jsonl")
    assert utts[f"{REC}_utt_1_align"].transcript == "مرحبا بالعالم"
    assert "train: xml/bw (no xml/utf8): Buckwalter transliteration, converted to Arabic script" in report.notes
    with pytest.raises(NabraError, match="only Buckwalter transcripts"):
        import_corpus("mgb2", part, tmp_path / "m.jsonl", script="arabic")


def test_buckwalter_table_is_complete():
    # Every Arabic letter, the hamza forms, tanween/harakat/shadda/sukun, dagger alef, wasla, tatweel.
    arabic = [chr(c) for c in range(0x0621, 0x063B)] + [chr(c) for c in range(0x0640, 0x0653)] + ["\u0670", "\u0671"]
    assert set(arabic) <= set(BUCKWALTER.values())
    assert from_buckwalter("Al>amiyrapu") == "\u0627\u0644\u0623\u064e\u0645\u0650\u064a\u0631\u064e\u0629\u064f"
    assert from_buckwalter("{lqur|n") == "\u0671\u0644\u0642\u064f\u0631\u0622\u0646"
    assert from_buckwalter("*`lika") == "\u0630\u0670\u0644\u0650\u0643\u064e"
    assert from_buckwalter("123 .") == "123 ."  # digits and punctuation are not Buckwalter


def kaldi_dir(root):
    long_recording(root / "wav" / "recA.wav")
    (root / "segments").write_text(
        "recA_0001 recA 0.00 1.50\n"
        "recA_0002 recA 1.50 3.00\n"
        "recB_0001 recB 0.00 1.00\n"          # recording piped through a command
        "recA_0003 recA 3.00 4.00\n"          # no text
        "recA_0004 recA 4.00 3.00\n"          # bad times
        "recA_0005 recA zero 1\n", encoding="utf-8")
    (root / "text").write_text(
        "recA_0001 mrHbA bkm\n"
        "recA_0002 AlsIAm Elykm\n"
        "recB_0001 nEm\n"
        "recA_0004 lA\n"
        "recA_0005 lA\n"
        "recA_0009 lA $y'\n"                  # no segment
        "recA_0002 mkrr\n", encoding="utf-8")  # duplicate id
    (root / "wav.scp").write_text("recA wav/recA.wav\nrecB sox recB.sph -t wav - |\n", encoding="utf-8")
    (root / "utt2spk").write_text("recA_0001 spk1\nrecA_0002 spk2\n", encoding="utf-8")


def test_kaldi_folder(tmp_path, import_checked):
    root = tmp_path / "dev"
    kaldi_dir(root)
    report, utts = import_checked("mgb2", root, tmp_path / "dev.jsonl", buckwalter=True)
    assert report.seen == 8
    assert dict(report.reasons) == {"wav.scp entry is a command, not a file": 1, "no transcript in text": 1,
                                    "segment ends before it starts": 1, "bad segment times": 1,
                                    "no segment for this text line": 1, "duplicate utterance id in text": 1}
    u = utts["recA_0001"]
    assert (u.transcript, u.offset, u.duration, u.speaker, u.split) == ("مرحبا بكم", 0.0, 1.5, "spk1", "dev")
    assert u.audio == str(root / "wav" / "recA.wav")
    assert utts["recA_0002"].offset == 1.5


def test_corpus_folder_with_parts(part, tmp_path, import_checked):
    kaldi_dir(part.parent / "dev")
    report, utts = import_checked("mgb2", part.parent, tmp_path / "all.jsonl", buckwalter=True)
    assert {u.split for u in utts.values()} == {"train", "dev"}


def test_no_part_found(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(NabraError, match=r"no MGB-2 part found.*expected layout"):
        import_corpus("mgb2", tmp_path / "empty", tmp_path / "m.jsonl")


def test_xml_without_wav_folder(tmp_path):
    (tmp_path / "p" / "xml").mkdir(parents=True)
    write_clip(tmp_path / "unused.wav")
    with pytest.raises(NabraError, match=r"p/wav: not found"):
        import_corpus("mgb2", tmp_path / "p", tmp_path / "m.jsonl")


def test_cli(part, tmp_path, capsys):
    from nabra.cli import main

    out = tmp_path / "mgb2.jsonl"
    assert main(["data", "import", "mgb2", str(part), "--out", str(out), "--buckwalter", "--max-wmer", "80",
                 "--check-audio", "--quiet"]) == 0
    assert "imported 1 of 11 rows as 1 utterances" in capsys.readouterr().out
    assert main(["data", "validate", str(out), "--check-audio"]) == 0


# ----------------------------------------------------------------------------- the release as shipped
#
# The tree below follows the recipes that read the MGB-2 release, not our own reading of it:
# - Kaldi egs/mgb2_arabic/s5/local/mgb_data_prep.sh: train/wav/*.wav + train/xml/bw/<id>.xml;
#   dev/text.all and dev/segments.all copied to text/segments; dev/wav/<id>.wav (wav.scp generated);
#   the utt lists dev/overlap_speech and dev/non_overlap_speech filter them; utt2spk is the utt id cut
#   at its second "_" (`cut -d '_' -f1-2`): ids are <rec>_spk-NNNN_seg-SSSSSSS:EEEEEEE
#   (local/add_to_datadir.py writes them so; local/non_overlap_speech.lst lists real ones).
# - ESPnet egs2/mgb2/asr1/local/data.sh: the same for dev; test/text + test/segments.non_overlap_speech and
#   test/{overlap,non_overlap}_speech.lst; `sed 's/@@LAT@@//g'` on the text.
# - lhotse recipes/mgb2.py: {dev,test}/text.non_overlap_speech, segments.non_overlap_speech, and
#   wav.scp with `wav/` paths; the dev/test text is Buckwalter (fromBuckWalter), train from xml/utf8.
# - The leaderboard's datasets/mgb2_test.json: the same ids, Arabic text with Latin words kept ("part time").

GUID_DEV = "01BE8E7B-C179-42E3-8521-109C2C732334"
GUID_TEST = "03BD00C0-2C0B-4C81-BA8C-018175D0B4E3"


def _uid(rec, spk, start, end):
    return f"{rec}_spk-{spk:04d}_seg-{round(start * 100):07d}:{round(end * 100):07d}"


def release_tree(root):
    """MGB-2 as unpacked from train.tar.gz, dev.tar.gz and test.tar.gz (see the recipes above)."""
    long_recording(root / "train" / "wav" / f"{REC}.wav")
    for sub, w1, w2 in (("utf8", "مرحبا", "بالعالم"), ("bw", "mrHbA", "bAlEAlm")):
        (root / "train" / "xml" / sub).mkdir(parents=True)
        (root / "train" / "xml" / sub / f"{REC}.xml").write_text(XML.format(rec=REC, w1=w1, w2=w2), encoding="utf-8")
    segs = {GUID_DEV: [(1, 0.0, 1.5, ">kd Alr}ys >n Alm&tmr syEqd"), (1, 1.5, 3.0, "@@LAT@@CNN tqwl >n"),
                       (2, 3.0, 4.5, "nEm"), (2, 4.5, 5.5, "lA")],
            GUID_TEST: [(1, 0.0, 2.0, "yqwl >hlA"), (3, 2.0, 4.0, "bs >nA rHt"), (3, 4.0, 5.0, "$krA")]}
    for part, rec in (("dev", GUID_DEV), ("test", GUID_TEST)):
        d = root / part
        long_recording(d / "wav" / f"{rec}.wav")
        rows = [(_uid(rec, spk, s, e), s, e, words) for spk, s, e, words in segs[rec]]
        overlap = {rows[-1][0]}  # the last segment of each recording is overlapped speech
        # Kaldi tables: the id, then any whitespace (a TAB on one line, as some of the releases' tools write).
        text = "".join(f"{u}{chr(9) if i == 1 else ' '}{w}\n" for i, (u, _, _, w) in enumerate(rows))
        seg = "".join(f"{u} {rec} {s:.2f} {e:.2f}\n" for u, s, e, _ in rows)
        keep = [r for r in rows if r[0] not in overlap]
        (d / "segments.non_overlap_speech").write_text("".join(f"{u} {rec} {s:.2f} {e:.2f}\n" for u, s, e, _ in keep))
        if part == "dev":
            (d / "text.all").write_text(text, encoding="utf-8")
            (d / "segments.all").write_text(seg)
            (d / "text.non_overlap_speech").write_text("".join(f"{u} {w}\n" for u, _, _, w in keep), encoding="utf-8")
            (d / "non_overlap_speech").write_text("".join(f"{u}\n" for u, *_ in keep))
            (d / "overlap_speech").write_text("".join(f"{u}\n" for u in overlap))
            (d / "wav.scp").write_text(f"{rec} wav/{rec}.wav\n")
        else:  # ESPnet's test layout: text + segments.non_overlap_speech, lists with .lst, no wav.scp
            (d / "text").write_text(text, encoding="utf-8")
            (d / "non_overlap_speech.lst").write_text("".join(f"{u}\n" for u, *_ in keep))
            (d / "overlap_speech.lst").write_text("".join(f"{u}\n" for u in overlap))
    return root


def test_release_root_imports_with_the_documented_command(tmp_path, import_checked):
    """The release root, no flags: every split found by its real file names, all of it in Arabic script."""
    root = release_tree(tmp_path / "mgb2")
    report, utts = import_checked("mgb2", root, tmp_path / "mgb2.jsonl", ImportOptions(check_audio=True), max_wmer=80)
    by_split = {s: sorted(u.id for u in utts.values() if u.split == s) for s in ("train", "dev", "test")}
    assert len(by_split["train"]) == 1 and len(by_split["dev"]) == 3 and len(by_split["test"]) == 2
    dev = utts[_uid(GUID_DEV, 1, 0.0, 1.5)]
    assert dev.transcript == "أكد الرئيس أن المؤتمر سيعقد"  # Buckwalter in the release, Arabic in the manifest
    assert (dev.offset, dev.duration, dev.speaker) == (0.0, 1.5, f"{GUID_DEV}_spk-0001")
    assert utts[_uid(GUID_TEST, 3, 2.0, 4.0)].transcript == "بس أنا رحت"
    assert utts[_uid(GUID_TEST, 3, 2.0, 4.0)].speaker == f"{GUID_TEST}_spk-0003"
    # The overlapped segments are left out, as all three recipes develop and test on non-overlapped speech.
    assert _uid(GUID_DEV, 2, 4.5, 5.5) not in utts and _uid(GUID_TEST, 3, 4.0, 5.0) not in utts
    assert report.reasons["overlapped speech (not in the non-overlap list)"] == 1  # test: text has it, segments not
    notes = "\n".join(report.notes)
    assert "dev: segments.non_overlap_speech, text.non_overlap_speech, wav.scp" in notes
    assert "test: segments.non_overlap_speech, text, wav/" in notes
    assert "Buckwalter" in notes and "text.non_overlap_speech" in notes


def test_release_with_overlapped_speech(tmp_path, import_checked):
    root = release_tree(tmp_path / "mgb2")
    report, utts = import_checked("mgb2", root / "dev", tmp_path / "dev.jsonl", overlap=True)
    assert len(utts) == 4 and "dev: segments.all, text.all, wav.scp" in "\n".join(report.notes)
    assert utts[_uid(GUID_DEV, 1, 1.5, 3.0)].transcript.startswith("CNN ")  # read from the TAB-separated line


def test_latin_words_keep_their_letters(tmp_path, import_checked):
    """MADA tags Latin words @@LAT@@ in the Buckwalter text: the tag goes (as ESPnet's sed does), the
    word stays in Latin letters instead of being read as Buckwalter."""
    root = release_tree(tmp_path / "mgb2")
    _, utts = import_checked("mgb2", root / "dev", tmp_path / "dev.jsonl", overlap=True)
    assert utts[_uid(GUID_DEV, 1, 1.5, 3.0)].transcript == "CNN تقول أن"
    assert from_buckwalter("@@LAT@@CNN tqwl") == "CNN تقول"
    assert strip_latin_tags("قالت @@LAT@@CNN إن") == "قالت CNN إن"


def test_buckwalter_is_detected_per_file(tmp_path, import_checked):
    root = tmp_path / "kaldi"
    long_recording(root / "wav" / "r.wav")
    (root / "wav.scp").write_text("r wav/r.wav\n")
    (root / "segments").write_text("r_1 r 0.0 1.0\nr_2 r 1.0 2.0\n")
    (root / "text").write_text("r_1 مرحبا بكم\nr_2 OK\n", encoding="utf-8")  # Arabic text: nothing converted
    report, utts = import_checked("mgb2", root, tmp_path / "a.jsonl", ImportOptions(), allow_warnings=True)
    assert utts["r_1"].transcript == "مرحبا بكم" and utts["r_2"].transcript == "OK"
    assert not any("Buckwalter" in n for n in report.notes)
    assert any("Latin letters" in n for n in report.notes)  # the import says what validate will warn about
    with pytest.raises(NabraError, match="--script"):
        import_corpus("mgb2", root, tmp_path / "b.jsonl", script="latin")


def test_kaldi_tables_split_on_any_whitespace(tmp_path, import_checked):
    """Kaldi tables separate the key from the rest by any whitespace (lhotse's load_kaldi_data_dir splits
    on the first whitespace): TABs in text, segments, wav.scp and utt2spk."""
    root = tmp_path / "dev"
    long_recording(root / "wav" / "recA.wav")
    (root / "segments").write_text("u1\trecA\t0.00\t1.50\nu2 recA 1.50 3.00\n")
    (root / "text").write_text("u1\tمرحبا بكم\nu2  \t السلام عليكم\n", encoding="utf-8")
    (root / "wav.scp").write_text("recA\twav/recA.wav\n")
    (root / "utt2spk").write_text("u1\tspk1\nu2 spk2\n")
    report, utts = import_checked("mgb2", root, tmp_path / "dev.jsonl")
    assert not report.skipped
    assert (utts["u1"].transcript, utts["u1"].speaker) == ("مرحبا بكم", "spk1")
    assert (utts["u2"].transcript, utts["u2"].speaker) == ("السلام عليكم", "spk2")


def test_kaldi_row_without_its_recording_is_skipped(tmp_path, import_checked):
    """Without --check-audio too, as the XML, Common Voice and NeMo importers do."""
    root = tmp_path / "dev"
    long_recording(root / "wav" / "recA.wav")
    (root / "segments").write_text("u1 recA 0 1\nu2 recB 0 1\n")
    (root / "text").write_text("u1 نعم\nu2 لا\n", encoding="utf-8")
    (root / "wav.scp").write_text("recA wav/recA.wav\nrecB wav/recB.wav\n")
    report, utts = import_checked("mgb2", root, tmp_path / "dev.jsonl")
    assert set(utts) == {"u1"} and dict(report.reasons) == {"audio file not found": 1}


def test_cli_on_the_release_root(tmp_path, capsys):
    """The documented command on the release root: it runs, says which files it read and what it converted,
    and what it wrote validates without a warning."""
    from nabra.cli import main

    root = release_tree(tmp_path / "mgb2")
    out = tmp_path / "mgb2.jsonl"
    assert main(["data", "import", "mgb2", str(root), "--out", str(out), "--max-wmer", "80", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "note: dev: segments.non_overlap_speech, text.non_overlap_speech, wav.scp" in printed
    assert "note: test: text is Buckwalter transliteration: converted to Arabic script" in printed
    assert main(["data", "validate", str(out)]) == 0
    assert "warning" not in capsys.readouterr().out
    assert main(["data", "import", "mgb2", str(root / "dev"), "--out", str(tmp_path / "bw.jsonl"),
                 "--script", "arabic", "--quiet"]) == 0  # told the text is Arabic: kept, and the import says so
    assert "warning(s): transcript is in Latin letters" in capsys.readouterr().out


def test_with_overlap_on_a_part_that_has_only_the_non_overlapped_files(tmp_path, import_checked):
    root = release_tree(tmp_path / "mgb2")
    for name in ("segments.all", "text.all"):
        (root / "dev" / name).unlink()
    report, utts = import_checked("mgb2", root / "dev", tmp_path / "dev.jsonl", overlap=True)
    assert len(utts) == 3
    assert "dev: segments.non_overlap_speech, text.non_overlap_speech, wav.scp (only non-overlapped speech in this part)" \
        in report.notes
