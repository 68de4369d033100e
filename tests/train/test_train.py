import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from nabra.cli import main
from nabra.config import load_config
from nabra.errors import NabraError
from nabra.run.checkpoint import checkpoints
from nabra.train import setup, train


def metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def train_records(run):
    return [r for r in metrics(run) if "loss" in r]


def final_weights(run):
    return load_file(str(run / "final" / "model.safetensors"))


@pytest.mark.parametrize("schedule", ["uniform", "tpc", "ads", "tpc_ads"])
def test_every_schedule_trains_the_tiny_model(make_config, schedule):
    cfg = load_config(make_config(schedule, schedule={"name": schedule, "ads": {"refresh_every": 2}}))
    run = train(cfg, progress=False, log=lambda *_: None)
    records = train_records(run)
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    for r in records:
        assert r["loss"] > 0 and r["grad_norm"] > 0 and r["lr"] > 0 and r["examples_per_s"] > 0
        assert set(r["task_loss"]) <= {"asr", "ssum", "tsum", "did", "ser"} and r["task_loss"]
        assert "loss_var" in r and "grad_norm_var" in r and r["stage"]
    dev = [r for r in metrics(run) if r.get("event") == "dev"]
    assert [r["step"] for r in dev] == [0, 2, 4] and dev[0]["dev_loss"]
    scored = [r for r in metrics(run) if r.get("event") == "dev_eval"]
    assert [r["step"] for r in scored] == [2, 4]
    assert {"wer", "cer", "wer_leaderboard"} <= set(scored[0]["metrics"]["asr"])
    assert "macro_f1" in scored[0]["metrics"]["did"] and "rougeL" in scored[0]["metrics"]["ssum"]
    best = json.loads((run / "best" / "nabra_run.json").read_text())
    assert best["composite"] == max(r["composite"] for r in scored)
    assert (run / "final" / "model.safetensors").is_file() and (run / "config.yaml").is_file()
    assert [c.name for c in checkpoints(run)] == ["step-0000002", "step-0000004"]  # the last step too
    if schedule in ("ads", "tpc_ads"):
        assert list((run / "embeddings").glob("*/embeddings.npz"))  # aligner embeddings were computed


def test_lora_run_saves_a_peft_adapter(make_config):
    cfg = load_config(make_config("lora", model={"finetune": "lora", "lora": {"r": 4}}, train={"max_steps": 2}))
    said = []
    run = train(cfg, progress=False, log=said.append)
    assert (run / "final" / "adapter_config.json").is_file()
    assert (run / "final" / "adapter_model.safetensors").is_file()
    # The fixture is a freshly initialised tiny model: LoRA over random weights is said to be pointless.
    assert any("random weights" in s and "finetune=full" in s for s in said)
    # The training data's shape, as the report reads it to name rare labels: the counts the set-up logged.
    shape = json.loads((run / "train-data.json").read_text())
    logged = next(s for s in said if s.startswith("training examples: "))
    assert all(f"{task} {n:,}" in logged for task, n in shape["examples"].items())
    assert set(shape["labels"]) == {"did", "ser"} and sum(shape["labels"]["did"].values()) == shape["examples"]["did"]


def test_learning_happens(make_config):
    cfg = load_config(make_config("learn", train={"max_steps": 30, "lr": 3e-3, "save_every": 0, "eval_every": 0}))
    records = train_records(train(cfg, progress=False, log=lambda *_: None))
    first, last = records[0]["loss"], sum(r["loss"] for r in records[-5:]) / 5
    assert last < first - 1.0, (first, last)


def _step_gradient(cfg):
    """The gradient of one training step, and the global batch it was computed on."""
    loop = setup(cfg, log=lambda *_: None)
    seen, grads = {}, {}
    next_batch, clip = loop.schedule.next_batch, loop._clip

    def record_batch():
        seen["batch"] = next_batch()
        return seen["batch"]

    def record_grads():
        grads.update({n: p.grad.clone() for n, p in loop.trained.named_parameters() if p.grad is not None})
        return clip()

    loop.schedule.next_batch, loop._clip = record_batch, record_grads
    loop.train_step()
    return loop, seen["batch"], grads


