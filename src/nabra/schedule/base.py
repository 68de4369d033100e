"""What every schedule shares: the ``Schedule`` interface, task mixing, the audio guarantee, sharding.

A schedule turns an :class:`~nabra.schedule.table.ExampleTable` into a sequence of **global**
batches (row indices). It is seeded and its whole state fits in ``state_dict()``, so every rank
derives the same batches from the seed without talking to the others, and a resumed run continues
the exact sequence (as lhotse's samplers do).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import ClassVar

import numpy as np

from nabra.errors import NabraError
from nabra.schedule.config import make_config
from nabra.schedule.table import ExampleTable

log = logging.getLogger(__name__)

class Schedule(ABC):
    """A seeded sequence of global batches over an :class:`ExampleTable` (metadata only, never audio).

    ``batch_size`` is the global batch (all ranks and micro-batches together); ``min_audio`` the
    audio examples each batch must hold, ``world_size * micro_batches`` under FSDP/ZeRO-3, so that
    :func:`shard` can give every micro-batch one. ``knobs`` are the fields of ``config_class``
    (or ``config=`` an instance of it).
    """

    name: ClassVar[str]
    config_class: ClassVar[type]
    uses_embeddings: ClassVar[bool] = False

    def __init__(self, table: ExampleTable, *, batch_size: int, seed: int, total_steps: int,
                 min_audio: int = 1, **knobs):
        if len(table) == 0:
            raise NabraError("no training examples to schedule")
        if batch_size < 1 or total_steps < 1:
            raise NabraError(f"batch_size and total_steps must be >= 1 (got {batch_size}, {total_steps})")
        if seed < 0:
            raise NabraError(f"seed must be >= 0 (got {seed})")
        if not 0 <= min_audio <= batch_size:
            raise NabraError(f"min_audio must lie in 0..batch_size={batch_size} (got {min_audio})")
        self.table, self.batch_size, self.seed = table, batch_size, seed
        self.total_steps, self.min_audio = total_steps, min_audio
        self.config = make_config(self.config_class, knobs)
        self.rng = np.random.Generator(np.random.PCG64(seed))
        self.step = 0
        """Batches drawn so far."""
        self.audio_tasks = check_audio(table, batch_size, min_audio)

    def next_batch(self) -> np.ndarray:
        """The next global batch: ``batch_size`` row indices (int64) into the table."""
        batch = np.asarray(self._next_batch(), dtype=np.int64)
        self.step += 1
        return batch

    def __iter__(self) -> Iterator[np.ndarray]:
        """The batches from the current step up to ``total_steps``."""
        while self.step < self.total_steps:
            yield self.next_batch()

    @abstractmethod
    def _next_batch(self) -> np.ndarray: ...

    @abstractmethod
    def stage(self, step: int | None = None) -> str:
        """What the schedule does at ``step`` (default: the next batch's), for logs."""

    @property
    def epoch(self) -> int:
        """Passes over the table so far, counted in examples drawn (``step * batch_size // len(table)``)."""
        return self.step * self.batch_size // len(self.table)

    @property
    def refresh_every(self) -> int:
        """Steps between aligner-embedding refreshes the trainer should do (0: none)."""
        return 0

    def needs_embeddings(self, step: int) -> bool:
        """Whether the trainer should call ``set_embeddings`` before drawing batch ``step``."""
        return False

    @property
    def dev_loss_setting(self) -> str | None:
        """The setting that makes this schedule read the dev losses (the trainer then needs
        ``train.eval_every`` and evaluates once before step 1 too), or ``None``: it does not."""
        return None

    def task_weights(self) -> dict[str, float] | None:
        """The current share of each task in a batch, for schedules whose mix moves with what they
        observe (logged at every change and plotted), else ``None``."""
        return None

    def observe(self, step: int, dev_loss: dict[str, float]) -> str | None:
        """Take the per-task dev losses the trainer computed after ``step`` batches (a schedule that
        adapts reads them); returns a line to log when the schedule changed course, else ``None``.
        Every process gets the same losses, so every process takes the same course."""
        return None

    def state_dict(self) -> dict:
        """Everything needed to continue the exact sequence; ``torch.load(weights_only=True)``-safe."""
        return {"schedule": self.name, "step": self.step, "batch_size": self.batch_size,
                "table": table_fingerprint(self.table), "rng": self.rng.bit_generator.state,
                **self._state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Continue from ``state`` (from :meth:`state_dict` of a schedule built the same way)."""
        if state.get("schedule") != self.name:
            raise NabraError(f"schedule state is for {state.get('schedule')!r}, not {self.name!r}")
        if list(state["table"]) != table_fingerprint(self.table):
            raise NabraError("schedule state was saved for different training data (example counts differ)")
        if int(state["batch_size"]) != self.batch_size:
            raise NabraError(f"schedule state has batch_size {state['batch_size']}, this run {self.batch_size}")
        self.step = int(state["step"])
        self.rng.bit_generator.state = state["rng"]
        self._load_state_dict(state)

    @abstractmethod
    def _state_dict(self) -> dict:
        """The concrete schedule's part of the state (queues, counters)."""

    @abstractmethod
    def _load_state_dict(self, state: dict) -> None:
        """Restore what ``_state_dict`` saved."""


def check_audio(table: ExampleTable, batch_size: int, min_audio: int) -> tuple[str, ...]:
    """The table's audio tasks; a ``NabraError`` when batches cannot hold ``min_audio`` audio examples."""
    audio = table.audio_tasks()
    if min_audio and not audio:
        raise NabraError(
            f"no task in the data has audio examples (tasks: {', '.join(table.tasks_present())}); every "
            "micro-batch needs one, or FSDP/ZeRO-3 ranks hang: add audio tasks (asr, ssum, did, ser)")
    text = [t for t in table.tasks_present() if t not in audio]
    if text and min_audio == batch_size:
        log.warning("min_audio = batch_size = %d: text-only task(s) %s never get a slot", batch_size, text)
    return audio


def table_fingerprint(table: ExampleTable) -> list[int]:
    """Row count and per-task counts: a saved state only fits the table it was drawn from."""
    return [len(table), *(len(table.task_indices(t)) for t in table.task_names)]


def task_probs(counts: dict[str, int], weights: dict[str, float], temperature: float) -> np.ndarray:
    """p(task) ∝ weight · n_task^(1/T) over ``counts``' tasks (a task missing from ``weights`` weighs 1)."""
    n = np.array(list(counts.values()), dtype=np.float64)
    w = np.array([weights.get(t, 1.0) for t in counts], dtype=np.float64)
    p = w * n ** (1.0 / temperature)
    if not p.sum() > 0:
        raise NabraError(f"task weights {weights} leave no task to sample among {', '.join(counts)}")
    return p / p.sum()


def draw_tasks(rng: np.random.Generator, probs: np.ndarray, audio: np.ndarray, batch_size: int,
               min_audio: int) -> np.ndarray:
    """Slot tasks (indices into ``probs``) drawn i.i.d., then enough text slots redrawn among audio tasks.

    The redraw follows ``probs`` restricted to audio tasks, or is equal over them when ``probs``
    gives them no mass (a mix of text-only tasks still has to feed the audio tower).
    """
    slots = rng.choice(len(probs), size=batch_size, p=probs)
    text = np.flatnonzero(~audio[slots])
    surplus = len(text) - (batch_size - min_audio)
    if surplus > 0:
        pa = np.where(audio, probs, 0.0)
        pa = pa if pa.sum() > 0 else audio.astype(np.float64)
        slots[text[len(text) - surplus:]] = rng.choice(len(probs), size=surplus, p=pa / pa.sum())
    return slots


def shard(global_batch: np.ndarray, table: ExampleTable, rank: int, world_size: int,
          micro_batches: int = 1) -> list[np.ndarray]:
    """This rank's ``micro_batches`` micro-batches of ``global_batch``, each with an audio example.

    The batch is cut into ``world_size * micro_batches`` equal consecutive pieces, rank ``r`` taking
    pieces ``r*micro_batches ..``; a piece without audio swaps a text-only example for an audio one
    of a piece that has two or more. Only ``global_batch`` decides the result: every rank computes
    the same plan and no communication is needed. Raises ``NabraError`` when the batch holds fewer
    audio examples than pieces (a text-only micro-batch hangs FSDP/ZeRO-3).
    """
    m = world_size * micro_batches
    if world_size < 1 or micro_batches < 1 or not 0 <= rank < world_size:
        raise NabraError(f"bad sharding: rank {rank}, world_size {world_size}, micro_batches {micro_batches}")
    if len(global_batch) % m:
        raise NabraError(f"global batch of {len(global_batch)} does not split into {m} equal micro-batches "
                         f"({world_size} ranks x {micro_batches} micro-batches)")
    pieces = np.array(global_batch, dtype=np.int64).reshape(m, -1)
    audio = table.has_audio[pieces]
    if audio.sum() < m:
        raise NabraError(f"global batch holds {int(audio.sum())} audio examples for {m} micro-batches; "
                         f"build the schedule with min_audio={m}")
    for j in np.flatnonzero(~audio.any(axis=1)).tolist():
        donor = int(np.argmax(audio.sum(axis=1)))  # has >= 2: total >= m and piece j has none
        a, t = int(np.flatnonzero(audio[donor])[-1]), 0  # piece j is all text: swap its first one
        pieces[j, t], pieces[donor, a] = pieces[donor, a], pieces[j, t]
        audio[j, t], audio[donor, a] = True, False
    return list(pieces[rank * micro_batches:(rank + 1) * micro_batches])


def group_by_length(batch: np.ndarray, lengths: np.ndarray, world: int, micro: int) -> np.ndarray:
    """Reorder a global batch so that each micro-batch holds examples of similar length (a 60-s clip
    pads the 2-s ones it is batched with to its length), while every process still gets a mix of
    short and long micro-batches. The step's gradient is the same sum over the same examples."""
    pieces = world * micro
    if pieces == 1:
        return batch
    groups = np.array_split(batch[np.argsort(lengths[batch], kind="stable")], pieces)
    # Piece c = (rank r, micro-batch m) gets length group r + m * world: ranks interleave the sizes.
    return np.concatenate([groups[(c // micro) + (c % micro) * world] for c in range(pieces)])


def task_groups(table: ExampleTable, tasks: tuple[str, ...]) -> np.ndarray:
    """Per row: the index of its task in ``tasks`` (``-1`` for other tasks), for :class:`GroupQueues`."""
    lut = np.full(len(table.task_names), -1, dtype=np.int64)
    for i, t in enumerate(tasks):
        lut[table.code(t)] = i
    return lut[table.task]
