"""Audio that fails to decode mid-run: skipped, quarantined with its step and manifest line, counted;
the step trains on the rest with the right denominator, an emptied micro-batch still runs; resume works."""

import json
import shutil

import pytest
import torch
from test_train import _step_gradient, train_records  # tests/train is on sys.path (rootdir-relative imports)

from nabra.config import load_config
from nabra.corpus.manifest import read_manifest
from nabra.errors import NabraError
from nabra.train import setup, train


@pytest.fixture
def broken_corpus(tmp_path, synth_corpus):
    """The synthetic corpus with every third training clip unreadable (it validates: nothing opens audio)."""
    root = tmp_path / "broken"
    shutil.copytree(synth_corpus.parent, root)
    broken = set()
    for i, u in enumerate(u for u in read_manifest(root / "manifest.jsonl") if u.split == "train"):
        if i % 3 == 0:
            (root / u.audio).write_bytes(b"RIFF but not really a wave file")
            broken.add(u.id)
    return root / "manifest.jsonl", broken


def _config(make_config, manifest, name, **train):
    return load_config(make_config(name, data={"manifest": str(manifest)},
                                   train={"max_steps": 4, "save_every": 2, "eval_every": 0, **train}))


def test_unreadable_clips_are_quarantined_and_counted(make_config, broken_corpus):
    manifest, broken = broken_corpus
    run = train(_config(make_config, manifest, "broken"), progress=False, log=lambda *_: None)
    records = train_records(run)
    assert [r["step"] for r in records] == [1, 2, 3, 4] and sum(r["dropped"] for r in records) > 0
    lines = [json.loads(x) for x in (run / "quarantine.jsonl").read_text().splitlines()]
    assert len(lines) == sum(r["dropped"] for r in records)
    for entry in lines:
        assert entry["kind"] == "audio" and entry["id"].split("#")[0] in broken and 1 <= entry["step"] <= 4
        assert entry["where"].startswith(f"{manifest}:") and "not a readable audio file" in entry["reason"]
    info = json.loads((run / "final" / "nabra_run.json").read_text())
    assert info["dropped_examples"] == len(lines)


def test_resume_after_a_drop_gives_the_same_run(make_config, broken_corpus):
    manifest, _ = broken_corpus
    whole = train(_config(make_config, manifest, "whole"), progress=False, log=lambda *_: None)
    config = _config(make_config, manifest, "halves", max_steps=2)
    train(config, progress=False, log=lambda *_: None)
    halves = train(load_config(make_config("halves", data={"manifest": str(manifest)},
                                           train={"max_steps": 4, "save_every": 2, "eval_every": 0})),
                   progress=False, log=lambda *_: None)
    drop = {"examples_per_s"}
    a = [{k: v for k, v in r.items() if k not in drop} for r in train_records(whole)]
    b = [{k: v for k, v in r.items() if k not in drop} for r in train_records(halves)]
    assert [r["step"] for r in b] == [1, 2, 3, 4]
    for x, y in zip(a, b, strict=True):
        assert x["dropped"] == y["dropped"] and abs(x["loss"] - y["loss"]) < 1e-6
    assert (whole / "quarantine.jsonl").read_text() == (halves / "quarantine.jsonl").read_text()


def test_the_step_gradient_counts_only_what_was_trained(make_config, broken_corpus, synth_corpus):
    # One example per micro-batch: a broken clip empties its micro-batch, which runs at zero weight.
    manifest, broken = broken_corpus
    cfg = _config(make_config, manifest, "grad", micro_batch_size=1, loss_reduction="token")
    loop, batch, grads = _step_gradient(cfg)
    examples = [loop.data.train[i] for i in batch]
    kept = [ex for ex in examples if ex.utt_id not in broken]
    assert 0 < len(kept) < len(examples)
    ref = setup(load_config(make_config("fresh", data={"manifest": str(manifest)})), log=lambda *_: None)
    model = ref.acc.unwrap_model(ref.model)
    model.zero_grad()
    sums, counts = zip(*(model(ref.collator(ref.data.store.samples([ex]))) for ex in kept), strict=True)
    (torch.cat(sums).sum() / torch.cat(counts).sum()).backward()
    expected = {n: p.grad for n, p in model.model.named_parameters() if p.grad is not None}
    assert expected.keys() == grads.keys()
    for name, g in grads.items():
        assert torch.allclose(g, expected[name], atol=1e-6, rtol=1e-4), name


def test_check_audio_opens_every_file_before_step_1(make_config, broken_corpus):
    manifest, broken = broken_corpus
    with pytest.raises(NabraError, match="not a readable audio file"):
        setup(load_config(make_config("checked", data={"manifest": str(manifest), "check_audio": True})),
              log=lambda *_: None)
    cfg = load_config(make_config("checked-q", data={"manifest": str(manifest), "check_audio": True,
                                                    "skip_invalid": True}))
    loop = setup(cfg, log=lambda *_: None)
    quarantined = [json.loads(x) for x in (loop.run.path / "quarantine.jsonl").read_text().splitlines()]
    assert len(quarantined) == len(broken) and not any(ex.utt_id in broken for ex in loop.data.train)
    assert all("step" not in q for q in quarantined)  # found before step 1
