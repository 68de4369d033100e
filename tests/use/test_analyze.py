"""`nabra analyze` on new recordings: every field, label probabilities, unlabelled manifests, long audio."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from nabra.cli import main
from nabra.config import load_config
from nabra.corpus.manifest import read_manifest
from nabra.evaluate.runner import generate_predictions, load_for_eval
from nabra.model.collate import Collator
from nabra.model.loader import AudioStore
from nabra.run.folder import config_of
from nabra.tasks import prompt_example
from nabra.train import train
from nabra.use.analyze import analyze


@pytest.fixture(scope="module")
def label_run(tmp_path_factory, synth_corpus, tiny):
    """A tiny model trained on dialect and emotion until it answers with labels."""
    import yaml

    folder = tmp_path_factory.mktemp("analyze")
    cfg = {"output_dir": str(folder / "run"), "data": {"manifest": str(synth_corpus), "tasks": ["asr", "did", "ser"],
                                                       "dev_per_task": 2},
           "model": {"path": str(tiny), "finetune": "full"}, "schedule": {"name": "uniform"},
           "train": {"max_steps": 60, "batch_size": 16, "lr": 3e-3, "warmup_steps": 5, "save_every": 0,
                     "eval_every": 0, "loss_reduction": "example"}}
    (folder / "run.yaml").write_text(yaml.safe_dump(cfg))
    return train(load_config(folder / "run.yaml"), progress=False, log=lambda *_: None)


def test_every_field_and_probabilities_over_the_label_set(label_run, synth_corpus):
    utts = [u for u in read_manifest(synth_corpus) if u.split == "test"][:6]
    results, skipped = analyze([u.audio for u in utts], label_run, progress=False)
    assert skipped == [] and len(results) == len(utts)
    for r in results:
        assert {"id", "file", "duration", "model", "prompt_language", "asr", "ssum", "did", "ser"} <= set(r)
        assert r["prompt_language"] == "ar" and r["windows"] == 1 and r["ssum"]["source"] == "speech"
        for task, names in (("did", ["EGY", "GLF", "LAV", "NOR", "MSA"]),
                            ("ser", ["neutral", "happy", "sad", "angry", "surprised"])):
            probs = r[task]["probabilities"]
            assert list(probs) == names and sum(probs.values()) == pytest.approx(1.0, abs=1e-9)
            assert r[task]["label"] == max(probs, key=probs.get)


def test_the_most_probable_label_is_the_one_generated(label_run, synth_corpus):
    utts = [u for u in read_manifest(synth_corpus) if u.split in ("test", "dev")][:12]
    results, _ = analyze([u.audio for u in utts], label_run, tasks=["did", "ser"], progress=False)
    model, bundle = load_for_eval(label_run, device="cpu")
    cfg = config_of(label_run)
    collator, store = Collator(bundle.tokenizer, bundle.feature_extractor, cfg.collate), AudioStore(0, 1)
    agreed = 0
    for task in ("did", "ser"):
        examples = [prompt_example(u, task) for u in utts]
        preds = generate_predictions(model, bundle, collator, examples, store, progress=False)
        names = list(results[0][task]["probabilities"])
        for r, p in zip(results, preds, strict=True):
            if p.prediction.strip() in names:  # a whole label was generated: it must be the argmax
                assert r[task]["label"] == p.prediction.strip(), (task, r[task], p.prediction)
                agreed += 1
    store.close()
    assert agreed >= len(utts)  # the trained model answers with labels on most clips


def test_unlabelled_manifest_lines_and_folders(label_run, tmp_path, synth_corpus, capsys):
    audio = [u.audio for u in read_manifest(synth_corpus)][:3]
    manifest = tmp_path / "new.jsonl"
    manifest.write_text("\n".join([json.dumps({"id": "call-1", "audio": audio[0]}),
                                   json.dumps({"id": "call-2", "audio": audio[1], "offset": 0.2, "duration": 1.0}),
                                   json.dumps({"id": "no-audio", "transcript": "نص"}), "{torn"]) + "\n")
    folder = tmp_path / "voice-notes"
    folder.mkdir()
    for i, a in enumerate(audio):
        (folder / f"note{i}.wav").write_bytes(Path(a).read_bytes())
    (folder / "readme.txt").write_text("not audio")
    out = tmp_path / "results.jsonl"
    assert main(["analyze", str(manifest), str(folder), "--model", str(label_run), "--out", str(out),
                 "--tasks", "asr,ser", "--quiet"]) == 0
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows[:2]] == ["call-1", "call-2"] and len(rows) == 5
    assert rows[1]["duration"] == 1.0 and rows[1]["offset"] == 0.2
    assert all("asr" in r and "ser" in r and "did" not in r and "ssum" not in r for r in rows)
    err = capsys.readouterr().err
    assert f"{manifest}:3: no audio" in err and f"{manifest}:4: bad JSON" in err
    # Issue 28: --out is checked before the work: a folder, someone's file, an earlier result without --force.
    args = ["analyze", audio[0], "--model", str(label_run), "--tasks", "asr", "--quiet", "--out"]
    for target, says in ((tmp_path, "is a folder: --out names the file to write"),
                         (manifest, "does not hold analyze results"),
                         (out, "holds the results of an earlier analyze: pass --force")):
        before = target.read_bytes() if target.is_file() else None
        assert main([*args, str(target)]) == 2
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err, err
        assert before is None or target.read_bytes() == before
    assert not list(tmp_path.glob(".tmp.*"))
    assert main([*args, str(out), "--force"]) == 0 and len(out.read_text().splitlines()) == 1


def test_a_six_minute_recording_is_transcribed_by_window_and_summarized_from_its_transcript(label_run, tmp_path):
    rng = np.random.default_rng(0)
    long = tmp_path / "broadcast.wav"
    sf.write(long, (0.05 * rng.standard_normal(16000 * 360)).astype(np.float32), 16000)
    results, _ = analyze([long], label_run, tasks=["asr", "ssum", "ser"], progress=False)
    (r,) = results
    assert r["windows"] == 2 and r["window_seconds"] == 300
    assert [(s["start"], s["end"]) for s in r["asr"]["segments"]] == [(0.0, 180.0), (180.0, 360.0)]
    assert r["asr"]["text"] == " ".join(s["text"] for s in r["asr"]["segments"] if s["text"])
    assert r["ssum"]["source"] == "transcript" and "TSUM" in r["ssum"]["how"]
    assert r["ser"]["windows_averaged"] == 2 and sum(r["ser"]["probabilities"].values()) == pytest.approx(1.0)


def test_cached_label_scoring_equals_whole_sequence_scoring(label_run, synth_corpus):
    from checks import check_cached_label_scoring

    check_cached_label_scoring(label_run, synth_corpus, n=5)


def test_each_window_is_decoded_once_for_all_tasks(label_run, synth_corpus):
    from nabra.use.analyze import Analyzer, Recording, plan_windows

    analyzer = Analyzer(label_run)
    utts = [u for u in read_manifest(synth_corpus) if u.split == "test"][:4]
    recs = plan_windows([Recording(u.id, u.audio) for u in utts], analyzer.window, [])
    analyzer.run(recs, ("asr", "ssum", "did", "ser"))
    assert analyzer.store.decoded == len(recs) and analyzer.store.used == 0  # once each, then let go
    analyzer.close()


def test_an_unreadable_subfolder_and_a_symlink_loop_are_said(label_run, tmp_path, synth_corpus, capsys):
    import os

    audio = next(u.audio for u in read_manifest(synth_corpus))
    folder = tmp_path / "calls"
    (folder / "locked").mkdir(parents=True)
    (folder / "a.wav").write_bytes(Path(audio).read_bytes())
    loop = tmp_path / "loop.wav"
    loop.symlink_to(loop)
    os.chmod(folder / "locked", 0)
    try:
        results, skipped = analyze([folder, loop], label_run, tasks=["asr"], progress=False)
    finally:
        os.chmod(folder / "locked", 0o755)
    assert len(results) == 1
    if os.geteuid() != 0:  # root lists any folder
        assert any("locked: cannot list the folder (Permission denied)" in s for s in skipped), skipped
    assert any(str(loop) in s and "symbolic links" in s for s in skipped), skipped
