"""Checkpoints of a run: atomic, complete or absent, restored exactly (weights, optimizer, LR and
data schedules, RNG of every process); and the trained model written as ``final/`` or ``best/``.

A checkpoint is written to a temporary folder and renamed once every process has written its part
and the ``COMPLETE`` marker is in: a kill at any moment leaves either the old checkpoints or the
new one, never a torn folder that :func:`checkpoints` would pick.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from nabra.errors import NabraError
from nabra.files import (
    atomic_path,
    commit,
    disk_full,
    free_bytes,
    normalize_modes,
    remove,
    size_text,
    temp_path,
)

CHECKPOINT_PREFIX = "step-"
SHARDED = ("FSDP", "DEEPSPEED")
"""Distributed types whose model and optimizer states are saved sharded, by accelerate."""


def checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first (a folder is complete once it holds ``COMPLETE``)."""
    folder = run_dir / "checkpoints"
    found = [p for p in folder.glob(f"{CHECKPOINT_PREFIX}*") if (p / "COMPLETE").is_file()] if folder.is_dir() else []
    return sorted(found, key=lambda p: int(p.name[len(CHECKPOINT_PREFIX):]))


def rng_state() -> dict:
    """Python, numpy, torch (and CUDA) RNG states, loadable with ``torch.load(weights_only=True)``
    (accelerate's own RNG restore silently fails under ``weights_only``: numpy's state is not a tensor)."""
    np_state = np.random.get_state()
    return {"python": list(random.getstate()[1]), "python_pos": random.getstate()[2],
            "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)), "numpy_pos": int(np_state[2]),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned."""
    random.setstate((3, tuple(state["python"]), state["python_pos"]))
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def trainable_state(model) -> dict[str, torch.Tensor]:
    """The parameters that train (LoRA, or every weight), on the CPU."""
    return {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}


def save_checkpoint(run_dir: Path, step: int, acc, model, optimizer, lr_scheduler, schedule, keep_last: int,
                    extra: dict | None = None) -> Path:
    """Write ``checkpoints/step-N`` atomically (every process takes part); keep the last ``keep_last``."""
    final = run_dir / "checkpoints" / f"{CHECKPOINT_PREFIX}{step:07d}"
    tmp = temp_path(final)
    # Weights plus two Adam moments each, and a little for the rest: a full disk is said before writing.
    needed = 3 * sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad) + (1 << 20)
    error = None
    if acc.is_main_process:
        remove(tmp)  # a leftover of an earlier, killed attempt
        if free_bytes(run_dir) < needed:
            error = (f"{final}: no space left on device ({size_text(free_bytes(run_dir))} free; a checkpoint "
                     f"needs about {size_text(needed)}); the last complete checkpoint is kept")
        else:
            tmp.mkdir(parents=True)
    errors = _errors(acc, error)
    if errors:
        raise NabraError(errors[0])
    try:
        if acc.distributed_type.value in SHARDED:
            acc.save_state(str(tmp / "accelerate"))
        elif acc.is_main_process:
            save_file(trainable_state(acc.unwrap_model(model)), str(tmp / "trainable.safetensors"))
            torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        if acc.is_main_process:
            torch.save({"lr_scheduler": lr_scheduler.state_dict(), "schedule": schedule.state_dict(), "step": step,
                        **(extra or {})}, tmp / "trainer_state.pt")
        torch.save(rng_state(), tmp / f"rng-{acc.process_index}.pt")
    except Exception as e:
        full = disk_full(e, tmp, needed)
        if full is None:
            raise
        error = f"{full}; the last complete checkpoint is kept"
    errors = _errors(acc, error)  # every process stops together, none waits forever
    if errors:
        if acc.is_main_process:
            remove(tmp)  # the torn attempt (once every process is done with it)
        raise NabraError(errors[0])
    if acc.is_main_process:
        (tmp / "COMPLETE").write_text(f"{step}\n")
        normalize_modes(tmp)
        _fsync_files(tmp)
        commit(tmp, final)
        for old in checkpoints(run_dir)[:-keep_last]:
            remove(old)
    acc.wait_for_everyone()
    return final


def _errors(acc, error: str | None) -> list[str]:
    """The errors of every process (each one calls this): all stop together, none waits forever."""
    if acc.num_processes == 1:
        return [error] if error else []
    from accelerate.utils import gather_object

    return [e for e in gather_object([error]) if e]


def _fsync_files(folder: Path) -> None:
    for path in folder.iterdir():
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())


def trainer_state(ckpt: Path) -> dict:
    """The ``trainer_state.pt`` of a checkpoint: step, LR and data schedule states, and what the recipe added."""
    return torch.load(ckpt / "trainer_state.pt", map_location="cpu", weights_only=True)


def load_checkpoint(ckpt: Path, acc, model, optimizer, lr_scheduler, schedule) -> dict:
    """Restore everything :func:`save_checkpoint` saved; returns the trainer state (``step`` and the extras)."""
    if (ckpt / "accelerate").is_dir():
        acc.load_state(str(ckpt / "accelerate"))
    else:
        weights = load_file(str(ckpt / "trainable.safetensors"))
        unexpected = acc.unwrap_model(model).load_state_dict(weights, strict=False).unexpected_keys
        if unexpected:
            raise NabraError(f"{ckpt}: weights do not fit the model ({unexpected[:3]} ...)")
        optimizer.load_state_dict(torch.load(ckpt / "optimizer.pt", map_location="cpu", weights_only=True))
    state = trainer_state(ckpt)
    lr_scheduler.load_state_dict(state["lr_scheduler"])
    schedule.load_state_dict(state["schedule"])
    rng_file = ckpt / f"rng-{acc.process_index}.pt"
    if rng_file.is_file():
        set_rng_state(torch.load(rng_file, weights_only=True))
    return state


def save_model(acc, model, trained, out: Path, info: dict, *, extra_files=()) -> Path:
    """Write the trained model to ``out`` atomically (replacing it): the PEFT adapter or the full
    thinker checkpoint, the objects of ``extra_files`` (tokenizer, feature extractor: anything with
    ``save_pretrained``), and ``nabra_run.json`` with ``info``. ``model`` is the prepared (wrapped)
    model whose state is gathered (under FSDP), ``trained`` the PEFT/thinker model inside it."""
    acc.wait_for_everyone()
    # The state of the trained model inside the loss wrapper (gathered under FSDP).
    state = {k.removeprefix("model."): v for k, v in acc.get_state_dict(model).items()}
    if acc.is_main_process:
        with atomic_path(out, folder=True) as tmp:  # a full disk: one line, and the old folder stays
            trained.save_pretrained(tmp, state_dict=state, safe_serialization=True)
            for obj in extra_files:
                obj.save_pretrained(tmp)
            (tmp / "nabra_run.json").write_text(json.dumps(info, indent=2))
    acc.wait_for_everyone()
    return out
