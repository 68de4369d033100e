"""The lhotse round trip against the real library (lhotse 1.33, in the test extras): what Nabra
exports lhotse loads, validates and plays sample for sample; what lhotse writes Nabra imports."""

import gzip
import json

import numpy as np
import pytest
import soundfile as sf

from nabra.corpus.audio import load_audio
from nabra.corpus.importers import SkipReport, lhotse
from nabra.corpus.manifest import Utterance, write_manifest
from nabra.testing import write_clip

lh = pytest.importorskip("lhotse", reason="lhotse is not installed (make test installs it with urllib3)")


def _noise(path, samples, seed=0):
    """A WAV of ``samples`` random samples (a length that is not a whole number of milliseconds)."""
    audio = np.random.default_rng(seed).uniform(-0.5, 0.5, samples).astype(np.float32)
    sf.write(path, audio, 16000, subtype="FLOAT")
    return path


def test_export_loads_validates_and_plays_in_lhotse(tmp_path):
    a = _noise(tmp_path / "a.wav", 32006)  # 2.000375 s: lhotse's duration is num_samples / rate
    b = _noise(tmp_path / "b.wav", 48000, seed=1)
    manifest = tmp_path / "m.jsonl"
    write_manifest(manifest, [
        Utterance("whole", audio=str(a), duration=2.0, transcript="مرحبا", split="train"),  # rounded to 1 ms
        Utterance("seg", audio=str(b), offset=0.123456, duration=1.234567, transcript="مقطع", split="train",
                  dialect="EGY", speaker="s1"),
    ])
    report = SkipReport()
    files = lhotse.export(manifest, tmp_path / "lh", report)
    assert report.imported == 2 and not report.skipped
    recs = lh.load_manifest(next(f for f in files if "recordings" in f.name))
    sups = lh.load_manifest(next(f for f in files if "supervisions" in f.name))
    assert isinstance(recs, lh.RecordingSet) and isinstance(sups, lh.SupervisionSet)
    by_id = {s.id: s for s in sups}
    assert by_id["whole"].duration == recs[by_id["whole"].recording_id].duration == 32006 / 16000  # not 2.0
    assert (by_id["seg"].start, by_id["seg"].duration) == (0.123456, 1.234567)  # full precision
    assert by_id["seg"].custom["dialect"] == "EGY"
    cuts = lh.CutSet.from_manifests(recordings=recs, supervisions=sups)
    lh.validate(cuts, read_data=True)
    for rec in recs:
        ours = load_audio(rec.sources[0].source)
        np.testing.assert_array_equal(rec.load_audio()[0], ours)


