import numpy as np
import pytest
import soundfile as sf

from nabra.corpus.audio import load_audio
from nabra.corpus.importers import ImportOptions, import_corpus
from nabra.corpus.importers.mgb2 import _BUCKWALTER, from_buckwalter
from nabra.errors import NabraError
from nabra.testing import write_clip

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


def test_buckwalter_only_release_needs_the_flag(part, tmp_path):
    import shutil

    shutil.rmtree(part / "xml" / "utf8")
    with pytest.raises(NabraError, match="pass --buckwalter"):
        import_corpus("mgb2", part, tmp_path / "m.jsonl")


def test_buckwalter_table_is_complete():
    # Every Arabic letter, the hamza forms, tanween/harakat/shadda/sukun, dagger alef, wasla, tatweel.
    arabic = [chr(c) for c in range(0x0621, 0x063B)] + [chr(c) for c in range(0x0640, 0x0653)] + ["\u0670", "\u0671"]
    assert set(arabic) <= set(_BUCKWALTER.values())
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
