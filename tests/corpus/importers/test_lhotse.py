import gzip
import json

import numpy as np
import pytest
import soundfile as sf

from nabra.cli import main
from nabra.corpus.importers import SkipReport, import_corpus, lhotse
from nabra.corpus.manifest import Utterance, read_manifest, write_manifest
from nabra.errors import NabraError
from nabra.testing import tiny_manifest, write_clip


def write_jsonl_gz(path, records):
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def recording(rid, source, seconds, channels=1, kind="file", **more):
    """A Recording as lhotse's to_dict() writes it."""
    ch = list(range(channels))
    return {"id": rid, "sources": [{"type": kind, "channels": ch, "source": source}], "sampling_rate": 16000,
            "num_samples": int(seconds * 16000), "duration": seconds, "channel_ids": ch, **more}


@pytest.fixture
def manifests(tmp_path):
    root = tmp_path / "lh"
    root.mkdir()
    write_clip(root / "audio" / "long.wav", 4.0)
    write_clip(root / "audio" / "short.wav", 1.0)
    write_clip(root / "audio" / "stereo.wav", 1.0, channels=2)
    write_jsonl_gz(root / "corpus_recordings_train.jsonl.gz", [
        recording("long", "audio/long.wav", 4.0),
        recording("short", str(root / "audio" / "short.wav"), 1.0),
        recording("stereo", "audio/stereo.wav", 1.0, channels=2),
        recording("web", "https://example.org/a.flac", 1.0, kind="url"),
        recording("fast", "audio/short.wav", 1.0, transforms=[{"name": "Speed", "kwargs": {"factor": 1.1}}]),
    ])
    sup = {"channel": 0, "language": "ar"}
    write_jsonl_gz(root / "corpus_supervisions_train.jsonl.gz", [
        {"id": "s1", "recording_id": "long", "start": 0.5, "duration": 1.5, "text": "مرحبا", "speaker": "spk1",
         "gender": "female", **sup},
        {"id": "s2", "recording_id": "short", "start": 0.0, "duration": 1.0, "text": "أهلا",
         "custom": {"dialect": "Egyptian", "emotion": "joy", "channel_name": "mic"}, **sup},
        {"id": "s3", "recording_id": "stereo", "start": 0.0, "duration": 1.0, "text": "كلا القناتين", "language": "ar",
         "channel": [0, 1]},
        {"id": "s4", "recording_id": "stereo", "start": 0.0, "duration": 1.0, "text": "قناة واحدة", **sup},
        {"id": "s5", "recording_id": "web", "start": 0.0, "duration": 1.0, "text": "رابط", **sup},
        {"id": "s6", "recording_id": "fast", "start": 0.0, "duration": 1.0, "text": "أسرع", **sup},
        {"id": "s7", "recording_id": "ghost", "start": 0.0, "duration": 1.0, "text": "شبح", **sup},
        {"id": "s8", "recording_id": "short", "start": 0.0, "duration": 1.0, "custom": {"dialect": "Klingon"}, **sup},
    ])
    return root


def test_import_supervisions(manifests, tmp_path, import_checked):
    report, utts = import_checked("lhotse", manifests, tmp_path / "l.jsonl", relative_to="manifest")
    assert report.seen == 8
    assert dict(report.reasons) == {
        "supervision on some channels of a multi-channel file": 1,
        "recording source of type 'url' is not supported": 1, "recording has audio transforms": 1,
        "recording not in the recordings manifest": 1, "unknown dialect label": 1}
    s1 = utts["s1"]
    assert (s1.audio, s1.offset, s1.duration, s1.speaker, s1.split, s1.extra) == (
        str(manifests / "audio" / "long.wav"), 0.5, 1.5, "spk1", "train", {"gender": "female"})
    s2 = utts["s2"]
    assert (s2.offset, s2.dialect, s2.emotion, s2.extra) == (0.0, "EGY", "happy", {"channel_name": "mic"})
    assert utts["s3"].transcript == "كلا القناتين"
    assert any("resolved against the manifest's folder" in n for n in report.notes)