def test_import_what_lhotse_writes_pairs_and_cuts(tmp_path, import_checked, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _noise(tmp_path / "a.wav", 32006)
    write_clip(tmp_path / "b.wav", 3.0)
    recs = lh.RecordingSet.from_recordings([lh.Recording.from_file("a.wav"), lh.Recording.from_file("b.wav")])
    assert recs["a"].sources[0].source == "a.wav"  # lhotse keeps the relative path: relative to the cwd
    sups = lh.SupervisionSet.from_segments([
        lh.SupervisionSegment("a-all", "a", 0.0, recs["a"].duration, text="كله", language="Arabic"),
        lh.SupervisionSegment("b-1", "b", 0.25, 1.1234375, text="جزء", language="Arabic", speaker="spk",
                              gender="f", custom={"dialect": "LAV", "mic": "near"}),
    ])
    folder = tmp_path / "manifests"
    folder.mkdir()
    recs.to_file(folder / "x_recordings_train.jsonl.gz")
    sups.to_file(folder / "x_supervisions_train.jsonl.gz")
    report, utts = import_checked("lhotse", folder, tmp_path / "pairs.jsonl")
    assert not report.skipped
    assert utts["a-all"].offset == 0 and utts["a-all"].duration == 32006 / 16000
    b1 = utts["b-1"]
    assert (b1.audio, b1.offset, b1.duration, b1.language, b1.dialect, b1.split, b1.extra) == (
        str(tmp_path / "b.wav"), 0.25, 1.1234375, "ar", "LAV", "train", {"gender": "f", "mic": "near"})

    cuts = lh.CutSet.from_manifests(recordings=recs, supervisions=sups)
    cuts.to_file(tmp_path / "c_cuts_dev.jsonl.gz")
    trimmed = cuts.trim_to_supervisions(keep_overlapping=False)
    trimmed.to_file(tmp_path / "t_cuts_test.jsonl.gz")
    for name, split in (("c_cuts_dev.jsonl.gz", "dev"), ("t_cuts_test.jsonl.gz", "test")):
        report, from_cuts = import_checked("lhotse", None, tmp_path / f"{split}.jsonl", cuts=str(tmp_path / name))
        assert report.seen == 2 and not report.skipped
        for uid, u in utts.items():
            c = from_cuts[uid]
            assert (c.audio, c.transcript, c.dialect, c.split) == (u.audio, u.transcript, u.dialect, split)
            assert c.offset == pytest.approx(u.offset, abs=1e-9) and c.duration == pytest.approx(u.duration, abs=1e-9)
            np.testing.assert_array_equal(load_audio(c.audio, offset=c.offset, duration=c.duration),
                                          load_audio(u.audio, offset=u.offset, duration=u.duration))


def test_cut_sets_nabra_cannot_use_are_skipped_with_reasons(tmp_path, import_checked):
    write_clip(tmp_path / "a.wav", 2.0)
    rec = lh.Recording.from_file(tmp_path / "a.wav")
    sup = lh.SupervisionSegment("s", rec.id, 0.5, 1.0, text="نص")
    mono = lh.MonoCut("c1", start=0.0, duration=2.0, channel=0, recording=rec, supervisions=[sup])
    empty = lh.MonoCut("c2", start=0.0, duration=2.0, channel=0, recording=rec, supervisions=[])
    mixed = mono.pad(duration=3.0)  # a MixedCut: the clip and silence, no single file
    path = tmp_path / "cuts.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for cut in (mono, empty, mixed):
            f.write(json.dumps(cut.to_dict()) + "\n")
        f.write("{torn\n")
    report, utts = import_checked("lhotse", None, tmp_path / "out.jsonl", cuts=str(path))
    assert list(utts) == ["s"] and report.seen == 4
    assert set(report.reasons) == {"cut without supervisions", "bad JSON",
                                   "cut of type 'MixedCut' is not supported (mixed cuts have no single file)"}


def test_mgb2_dev_and_test_as_lhotse_s_recipe_reads_them(tmp_path, import_checked):
    """lhotse 1.33's own MGB-2 recipe (``lhotse/recipes/mgb2.py``) on the release's dev and test: copy
    ``{text,segments}.non_overlap_speech`` to text/segments, rebase ``wav.scp``, ``load_kaldi_data_dir``,
    then ``from_buck_walter``. Nabra must give the same segments, spans and Arabic text — but for the
    ``@@LAT@@`` words, which lhotse transliterates letter by letter and Nabra keeps."""
    import shutil

    from lhotse.kaldi import load_kaldi_data_dir
    from lhotse.recipes.mgb2 import from_buck_walter
    from test_mgb2 import release_tree

    root = release_tree(tmp_path / "mgb2")
    (root / "test" / "text.non_overlap_speech").write_text(  # lhotse's copy of the release has it for test too
        "".join(line + "\n" for line in (root / "test" / "text").read_text(encoding="utf-8").splitlines()[:2]),
        encoding="utf-8")
    (root / "test" / "wav.scp").write_text(next((root / "test" / "wav").iterdir()).stem + " wav/"
                                           + next((root / "test" / "wav").iterdir()).name + "\n")
    theirs = {}
    for part in ("dev", "test"):
        out = tmp_path / "lh" / part
        out.mkdir(parents=True)
        shutil.copy(root / part / "text.non_overlap_speech", out / "text")
        shutil.copy(root / part / "segments.non_overlap_speech", out / "segments")
        (out / "wav.scp").write_text((root / part / "wav.scp").read_text().replace("wav/", f"{root}/{part}/wav/"))
        _, supervisions, _ = load_kaldi_data_dir(out, 16000)
        theirs |= {s.id: s for s in supervisions.transform_text(from_buck_walter)}
    _, ours = import_checked("mgb2", root, tmp_path / "mgb2.jsonl")
    ours = {k: u for k, u in ours.items() if u.split in ("dev", "test")}
    assert set(ours) == set(theirs) and len(ours) == 5
    for uid, s in theirs.items():
        u = ours[uid]
        assert (u.offset, u.duration) == (s.start, s.duration)
        if "@@" in s.text:  # lhotse: "@@Lاط@@Cٌٌ تقول أن"; Nabra: "CNN تقول أن"
            assert u.transcript == "CNN " + s.text.split(" ", 1)[1]
        else:
            assert u.transcript == s.text
