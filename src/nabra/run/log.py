"""Run logging: the run folder's ``config.yaml`` and ``metrics.jsonl``, the volatility diagnostics,
TensorBoard, and the training progress bar."""

from __future__ import annotations

import json
from collections import deque
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import yaml

from nabra.config import RunConfig, dump_config, to_dict
from nabra.errors import NabraError
from nabra.files import disk_full, open_append, read_records, write_text
from nabra.progress import progress_bar
from nabra.run.checkpoint import checkpoints
from nabra.run.folder import RunFolder

RESUMABLE_CHANGES = {"output_dir", "train.max_steps", "train.epochs", "train.save_every", "train.keep_last",
                     "train.eval_every", "train.log_every", "train.tensorboard"}
"""Config keys a resumed run may change; any other difference means a different run (``output_dir``
is where the run lives, not what it is: a run folder copied to another disk resumes there)."""


class RunDir(RunFolder):
    """The run folder as training writes it: ``config.yaml``, ``metrics.jsonl``, ``quarantine.jsonl``
    (by the main process; checkpoints and weights by :mod:`nabra.run.checkpoint`)."""

    def __init__(self, path: str | Path, cfg: RunConfig, is_main: bool):
        super().__init__(path)
        self._config = cfg
        self.is_main = is_main
        if is_main:
            self.path.mkdir(parents=True, exist_ok=True)
            self._check_config(cfg)

    def _check_config(self, cfg: RunConfig) -> None:
        saved = self.config_file
        if saved.is_file() and checkpoints(self.path):
            old = yaml.safe_load(saved.read_text(encoding="utf-8"))
            diffs = [k for k in _diff_keys(old, to_dict(cfg)) if k not in RESUMABLE_CHANGES]
            if diffs:
                raise NabraError(f"{self.path} holds a run with another config ({', '.join(diffs)} differ): "
                                 "resume it with the same config, or choose another output_dir")
        saved.write_text(dump_config(cfg), encoding="utf-8")

    def write_train_data(self, examples) -> None:
        """``train-data.json``: the training examples per task and per label of each label task — the
        shape the report reads to name a run's rare labels (written at every set-up: the same data)."""
        if not self.is_main:
            return
        tasks: dict[str, int] = {}
        labels: dict[str, dict[str, int]] = {}
        for ex in examples:
            tasks[ex.task] = tasks.get(ex.task, 0) + 1
            if ex.label is not None:
                counts = labels.setdefault(ex.task, {})
                counts[ex.label] = counts.get(ex.label, 0) + 1
        labels = {t: dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))) for t, c in labels.items()}
        write_text(self.train_data_file, json.dumps({"examples": tasks, "labels": labels}, indent=1,
                                                    ensure_ascii=False) + "\n")

    def truncate(self, step: int) -> list[str]:
        """Drop the metric and quarantine lines past ``step`` (0: a start without a checkpoint), which
        are written again from there, so the logs hold each step once; lines torn by a kill (always
        past the checkpoint: it is written after them) go too. Returns what was dropped, to be said."""
        said = []
        for path in (self.metrics, self.quarantine):
            if not (self.is_main and path.is_file()):
                continue
            records, torn = read_records(path)
            kept = [r for r in records if not isinstance(r.get("step"), int) or r["step"] <= step]
            if len(kept) == len(records) and not torn:
                continue
            write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))
            said.append(f"{path.name}: {len(records) - len(kept):,} line(s) past step {step} dropped"
                        + (f", {len(torn)} torn line(s) ({', '.join(map(str, torn[:5]))}) dropped" if torn else ""))
        return said

    def log(self, record: dict, path: Path | None = None) -> None:
        """Append one record to ``metrics.jsonl`` (or to ``path``)."""
        if self.is_main:
            path = path or self.metrics
            line = json.dumps(record, ensure_ascii=False) + "\n"
            try:
                with open_append(path) as f:
                    f.write(line)
            except OSError as e:
                full = disk_full(e, path, len(line))
                if full is None:
                    raise
                raise full from None


def _diff_keys(a, b, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(set(a) | set(b))
        return [k for key in keys for k in _diff_keys(a.get(key), b.get(key), f"{prefix}{key}.")]
    return [] if a == b else [prefix.rstrip(".")]


def drop_entries(failures, skipped, where: dict[str, str], step: int, split: str) -> list[dict]:
    """Quarantine lines for examples left out of a batch: ``failures`` ``(example, reason)`` whose audio
    failed to decode (with the manifest line from ``where``), ``skipped`` ``(example id, reason)`` the
    collator left out."""
    entries = [{"kind": "audio", "split": split, "id": ex.id, "where": where.get(ex.utt_id), "step": step,
                "reason": reason} for ex, reason in failures]
    return entries + [{"kind": "collate", "split": split, "id": eid, "step": step, "reason": reason}
                      for eid, reason in skipped]


class Diagnostics:
    """Sliding-window variance of per-task losses and of the gradient norm (ADS's "volatility")."""

    def __init__(self, window: int):
        self.window = window
        self.losses: dict[str, deque] = {}
        self.grad_norms: deque = deque(maxlen=window)

    def update(self, task_loss: dict[str, float], grad_norm: float) -> dict:
        """Add one step; returns ``loss_var`` (per task) and ``grad_norm_var`` over the window."""
        for task, value in task_loss.items():
            self.losses.setdefault(task, deque(maxlen=self.window)).append(value)
        self.grad_norms.append(grad_norm)
        var = {t: float(np.var(v)) for t, v in self.losses.items() if len(v) > 1}
        return {"loss_var": var, "grad_norm_var": float(np.var(self.grad_norms)) if len(self.grad_norms) > 1 else 0.0}

    def state_dict(self) -> dict:
        """The window's contents (plain lists: checkpointed with the run, so a resume continues the curves)."""
        return {"losses": {t: list(v) for t, v in self.losses.items()}, "grad_norms": list(self.grad_norms)}

    def load_state_dict(self, state: dict) -> None:
        self.losses = {t: deque(v, maxlen=self.window) for t, v in state.get("losses", {}).items()}
        self.grad_norms = deque(state.get("grad_norms", []), maxlen=self.window)


class TensorBoard:
    """The step records as TensorBoard scalars in ``<run>/tb`` (when asked for, on the main process)."""

    SCALARS = ("loss", "lr", "grad_norm", "grad_norm_var", "examples_per_s")

    def __init__(self, run_dir: Path, enabled: bool, purge_step: int | None = None):
        """``purge_step``: the first step of a resumed run; events logged before from there on are
        dropped, so a resumed run shows each step once."""
        self.writer = None
        if not enabled:
            return
        try:  # optional: tensorboard is not a dependency of nabra
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise NabraError("train.tensorboard needs the tensorboard package: pip install tensorboard") from None
        self.writer = SummaryWriter(str(run_dir / "tb"), purge_step=purge_step)

    def log(self, record: dict) -> None:
        if self.writer is None:
            return
        step = record["step"]
        for key in self.SCALARS:
            self.writer.add_scalar(f"train/{key}", record[key], step)
        for task, value in record["task_loss"].items():
            self.writer.add_scalar(f"task_loss/{task}", value, step)


@contextmanager
def training_progress(total: int, start: int, enabled: bool):
    """The training bar (loss and schedule stage beside it); yields ``advance(record)``."""
    with progress_bar("train", total, enabled=enabled, completed=start, unit="steps") as advance:
        yield lambda r: advance(1, f"loss {r['loss']:.3f} | {r['stage']}")
