import errno
import json

from nabra.errors import NabraError
from nabra.files import disk_full, open_append, read_records


def test_appending_after_a_torn_line_keeps_the_new_record(tmp_path):
    log = tmp_path / "metrics.jsonl"
    log.write_bytes(b'{"step": 1}\n{"step": 2, "lo')  # a kill mid-write
    with open_append(log) as f:
        f.write(json.dumps({"step": 2}) + "\n")
    records, torn = read_records(log)
    assert records == [{"step": 1}, {"step": 2}] and torn == [2]


def test_disk_full_is_said_by_errno_and_not_guessed_from_stream_errors(tmp_path):
    full = disk_full(OSError(errno.ENOSPC, "No space left on device"), tmp_path / "x", 2048)
    assert isinstance(full, NabraError) and "no space left on device" in str(full) and "2.0 KiB" in str(full)
    # torch's C++ stream error on a disk with room: not called a full disk
    assert disk_full(RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos"), tmp_path) is None
    assert disk_full(ValueError("something else"), tmp_path) is None


def test_staged_folder_moves_in_on_success_only(tmp_path):
    import pytest

    from nabra.files import staged_folder, temp_path

    out = tmp_path / "model"
    with pytest.raises(RuntimeError), staged_folder(out) as tmp:
        (tmp / "model.safetensors").write_text("half")
        raise RuntimeError("killed while writing")
    assert not out.exists() and not temp_path(out).exists()
    out.mkdir()  # an existing empty folder (a mount point) stays the folder it is
    with staged_folder(out) as tmp:
        (tmp / "config.json").write_text("{}")
        (tmp / "model.safetensors").write_text("w")
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    assert not temp_path(out).exists()


def test_the_output_folder_rule(tmp_path):
    """One rule for every command that writes a folder: absent or empty, or an earlier output of the
    same kind (its marker) with force; never a file, someone's folder, or one that holds or lies
    inside a protected path."""
    import pytest

    from nabra.files import check_output_folder

    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    assert check_output_folder(tmp_path / "new", "m.json") == tmp_path / "new"
    (tmp_path / "empty").mkdir()
    assert check_output_folder(tmp_path / "empty", "m.json") == tmp_path / "empty"
    for out, says in ((tmp_path / "runs", "holds the run"), (run, "is the run"), (run / "x", "is inside the run")):
        with pytest.raises(NabraError, match=says):
            check_output_folder(out, "m.json", protect=[("the run", run)], force=True)
    (tmp_path / "earlier").mkdir()
    (tmp_path / "earlier" / "m.json").write_text("{}")
    with pytest.raises(NabraError, match="pass --force"):
        check_output_folder(tmp_path / "earlier", "m.json")
    assert check_output_folder(tmp_path / "earlier", "m.json", force=True)
    (tmp_path / "earlier" / "m.json").unlink()
    (tmp_path / "earlier" / "notes.txt").write_text("mine")
    with pytest.raises(NabraError, match="holds notes.txt, and is not an earlier"):
        check_output_folder(tmp_path / "earlier", "m.json", force=True)


def test_a_failed_commit_leaves_no_temporary_file(tmp_path):
    import pytest

    from nabra.files import atomic_path

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep").write_text("x")
    with pytest.raises(OSError), atomic_path(tmp_path / "out") as tmp:  # a file cannot replace a non-empty folder
        tmp.write_text("data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and (tmp_path / "out" / "keep").is_file()


def test_weights_get_the_mode_every_other_file_gets(tmp_path):
    """Issue 28 #8: safetensors writes its files 0600, every other file of a run is 0644 (umask 022)."""
    import os

    import torch
    from safetensors.torch import save_file

    from nabra.files import atomic_path, staged_folder

    mask = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "ckpt", folder=True) as tmp:
            save_file({"w": torch.zeros(2)}, str(tmp / "model.safetensors"))
            (tmp / "config.json").write_text("{}")
        with staged_folder(tmp_path / "model") as tmp:
            save_file({"w": torch.zeros(2)}, str(tmp / "model.safetensors"))
    finally:
        os.umask(mask)
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in tmp_path.rglob("*") if p.is_file()}
    assert set(modes.values()) == {oct(0o666 & ~mask)}, modes