@pytest.mark.parametrize("reduction", ["token", "example"])
def test_step_gradient_is_that_of_the_configured_mean(make_config, reduction, tmp_path):
    # Two micro-batches of a mixed-task batch: transcripts have many answer tokens, labels few.
    cfg = load_config(make_config(reduction, train={"micro_batch_size": 4, "loss_reduction": reduction}))
    loop, batch, grads = _step_gradient(cfg)
    ref = setup(load_config(make_config("fresh")), log=lambda *_: None)  # the same initial weights
    model = ref.acc.unwrap_model(ref.model)
    model.zero_grad()
    sums, counts = [], []
    for i in batch:  # one example at a time: no padding, no grouping
        loss, n = model(ref.collator(ref.data.store.samples([loop.data.train[i]])))
        sums.append(loss[0])
        counts.append(n[0])
    assert len({int(n) for n in counts}) > 1  # the batch mixes answer lengths, so the two means differ
    if reduction == "token":
        total = torch.stack(sums).sum() / torch.stack(counts).sum()
    else:
        total = torch.stack([s / n for s, n in zip(sums, counts, strict=True)]).mean()
    total.backward()
    expected = {n: p.grad for n, p in model.model.named_parameters() if p.grad is not None}
    assert expected.keys() == grads.keys()
    for name, g in grads.items():
        assert torch.allclose(g, expected[name], atol=1e-6, rtol=1e-4), name


def _run_cli(config, *extra):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "nabra", "train", str(config), "--quiet", *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
@pytest.mark.parametrize(("schedule", "label_tokens", "hybrid", "packed", "augmented"),
                         [("tpc", True, False, False, False), ("ads", False, False, False, False),
                          ("ads", True, True, False, False), ("ads", False, False, True, False),
                          ("uniform", False, False, True, True)])
def test_sigkill_and_resume_gives_the_same_run(make_config, schedule, label_tokens, hybrid, packed, augmented, request):
    # LoRA with dropout: the RNG state matters; ADS refreshes its embeddings from the model every 3 steps.
    # With label_tokens the label words' output rows are trained too: they are in the checkpoint as well.
    # hybrid: the Nemotron-3-Nano-Omni family (Mamba states, Parakeet features, a projector outside the tower).
    # packed: micro-batches by token budget, each packed into one row.
    # augmented: data.augment (speed, reverberation, noise, gain): the resumed run redraws the same audio.
    model = {"finetune": "lora", "lora": {"r": 4, "dropout": 0.1, "train_aligner": True,
                                          "train_label_tokens": label_tokens}}
    if hybrid:
        model["path"] = str(request.getfixturevalue("tiny_nemotron"))
    sections = {"train": {"max_steps": 8, "save_every": 2, "eval_every": 0, "keep_last": 10,
                          **({"micro_batch_tokens": 1200} if packed else {})},
                "schedule": {"name": schedule, "ads": {"refresh_every": 3}}, "model": model,
                **({"collate": {"packing": True}} if packed else {}),
                **({"data": {"augment": {name: {"prob": 0.7} for name in ("speed", "reverb", "noise", "gain")}}}
                   if augmented else {})}
    reference = train(load_config(make_config("ref", **sections)), progress=False, log=lambda *_: None)
    config = make_config("killed", **sections)
    run = Path(load_config(config).output_dir)
    proc = _run_cli(config)
    deadline = time.time() + 120
    while not (os.path.isdir(f"{run}/checkpoints/step-0000004") or time.time() > deadline or proc.poll() is not None):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # A torn checkpoint (killed mid-write) must never be picked.
    torn = run / "checkpoints" / "step-0000006"
    torn.mkdir(parents=True, exist_ok=True)
    (torn / "trainable.safetensors").write_bytes(b"half a file")
    assert all(c.name != "step-0000006" for c in checkpoints(run))
    resumed = _run_cli(config)
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    assert "resuming" in out
    ref, got = train_records(reference), train_records(run)
    assert [r["step"] for r in got] == list(range(1, 9))
    for a, b in zip(ref, got, strict=True):
        assert abs(a["loss"] - b["loss"]) < 1e-6, (a["step"], a["loss"], b["loss"])
    wa, wb = load_file(str(reference / "final" / "adapter_model.safetensors")), load_file(str(run / "final" / "adapter_model.safetensors"))
    assert wa.keys() == wb.keys() and all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)
    assert any("trainable_tokens" in k for k in wa) == label_tokens
    if packed:
        assert max(r["micro_batches"] for r in got) >= 2


