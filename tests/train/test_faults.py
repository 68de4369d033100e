"""Faults around a run: torn logs, restarts, a run folder moved, a full disk, a bad model folder."""

import json
import os
import shutil
import subprocess

import pytest

from nabra.cli import main
from nabra.config import load_config
from nabra.errors import NabraError
from nabra.run import checkpoint as ckpt_module
from nabra.run.checkpoint import checkpoints
from nabra.train import train


def steps_logged(run):
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    return [r["step"] for r in records if "loss" in r]


def quiet(*_):
    pass


def test_a_torn_last_metrics_line_does_not_block_the_resume(make_config):
    config = make_config("torn", train={"max_steps": 2, "save_every": 1, "eval_every": 0})
    run = train(load_config(config), progress=False, log=quiet)
    with open(run / "metrics.jsonl", "ab") as f:
        f.write(b'{"step": 3, "loss": 0.5, "task_lo')  # killed mid-write, past the checkpoint
    said = []
    train(load_config(config, ["train.max_steps=3"]), progress=False, log=said.append)
    assert steps_logged(run) == [1, 2, 3]
    assert any("torn line" in s for s in said)


def test_a_restart_without_a_checkpoint_logs_each_step_once(make_config):
    config = make_config("restart", train={"max_steps": 2, "save_every": 1, "eval_every": 0})
    run = train(load_config(config), progress=False, log=quiet)
    shutil.rmtree(run / "checkpoints")  # as if killed before its first checkpoint
    shutil.rmtree(run / "final")
    train(load_config(config), progress=False, log=quiet)
    assert steps_logged(run) == [1, 2]  # not 1, 2, 1, 2


def test_a_run_folder_moved_to_another_disk_resumes_there(make_config, tmp_path):
    config = make_config("here", train={"max_steps": 2, "save_every": 1, "eval_every": 0})
    run = train(load_config(config), progress=False, log=quiet)
    moved = tmp_path / "other-disk" / "run"
    shutil.copytree(run, moved)
    said = []
    train(load_config(config, [f"output_dir={moved}", "train.max_steps=3"]), progress=False, log=said.append)
    assert any("resuming" in s and "step 2 of 3" in s for s in said)
    assert steps_logged(moved) == [1, 2, 3]


@pytest.fixture
def small_disk(tmp_path):
    """A 48 MiB tmpfs (the test needs root and mount; skipped otherwise)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip() or 'not root'})")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(mount, leave: int):
    free = shutil.disk_usage(mount).free
    with open(mount / "filler", "wb") as f:
        f.truncate(0)
        chunk = b"\0" * (1 << 20)
        while free - f.tell() > leave + len(chunk):
            f.write(chunk)
        f.flush()


@pytest.mark.parametrize("when", ["said before writing", "met while writing"])
def test_a_full_disk_is_one_line_and_the_last_checkpoint_stays(make_config, small_disk, monkeypatch, capsys, when):
    config = make_config("full", output_dir=str(small_disk / "run"),
                         train={"max_steps": 3, "save_every": 1, "eval_every": 0})
    real_save = ckpt_module.save_checkpoint

    def save_then_fill(run_dir, step, *args, **kwargs):
        out = real_save(run_dir, step, *args, **kwargs)
        if step == 1:
            _fill(small_disk, leave=256 << 10)  # 256 KiB left: the next checkpoint cannot fit
        return out

    monkeypatch.setattr("nabra.train.save_checkpoint", save_then_fill)
    if when == "met while writing":  # the free-space check passes: torch.save/safetensors hit the full disk
        monkeypatch.setattr(ckpt_module, "free_bytes", lambda path: 1 << 40)
    assert main(["train", str(config), "--quiet"]) == 2
    err = capsys.readouterr().err  # transformers' loading bar comes first
    last = err.strip().splitlines()[-1]
    assert last.startswith("nabra: error: ") and "no space left on device" in last and "needs about" in last
    assert "the last complete checkpoint is kept" in last and "Traceback" not in err and "basic_ios" not in err
    assert ("it needs about" if when == "met while writing" else "a checkpoint needs about") in last
    run = small_disk / "run"
    assert [p.name for p in checkpoints(run)] == ["step-0000001"]
    assert not list((run / "checkpoints").glob(".tmp.*"))  # the torn attempt is gone
    (small_disk / "filler").unlink()
    monkeypatch.setattr("nabra.train.save_checkpoint", real_save)
    assert main(["train", str(config), "--quiet"]) == 0  # space again: it resumes from step 1 and finishes
    assert steps_logged(run) == [1, 2, 3]


def test_bad_model_folders_and_missing_manifests_fail_fast(make_config, tmp_path, capsys):
    mine = tmp_path / "my-model"
    mine.mkdir()
    (mine / "weights.bin").write_bytes(b"not a model")
    config = make_config("tinyinit", model={"path": str(mine), "init_tiny": True})
    with pytest.raises(NabraError, match="holds weights.bin, and is not an earlier tiny model"):
        train(load_config(config), progress=False, log=quiet)
    assert [p.name for p in mine.iterdir()] == ["weights.bin"]
    (mine / "config.json").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    config = make_config("garbage", model={"path": str(mine)})
    assert main(["train", str(config), "--quiet"]) == 2
    assert f"{mine / 'config.json'}: not a JSON file" in capsys.readouterr().err
    # The data is checked first: a missing manifest is said before any model is read.
    config = make_config("nodata", data={"manifest": str(tmp_path / "missing.jsonl")}, model={"path": str(mine)})
    assert main(["train", str(config), "--quiet"]) == 2
    assert "missing.jsonl: manifest not found" in capsys.readouterr().err


READ_ONLY = "/sys/nabra-cannot-write-here"  # sysfs refuses new entries even to root (EPERM)
needs_sysfs = pytest.mark.skipif(not os.path.isdir("/sys/kernel"), reason="no sysfs to stand for a read-only folder")


def one_line_error(capsys, says: str) -> None:
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1 and err.startswith("nabra: error: ") and says in err, err


@needs_sysfs
def test_writing_where_nothing_can_be_written_is_one_line(make_config, capsys):
    """Issue 28 #7: training into, and exporting into, a read-only folder gave tracebacks."""
    assert main(["train", str(make_config("ro")), f"output_dir={READ_ONLY}", "--quiet"]) == 2
    one_line_error(capsys, READ_ONLY)


