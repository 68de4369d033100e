"""A run folder: its paths and typed, cached readers — the one place that knows its layout.

    RUN/config.yaml          the resolved config (RunConfig)
    RUN/metrics.jsonl        one record a line: steps, dev losses and evaluations, schedule events
    RUN/quarantine.jsonl     invalid manifest lines and examples left out during the run
    RUN/train-data.json      training examples per task and per label (the report names rare labels by it)
    RUN/checkpoints/step-N/  resumable state (``nabra.run.checkpoint``)
    RUN/best/, RUN/final/    trained weights (PEFT adapter or thinker) and nabra_run.json
    RUN/eval-SPLIT/          predictions.jsonl and metrics.json of ``nabra evaluate``
    RUN/embeddings/          ADS aligner embeddings

Evaluation, the report, the claims, export, analyze, serve and the demo read runs only through
:class:`RunFolder`; training writes one through :class:`nabra.run.log.RunDir`, its subclass. One rule
picks the weights (``best/`` when complete, else ``final/``; a weights folder is complete when its
``nabra_run.json`` is there: it is written last, in an atomic folder), and a damaged file is one error
that names it.
"""

from __future__ import annotations

import os
from pathlib import Path

from nabra.config import RunConfig, load_config, read_yaml
from nabra.errors import NabraError
from nabra.files import read_json, read_records

BASELINES = ("untrained", "base")
"""Schedule names of baseline folders: a folder whose ``config.yaml`` names one of these as its schedule
holds the evaluation of a model before fine-tuning — ``base``, the pretrained model a run fine-tunes
(``nabra demo`` writes ``runs/base`` for its ASR-pretrained base), or ``untrained``, a model that never
trained. The report compares with them, never ranks them."""
WEIGHTS = ("best", "final")
"""The trained-weights folders of a run, in the order a reader takes them."""
RUN_INFO = "nabra_run.json"


class RunFolder:
    """The run folder at ``path`` (its files need not exist yet: :meth:`open` checks it is a run)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._config: RunConfig | None = None
        self.baseline: str | None = None
        """The baseline this folder evaluates (:data:`BASELINES`), read with :meth:`config`; ``None`` for a run."""

    @classmethod
    def find(cls, path: str | os.PathLike) -> RunFolder | None:
        """The run folder ``path`` is, or lies in (``run/final``, ``run/best``); ``None`` otherwise."""
        path = Path(path)
        if (path / "config.yaml").is_file():
            return cls(path)
        if path.name in WEIGHTS and (path.parent / "config.yaml").is_file():
            return cls(path.parent)
        return None

    @classmethod
    def open(cls, path: str | os.PathLike) -> RunFolder:
        """The run folder at ``path``; a folder without ``config.yaml`` is an error."""
        path = Path(path)
        if not (path / "config.yaml").is_file():
            raise NabraError(f"{path}: no config.yaml: not a Nabra run folder")
        return cls(path)

    # -- paths ----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.path.name

    @property
    def train_data_file(self) -> Path:
        """``train-data.json``: training examples per task and per label (written at set-up)."""
        return self.path / "train-data.json"

    def train_data(self) -> dict | None:
        """The run's training data shape (``{"examples": {task: n}, "labels": {task: {label: n}}}``), or
        ``None`` for a run written before Nabra recorded it."""
        return read_json(self.train_data_file) if self.train_data_file.is_file() else None

    @property
    def config_file(self) -> Path:
        return self.path / "config.yaml"

    @property
    def metrics(self) -> Path:
        """``metrics.jsonl``."""
        return self.path / "metrics.jsonl"

    @property
    def quarantine(self) -> Path:
        """``quarantine.jsonl``: invalid manifest lines, and examples left out during the run."""
        return self.path / "quarantine.jsonl"

    def eval_dir(self, split: str) -> Path:
        """Where ``nabra evaluate`` writes the ``split``'s predictions and metrics."""
        return self.path / f"eval-{split}"

    # -- readers --------------------------------------------------------------------------
    def config(self) -> RunConfig:
        """The run's config (read once), an error naming ``config.yaml`` when it cannot be read."""
        if self._config is None:
            try:
                raw = read_yaml(self.config_file)
                section = raw.get("schedule") if isinstance(raw, dict) else None
                name = section.get("name") if isinstance(section, dict) else None
                self.baseline = name if name in BASELINES else None
                self._config = load_config(self.config_file, ["schedule.name=uniform"] if self.baseline else [])
            except NabraError as e:
                text = str(e)
                raise NabraError(text if text.startswith(str(self.config_file)) else f"{self.config_file}: {text}") from None
        return self._config

    @property
    def schedule(self) -> str:
        """The run's schedule (a baseline folder: the baseline's name)."""
        cfg = self.config()
        return self.baseline or cfg.schedule.name

    @property
    def seed(self) -> int:
        return self.config().train.seed

    def has_weights(self, which: str) -> bool:
        """Whether ``which`` (``best``/``final``) holds complete weights."""
        return (self.path / which / RUN_INFO).is_file()

    def weights(self, which: str | None = None) -> Path:
        """The weights folder: ``which`` (``best``/``final``), or ``best/`` when complete, else ``final/``."""
        if which not in (None, *WEIGHTS):
            raise NabraError(f"weights must be best or final, got {which!r}")
        for name in [which] if which else WEIGHTS:
            if self.has_weights(name):
                return self.path / name
        what = f"{which}/" if which else "final/ or best/"
        raise NabraError(f"{self.path}: run folder without {what} (a complete one holds {RUN_INFO}): "
                         "has its training finished?")

    def info(self, which: str | None = None) -> dict:
        """``nabra_run.json`` of the weights :meth:`weights` picks (step, base model, composite...)."""
        return read_json(self.weights(which) / RUN_INFO)

    def base_model(self, which: str | None = None) -> str:
        """The base the weights were trained from: as recorded with them, else the config's ``model.path``."""
        return self.info(which).get("base_model") or self.config().model.path

    def records(self) -> tuple[list[dict], int]:
        """``metrics.jsonl``'s records and the number of unreadable (torn) lines skipped; none without the file."""
        if not self.metrics.is_file():
            return [], 0
        records, torn = read_records(self.metrics)
        return records, len(torn)

    def final_metrics(self, split: str = "test") -> dict | None:
        """``eval-SPLIT/metrics.json``, or ``None`` when the split was not evaluated."""
        path = self.eval_dir(split) / "metrics.json"
        return read_json(path) if path.is_file() else None


EXPORTED_CONFIG = "nabra_config.yaml"
"""The run's ``config.yaml``, copied into every ``nabra export`` folder: an export moved to another machine
still knows its tasks, label sets, prompts and collation."""


def config_of(path: str | os.PathLike) -> RunConfig:
    """The config of the run ``path`` is (in), or of the run an export folder came from (its
    :data:`EXPORTED_CONFIG`), else the defaults (a bare checkpoint or adapter folder)."""
    run = RunFolder.find(path)
    if run:
        return run.config()
    exported = Path(path) / EXPORTED_CONFIG
    if exported.is_file():
        raw = read_yaml(exported)
        section = raw.get("schedule") if isinstance(raw, dict) else None
        baseline = isinstance(section, dict) and section.get("name") in BASELINES
        return load_config(exported, ["schedule.name=uniform"] if baseline else [])
    return RunConfig()