@pytest.mark.slow
def test_two_processes_match_one_with_the_same_global_batch(make_config):
    sections = {"train": {"max_steps": 3, "save_every": 0, "eval_every": 0}}
    one = make_config("one", train={**sections["train"], "micro_batch_size": 4})
    two = make_config("two", **sections)
    assert main(["train", str(one), "--quiet"]) == 0
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    proc = subprocess.run([torchrun, "--nproc_per_node", "2", "--master_port", "29541", "-m", "nabra", "train",
                           str(two), "--quiet"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    a, b = train_records(Path(load_config(one).output_dir)), train_records(Path(load_config(two).output_dir))
    assert [r["step"] for r in b] == [1, 2, 3]
    for x, y in zip(a, b, strict=True):
        assert abs(x["loss"] - y["loss"]) < 1e-5 and abs(x["grad_norm"] - y["grad_norm"]) < 1e-4
        assert x["task_loss"].keys() == y["task_loss"].keys()


def test_invalid_manifest_stops_or_is_quarantined(make_config, synth_corpus, tmp_path):
    bad = tmp_path / "bad.jsonl"
    lines = synth_corpus.read_text(encoding="utf-8").splitlines()
    bad.write_text("\n".join(lines[:40] + ['{"id": "x", "emotion": "bored", "audio": "a.wav"}', "{oops"]) + "\n")
    shutil.copytree(synth_corpus.parent / "audio", tmp_path / "audio")
    config = make_config("q", data={"manifest": str(bad)}, train={"max_steps": 1, "save_every": 0, "eval_every": 0})
    with pytest.raises(NabraError, match=r"(?s)2 invalid line\(s\).*bad.jsonl:41: emotion 'bored'.*skip-invalid"):
        train(load_config(config), progress=False, log=lambda *_: None)
    assert main(["train", str(config), "--quiet", "--skip-invalid"]) == 0
    run = Path(load_config(config).output_dir)
    quarantined = [json.loads(x) for x in (run / "quarantine.jsonl").read_text().splitlines()]
    assert [q["line"] for q in quarantined] == [41, 42]
    assert "bored" in quarantined[0]["reasons"][0] and "bad JSON" in quarantined[1]["reasons"][0]
    assert main(["train", str(config), "--quiet", "--skip-invalid"]) == 0  # the rerun validates again ...
    again = [json.loads(x) for x in (run / "quarantine.jsonl").read_text().splitlines()]
    assert again == quarantined  # ... and does not write the same lines twice


def test_resuming_with_another_config_is_refused(make_config):
    config = make_config("cfgchange", train={"max_steps": 2, "save_every": 1, "eval_every": 0})
    train(load_config(config), progress=False, log=lambda *_: None)
    changed = load_config(config, ["schedule.name=tpc"])
    with pytest.raises(NabraError, match="another config .*schedule.name"):
        train(changed, progress=False, log=lambda *_: None)
    longer = load_config(config, ["train.max_steps=3"])  # extending a run is fine
    assert len(train_records(train(longer, progress=False, log=lambda *_: None))) == 3


def test_a_finished_run_is_left_alone_and_an_extension_continues_the_plan(make_config):
    # TPC in thirds of a 3-step plan: stage k trains step k. Extended to 6 steps, the stages, the LR
    # curve (cosine to lr * min_lr_ratio, then flat) and the volatility window continue, not restart.
    sections = {"schedule": {"name": "tpc", "tpc": {"fractions": [1 / 3, 1 / 3, 1 / 3]}},
                "train": {"max_steps": 3, "save_every": 0, "eval_every": 0, "warmup_steps": 1, "min_lr_ratio": 0.1}}
    config = make_config("plan", **sections)
    run = train(load_config(config), progress=False, log=lambda *_: None)
    first = train_records(run)
    assert [c.name for c in checkpoints(run)] == ["step-0000003"]  # the last step is always checkpointed
    assert [r["stage"].split()[0] for r in first] == ["tpc:1/3", "tpc:2/3", "tpc:3/3"]  # each batch's own stage
    final = run / "final" / "nabra_run.json"
    stamp, said = final.stat().st_mtime_ns, []
    assert train(load_config(config), progress=False, log=said.append) == run  # rerun: nothing to do
    assert any("finished at step 3: nothing to do" in s for s in said)
    assert final.stat().st_mtime_ns == stamp and train_records(run) == first
    said.clear()
    train(load_config(config, ["train.max_steps=6"]), progress=False, log=said.append)
    records = train_records(run)
    assert any("extended from 3" in s for s in said)
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6] and records[:3] == first
    assert {r["stage"].split()[0] for r in records[3:]} == {"tpc:3/3"}
    assert all(r["lr"] == pytest.approx(1e-4) for r in records[2:])  # 1e-3 * 0.1 from the planned end on
    norms = [r["grad_norm"] for r in records]
    assert records[3]["grad_norm_var"] == pytest.approx(float(np.var(norms[:4])))  # window restored
    assert json.loads(final.read_text())["step"] == 6


def test_logged_loss_is_the_mean_the_step_took(make_config):
    cfg = load_config(make_config("exmean", train={"max_steps": 20, "save_every": 0, "eval_every": 0,
                                                   "loss_reduction": "example", "lr": 3e-3}))
    loop = setup(cfg, log=lambda *_: None)
    for _ in range(12):  # past the first steps every answer costs ~ln(vocab): the two means would agree
        loop.train_step()
    state = loop.schedule.state_dict()
    batch = loop.schedule.next_batch()
    loop.schedule.load_state_dict(state)  # the step below draws the same batch
    model = loop.acc.unwrap_model(loop.model)
    with torch.no_grad():
        per_example, counts = [], []
        for i in batch:
            loss, n = model(loop.collator(loop.data.store.samples([loop.data.train[i]])))
            per_example.append(float(loss[0] / n[0]))
            counts.append(int(n[0]))
    token_mean = sum(p * n for p, n in zip(per_example, counts, strict=True)) / sum(counts)
    assert token_mean != pytest.approx(sum(per_example) / len(per_example), rel=1e-2)  # the two means differ here
    record = loop.train_step()
    assert record["loss"] == pytest.approx(sum(per_example) / len(per_example), rel=1e-4)


def test_a_bfloat16_model_trains_under_fp32_precision(make_config):
    cfg = load_config(make_config("bf16", model={"dtype": "bfloat16"},
                                  train={"max_steps": 1, "save_every": 0, "eval_every": 0, "precision": "fp32"}))
    loop = setup(cfg, log=lambda *_: None)
    batch = loop._batch([ex for ex in loop.data.train if ex.audio][:2])
    assert batch["input_features"].dtype == torch.bfloat16  # as evaluation feeds it
    assert math.isfinite(loop.train_step()["loss"])


def test_a_missing_gradient_norm_is_logged_as_nan(make_config):
    cfg = load_config(make_config("nonorm", train={"max_steps": 1, "save_every": 0, "eval_every": 0}))
    loop = setup(cfg, log=lambda *_: None)
    loop.acc.clip_grad_norm_ = lambda *a, **k: None  # what DeepSpeed's accelerate path returns
    assert math.isnan(loop.train_step()["grad_norm"])


def test_ads_embeds_the_valid_training_split_once_while_the_aligner_is_frozen(make_config, synth_corpus, tmp_path):
    # A quarantined line (its audio does not exist) must not reach the embedding pass; other splits are
    # not embedded; LoRA on the language model alone leaves the aligner frozen: one pass, then skipped.
    manifest = tmp_path / "m.jsonl"
    lines = synth_corpus.read_text().splitlines()
    bad = json.dumps({"id": "gone", "audio": "nowhere.wav", "transcript": "نص", "emotion": "calm", "split": "train"})
    manifest.write_text("\n".join([*lines, bad]) + "\n")
    for name in ("audio",):
        (tmp_path / name).symlink_to(synth_corpus.parent / name)
    said = []
    cfg = load_config(make_config("frozen", data={"manifest": str(manifest), "skip_invalid": True},
                                  schedule={"name": "ads", "ads": {"refresh_every": 1}},
                                  model={"finetune": "lora", "lora": {"r": 4}},
                                  train={"max_steps": 3, "save_every": 0, "eval_every": 0}))
    run = train(cfg, progress=False, log=said.append)
    (folder,) = (run / "embeddings").iterdir()
    info = json.loads((folder / "info.json").read_text())
    n_train = sum(json.loads(x).get("split") == "train" for x in lines)
    assert info["utterances"] == n_train and info["unreadable_audio"] == 0
    assert sum("refresh skipped" in s for s in said) == 2  # steps 1 and 2; step 0 computed them


def test_tensorboard_drops_the_steps_a_resume_logs_again(make_config, monkeypatch):
    import types

    writers = []

    class Writer:  # stands in for torch.utils.tensorboard.SummaryWriter (tensorboard is optional)
        def __init__(self, logdir, purge_step=None):
            self.purge_step, self.steps = purge_step, []
            writers.append(self)

        def add_scalar(self, tag, value, step):
            self.steps.append(step)

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=Writer))
    config = make_config("tb", train={"max_steps": 2, "save_every": 1, "eval_every": 0, "tensorboard": True})
    train(load_config(config), progress=False, log=lambda *_: None)
    train(load_config(config, ["train.max_steps=4"]), progress=False, log=lambda *_: None)
    assert [w.purge_step for w in writers] == [1, 3]  # a fresh start drops what an earlier attempt logged
    assert sorted(set(writers[1].steps)) == [3, 4]