def test_overrides_may_come_after_the_flags(make_config, tmp_path):
    """Issue 28 #8: `nabra train cfg --quiet train.max_steps=2` was refused as unrecognized arguments."""
    config = make_config("late")
    assert main(["train", str(config), "--quiet", "train.max_steps=2", "train.save_every=0", "train.eval_every=0"]) == 0
    assert steps_logged(tmp_path / "late") == [1, 2]
    with pytest.raises(SystemExit):
        main(["train", str(config), "--quiet", "--no-such-flag"])


def test_recipes_that_are_ambiguous_or_not_recipes_are_refused_without_echoing_them(tmp_path, capsys):
    """Issue 28 #5 and #8: a second `train:` section replaced the first silently; a file that is no recipe
    had its first line printed (`nabra train ../../etc/shadow`); a Cyrillic letter made a key look valid."""
    recipe = tmp_path / "twice.yaml"
    recipe.write_text("train:\n  lr: 0.001\n  max_steps: 100\nschedule:\n  name: ads\ntrain:\n  max_steps: 5\n")
    assert main(["train", str(recipe)]) == 2
    one_line_error(capsys, "twice.yaml:6: duplicate key 'train' (first on line 1)")
    recipe.write_text("train:\n  lr: 0.001\n  lr: 0.1\n")
    assert main(["train", str(recipe)]) == 2
    one_line_error(capsys, "twice.yaml:3: duplicate key 'lr' (first on line 2)")
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$salt$hashhashhash:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n")
    assert main(["train", str(secret)]) == 2
    err = capsys.readouterr().err
    assert "not a Nabra recipe" in err and "hashhash" not in err and "root:" not in err
    broken = tmp_path / "broken.yaml"
    broken.write_text("train:\n  lr: [0.1\n  password: hunter2\n")
    assert main(["train", str(broken)]) == 2
    err = capsys.readouterr().err
    assert "broken.yaml:3:" in err and "not valid YAML" in err and "hunter2" not in err
    look = tmp_path / "look.yaml"
    look.write_text("schedule:\n  name: ads\ntr\u0430in:\n  lr: 0.1\n", encoding="utf-8")
    assert main(["train", str(look)]) == 2
    one_line_error(capsys, "unknown config key 'tr\u0430in' (it holds U+0430 CYRILLIC SMALL LETTER A)")
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("train:\n  lr: 0.1  # r\u00e9glage\n".encode("latin-1"))
    assert main(["train", str(latin1)]) == 2
    one_line_error(capsys, "latin1.yaml: not UTF-8 text (byte 0xE9")


def test_control_and_bidi_characters_in_paths_are_shown_escaped(tmp_path, capsys):
    sneaky = tmp_path / "run\u202egpj.yaml"  # reads as "runlmay.jpg" on a terminal
    assert main(["train", str(sneaky)]) == 2
    one_line_error(capsys, "run\\u202egpj.yaml")


def test_a_warmup_longer_than_the_run_is_said_at_set_up(make_config):
    """Issue 28 #8: the demo recipe's warmup of 20 with max_steps=8 never reached its peak LR, silently."""
    said = []
    train(load_config(make_config("warm", train={"max_steps": 3, "warmup_steps": 5, "save_every": 0,
                                                 "eval_every": 0})), progress=False, log=said.append)
    assert any("warmup_steps (5) is not below the run's 3 planned steps" in line for line in said), said
    said.clear()
    train(load_config(make_config("fine", train={"max_steps": 3, "warmup_steps": 1, "save_every": 0,
                                                 "eval_every": 0})), progress=False, log=said.append)
    assert not any("warmup_steps" in line for line in said)