def test_relative_paths_follow_lhotse_and_language_names_become_codes(manifests, tmp_path, import_checked,
                                                                      monkeypatch):
    """lhotse opens a relative ``source`` from the working directory: so does the import by default."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    report, utts = import_checked("lhotse", manifests, tmp_path / "l.jsonl")
    assert utts["s1"].audio == str(elsewhere / "audio" / "long.wav")  # not the manifest's folder
    assert utts["s2"].audio == str(manifests / "audio" / "short.wav")  # absolute stays
    assert any("working directory, as lhotse does" in n and str(elsewhere) in n for n in report.notes)
    monkeypatch.chdir(manifests)
    _, utts = import_checked("lhotse", manifests, tmp_path / "l.jsonl", language="en")
    assert utts["s1"].audio == str(manifests / "audio" / "long.wav") and utts["s1"].language == "en"


def test_export_then_import_round_trip(tmp_path, import_checked):
    manifest = tiny_manifest(tmp_path / "m", 6)
    ramp = np.linspace(-0.5, 0.5, 16000 * 3, dtype=np.float32)
    sf.write(tmp_path / "m" / "long.wav", ramp, 16000, subtype="FLOAT")
    utts = read_manifest(manifest) + [
        Utterance("seg", audio=str(tmp_path / "m" / "long.wav"), offset=1.0, duration=0.5, transcript="مقطع",
                  speaker="s9", split="train", extra={"gender": "male", "snr": 12.5}),
        Utterance("textonly", transcript="نص", summary="ملخص"),
    ]
    write_manifest(manifest, utts)
    report = SkipReport()
    files = lhotse.export(manifest, tmp_path / "lh", report)
    assert [f.name for f in files] == ["nabra_recordings_dev.jsonl.gz", "nabra_recordings_test.jsonl.gz",
                                       "nabra_recordings_train.jsonl.gz", "nabra_supervisions_dev.jsonl.gz",
                                       "nabra_supervisions_test.jsonl.gz", "nabra_supervisions_train.jsonl.gz"]
    assert dict(report.reasons) == {"no audio (a Lhotse supervision needs a recording)": 1}
    report, back = import_checked("lhotse", tmp_path / "lh", tmp_path / "back.jsonl")
    assert report.seen == len(utts) - 1 and not report.skipped
    for u in read_manifest(manifest)[:-1]:
        b = back[u.id]
        assert (b.audio, b.offset, b.transcript, b.summary, b.dialect, b.emotion, b.speaker, b.split, b.source,
                b.extra) == (u.audio, u.offset, u.transcript, u.summary, u.dialect, u.emotion, u.speaker, u.split,
                             u.source or "lhotse", u.extra)
        assert b.duration == pytest.approx(u.duration, abs=1e-3)


def test_named_pair_and_missing_files(manifests, tmp_path, import_checked):
    report, _ = import_checked("lhotse", None, tmp_path / "l.jsonl", split="dev", relative_to="manifest",
                           recordings=str(manifests / "corpus_recordings_train.jsonl.gz"),
                           supervisions=str(manifests / "corpus_supervisions_train.jsonl.gz"))
    assert report.imported == 3
    with pytest.raises(NabraError, match="no \\*supervisions\\*.* or \\*cuts\\*"):
        import_corpus("lhotse", tmp_path, tmp_path / "x.jsonl")
    (manifests / "corpus_recordings_train.jsonl.gz").unlink()
    with pytest.raises(NabraError, match="corpus_recordings_train.jsonl.gz: expected file not found"):
        import_corpus("lhotse", manifests, tmp_path / "x.jsonl")


def test_cli(manifests, tmp_path, capsys):
    out = tmp_path / "l.jsonl"
    assert main(["data", "import", "lhotse", str(manifests), "--out", str(out), "--quiet", "--relative-to", "manifest"]) == 0
    assert main(["data", "export", "lhotse", str(out), "--out", str(tmp_path / "again")]) == 0
    assert "exported 3 of 3 utterances as 3 supervisions" in capsys.readouterr().out


def test_malformed_cuts_and_fields_are_skips_that_add_up(tmp_path, import_checked):
    write_clip(tmp_path / "a.wav", 2.0)
    rec = recording("a", str(tmp_path / "a.wav"), 2.0)
    sup = {"id": "s", "recording_id": "a", "start": 0.0, "duration": 1.0, "text": "نص"}
    cuts = [
        {"id": "ok", "start": 0, "duration": 2.0, "channel": 0, "supervisions": [sup], "recording": rec, "type": "MonoCut"},
        {"id": "norec", "start": 0, "duration": 2.0, "supervisions": [dict(sup, id="s2"), dict(sup, id="s3")]},
        {"id": "num", "start": 0, "duration": 2.0, "supervisions": 5, "recording": rec},
        {"id": "str", "start": 0, "duration": 2.0, "supervisions": "abc", "recording": rec},
        {"id": "custom", "start": 0, "duration": 2.0, "recording": rec,
         "supervisions": [dict(sup, id="s4", custom=["not", "a", "dict"])]},
        {"id": "nodur", "start": 0, "duration": 2.0, "recording": dict(rec, duration=None),
         "supervisions": [dict(sup, id="s5")]},
    ]
    write_jsonl_gz(tmp_path / "c_cuts.jsonl.gz", cuts)
    report, utts = import_checked("lhotse", None, tmp_path / "out.jsonl", cuts=str(tmp_path / "c_cuts.jsonl.gz"))
    assert list(utts) == ["s"]
    assert report.seen == 6 and report.skipped == 5
    assert dict(report.reasons) == {"cut without a recording": 1, "not a Lhotse cut": 2, "not a Lhotse supervision": 2}