def test_tpc_ads_switches_on_the_asr_plateau_and_logs_the_step(make_config):
    config = make_config("plateau", schedule={"name": "tpc_ads", "tpc_ads": {
        "switch": "plateau", "plateau_window": 1, "plateau_threshold": 1.0, "max_switch": 0.9}},
        train={"max_steps": 6, "eval_every": 1, "save_every": 3})
    said = []
    run = train(load_config(config), progress=False, log=said.append)
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    (event,) = [r for r in records if r.get("event") == "schedule"]
    # The dev loss before step 1 and after it: the first comparison, at step 1.
    assert [r["step"] for r in records if r.get("event") == "dev"][:2] == [0, 1]
    assert event["step"] == 1 and "ADS from step 1" in event["message"]
    stages = [r["stage"] for r in records if "loss" in r]
    assert stages[:1] == ["tpc:1/3 asr"] and all(s.startswith("ads") for s in stages[1:])
    assert any("plateaued" in s for s in said)
    with pytest.raises(NabraError, match="eval_every"):
        train(load_config(make_config("noeval", schedule={"name": "tpc_ads", "tpc_ads": {"switch": "plateau"}},
                                      train={"eval_every": 0})), progress=False, log=lambda *_: None)


def test_adaptive_logs_its_task_shares_from_step_0_and_resumes_them(make_config):
    config = make_config("adaptive", schedule={"name": "adaptive", "adaptive": {"eta": 5.0}},
                         train={"max_steps": 4, "eval_every": 2, "save_every": 2})
    run = train(load_config(config), progress=False, log=lambda *_: None)
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    events = [r for r in records if r.get("event") == "schedule"]
    assert [e["step"] for e in events] == [0, 2, 4]
    first, *later = [e["weights"] for e in events]
    assert len(set(first.values())) == 1  # equal shares until the losses have moved
    assert all(abs(sum(w.values()) - 1) < 1e-9 and min(w.values()) >= 0.05 - 1e-9 for w in later)
    assert later[0] != first
    # An extension resumes the shares from the checkpoint: the step-4 shares are where it goes on from.
    extended = train(load_config(config, ["train.max_steps=6"]), progress=False, log=lambda *_: None)
    records = [json.loads(x) for x in (extended / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if r.get("event") == "schedule"]
    assert steps == [0, 2, 4, 6]
    with pytest.raises(NabraError, match="adaptive reads the dev loss"):
        train(load_config(make_config("noeval2", schedule={"name": "adaptive"}, train={"eval_every": 0})),
              progress=False, log=lambda *_: None)
