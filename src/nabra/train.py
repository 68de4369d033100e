"""The training recipe: setup -> train -> save, with exact resume.

One readable file wiring the library: validate the data, build the examples and their metadata
table, load the thinker (LoRA or full), build the schedule, then run the loop with accelerate, so
that ``accelerate launch`` runs the same file on several GPUs (DDP, FSDP, DeepSpeed).

Every process derives the same global batch from the schedule's seed and takes its shard: no data
is communicated. The loss of a step is the mean token loss over the whole global batch (or, with
``train.loss_reduction: example``, the mean over its examples of each one's mean token loss), whatever
the number of processes and accumulation steps, so a 2-process run matches a 1-process run.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from collections import deque
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from nabra.config import RunConfig, dump_config
from nabra.corpus.labels import DIALECTS, EMOTIONS
from nabra.corpus.manifest import Utterance, iter_lines, parse_line, resolve_audio
from nabra.corpus.validate import ValidationConfig, validate_manifest
from nabra.errors import NabraError
from nabra.model.collate import Collator, audio_token_count
from nabra.model.loader import AudioStore
from nabra.model.loss import AnswerLoss
from nabra.model.tokens import answer_text, prompt_text
from nabra.tasks import Example, make_example

CHECKPOINT_PREFIX = "step-"
# Keys a resumed run may change; anything else means a different run.
RESUMABLE_CHANGES = {"train.max_steps", "train.epochs", "train.save_every", "train.keep_last", "train.eval_every",
                     "train.log_every", "train.tensorboard"}


# ============================================================================================
# setup
# ============================================================================================

@dataclass
class Data:
    """Everything the loop needs to know about the data."""

    train: list[Example]
    dev: list[Example]
    table: object  # nabra.schedule.ExampleTable
    store: AudioStore
    answer_tokens: list[int] = field(default_factory=list)
    """Answer tokens (labels) of every training example: the loss denominator of a global batch."""
    dialect_of: dict[str, str] = field(default_factory=dict)
    """Dialect of each dev utterance (the per-dialect WER breakdown)."""
    lengths: np.ndarray | None = None
    """Estimated sequence length (tokens) of every training example, for length-grouped micro-batches."""


def label_sets(cfg: RunConfig):
    d = DIALECTS.with_names(cfg.data.dialects) if cfg.data.dialects else DIALECTS
    e = EMOTIONS.with_names(cfg.data.emotions) if cfg.data.emotions else EMOTIONS
    return d, e


def read_valid(manifest: str, cfg: RunConfig, run_dir: Path | None, log) -> list[Utterance]:
    """The manifest's utterances after validation: invalid lines stop the run, or with
    ``data.skip_invalid`` go to ``quarantine.jsonl`` with their reasons."""
    dialects, emotions = label_sets(cfg)
    problems = list(validate_manifest(manifest, ValidationConfig(dialects=dialects, emotions=emotions)))
    bad_lines = {p.line for p in problems}
    if problems and not cfg.data.skip_invalid:
        shown = "\n".join(p.format(manifest) for p in problems[:20])
        more = f"\n... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise NabraError(f"{manifest}: {len(bad_lines)} invalid line(s):\n{shown}{more}\n"
                         "fix them, or pass --skip-invalid to quarantine them")
    if problems and run_dir is not None:
        reasons: dict[int, list[str]] = {}
        for p in problems:
            reasons.setdefault(p.line, []).append(p.reason)
        with open(run_dir / "quarantine.jsonl", "a", encoding="utf-8") as f:
            for lineno, line in iter_lines(manifest):
                if lineno in reasons:
                    f.write(json.dumps({"manifest": str(manifest), "line": lineno, "reasons": reasons[lineno],
                                        "text": line.rstrip("\n")}, ensure_ascii=False) + "\n")
        log(f"quarantined {len(bad_lines):,} invalid line(s) of {manifest} -> {run_dir / 'quarantine.jsonl'}")
    root = Path(manifest).resolve().parent
    return [resolve_audio(parse_line(line), root) for n, line in iter_lines(manifest) if n not in bad_lines]


def build_examples(utts: list[Utterance], cfg: RunConfig, split: str) -> list[Example]:
    dialects, emotions = label_sets(cfg)
    return [make_example(u, task, seed=cfg.train.seed, language=cfg.data.language, dialects=dialects, emotions=emotions)
            for u in utts if u.split == split for task in u.tasks() if task in cfg.data.tasks]


def dev_subset(examples: list[Example], per_task: int) -> list[Example]:
    """The first ``per_task`` dev examples of each task (fixed, so dev losses compare across steps)."""
    out, seen = [], {}
    for ex in examples:
        if seen.get(ex.task, 0) < per_task:
            out.append(ex)
            seen[ex.task] = seen.get(ex.task, 0) + 1
    return out


def drop_overlong(examples: list[Example], tokenizer, cfg: RunConfig, log) -> tuple[list[Example], list[int], list[int]]:
    """Leave out examples whose prompt + audio placeholders + answer exceed ``max_length`` before
    step 1 (audio length from the manifest's durations), reporting each. Returns the kept examples,
    their answer lengths and their estimated total lengths (tokens)."""
    if not examples:
        return [], [], []
    system = cfg.collate.system_prompt
    prompts = tokenizer([prompt_text(system, ex.instruction, []) for ex in examples], add_special_tokens=False)["input_ids"]
    answers = tokenizer([answer_text(ex.target) for ex in examples], add_special_tokens=False)["input_ids"]
    keep, lengths, totals = [], [], []
    for ex, p, a in zip(examples, prompts, answers, strict=True):
        n = len(p) + len(a) + _audio_tokens(ex, cfg)
        if n > cfg.collate.max_length:
            if cfg.collate.overlong == "error":
                raise NabraError(f"example {ex.id}: about {n} tokens > max_length {cfg.collate.max_length}")
            log(f"skipping {ex.id}: about {n} tokens > collate.max_length {cfg.collate.max_length}")
            continue
        keep.append(ex)
        lengths.append(len(a))
        totals.append(n)
    return keep, lengths, totals


def _audio_tokens(ex: Example, cfg: RunConfig) -> int:
    if not ex.audio or not ex.duration:
        return 0
    segments = max(1, math.ceil(ex.duration / cfg.collate.max_segment_seconds))
    frames = math.ceil(ex.duration * 16000 / 160)
    return int(audio_token_count(frames)) + 2 * segments


def setup_data(cfg: RunConfig, tokenizer, run_dir: Path, log) -> Data:
    from nabra.schedule import ExampleTable

    utts = read_valid(cfg.data.manifest, cfg, run_dir, log)
    dev_utts = read_valid(cfg.data.dev_manifest, cfg, run_dir, log) if cfg.data.dev_manifest else utts
    train, answer_tokens, lengths = drop_overlong(build_examples(utts, cfg, "train"), tokenizer, cfg, log)
    if not train:
        raise NabraError(f"{cfg.data.manifest}: no training examples (split 'train', tasks {', '.join(cfg.data.tasks)})")
    dev = dev_subset(drop_overlong(build_examples(dev_utts, cfg, "dev"), tokenizer, cfg, log)[0], cfg.data.dev_per_task)
    dev.sort(key=lambda ex: ex.duration or 0.0)  # similar lengths batched together: less padding
    counts = {t: sum(ex.task == t for ex in train) for t in cfg.data.tasks}
    log("training examples: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()) + f"; dev examples: {len(dev):,}")
    store = AudioStore(cfg.data.audio_cache_mb, cfg.data.load_workers)
    dialects, emotions = label_sets(cfg)
    table = ExampleTable.from_examples(train, labels={"did": dialects, "ser": emotions})
    dialect_of = {u.id: u.dialect for u in dev_utts if u.dialect}
    return Data(train, dev, table, store, answer_tokens, dialect_of, np.asarray(lengths))


def setup_model(cfg: RunConfig, log):
    """The bundle (thinker, tokenizer, feature extractor) and the model to train."""
    from nabra.model import load
    from nabra.model.lora import apply_lora
    from nabra.model.tiny import init_tiny

    path = Path(cfg.model.path)
    if cfg.model.init_tiny and not (path / "config.json").is_file():
        log(f"building a tiny thinker at {path}")
        init_tiny(path, cfg.data.manifest)
    bundle = load(path, dtype=cfg.model.dtype)
    torch.manual_seed(cfg.train.seed)  # LoRA's initialisation
    if cfg.model.finetune == "lora":
        model = apply_lora(bundle.model, cfg.model.lora)
    else:
        model = bundle.model
        # Never used by audio/text tasks: frozen, so every trainable weight gets a gradient (DDP needs it).
        for module in (model.model.visual, model.model.audio_tower.audio_bos_eos_token):
            module.requires_grad_(False)
    if cfg.model.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        if hasattr(model, "enable_input_require_grads"):
            model.enable_input_require_grads()
    model.train()
    return bundle, model


def build_optimizer(model, cfg: RunConfig, total_steps: int):
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    warmup, floor = cfg.train.warmup_steps, cfg.train.min_lr_ratio

    def factor(step: int) -> float:  # linear warm-up, then cosine down to min_lr_ratio
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def build_run_schedule(cfg: RunConfig, data: Data, total_steps: int, min_audio: int):
    """The configured schedule; ``min_audio`` audio examples per batch (one per micro-batch)."""
    from nabra.schedule import build_schedule

    return build_schedule(cfg.schedule.name, data.table, batch_size=cfg.train.batch_size, seed=cfg.train.seed,
                          total_steps=total_steps, min_audio=min_audio, config=getattr(cfg.schedule, cfg.schedule.name))


# ============================================================================================
# checkpoints: atomic, torn ones never picked
# ============================================================================================

def checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first (a folder is complete once it holds ``COMPLETE``)."""
    folder = run_dir / "checkpoints"
    found = [p for p in folder.glob(f"{CHECKPOINT_PREFIX}*") if (p / "COMPLETE").is_file()] if folder.is_dir() else []
    return sorted(found, key=lambda p: int(p.name[len(CHECKPOINT_PREFIX):]))


def _rng_state() -> dict:
    np_state = np.random.get_state()
    return {"python": list(random.getstate()[1]), "python_pos": random.getstate()[2],
            "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)), "numpy_pos": int(np_state[2]),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def _set_rng_state(state: dict) -> None:
    random.setstate((3, tuple(state["python"]), state["python_pos"]))
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _trainable_state(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}


def save_checkpoint(run_dir: Path, step: int, acc, model, optimizer, lr_scheduler, schedule, keep_last: int,
                    extra: dict | None = None) -> Path:
    """Write ``checkpoints/step-N`` atomically: a temporary folder, renamed once complete."""
    from safetensors.torch import save_file

    final = run_dir / "checkpoints" / f"{CHECKPOINT_PREFIX}{step:07d}"
    tmp = final.with_name(f".tmp-{final.name}")
    if acc.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    acc.wait_for_everyone()
    if acc.distributed_type.value in ("FSDP", "DEEPSPEED"):
        acc.save_state(str(tmp / "accelerate"))  # sharded model/optimizer states
    elif acc.is_main_process:
        save_file(_trainable_state(acc.unwrap_model(model)), str(tmp / "trainable.safetensors"))
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    if acc.is_main_process:
        torch.save({"lr_scheduler": lr_scheduler.state_dict(), "schedule": schedule.state_dict(), "step": step,
                    **(extra or {})}, tmp / "trainer_state.pt")
    torch.save(_rng_state(), tmp / f"rng-{acc.process_index}.pt")
    acc.wait_for_everyone()
    if acc.is_main_process:
        (tmp / "COMPLETE").write_text(f"{step}\n")
        _fsync_dir(tmp)
        shutil.rmtree(final, ignore_errors=True)  # a torn leftover of an earlier, killed attempt
        os.replace(tmp, final)
        for old in checkpoints(run_dir)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    acc.wait_for_everyone()
    return final


def _fsync_dir(folder: Path) -> None:
    for path in folder.iterdir():
        with open(path, "rb") as f:
            os.fsync(f.fileno())


def load_checkpoint(ckpt: Path, acc, model, optimizer, lr_scheduler, schedule) -> int:
    """Restore everything saved by :func:`save_checkpoint`; returns its step."""
    from safetensors.torch import load_file

    if (ckpt / "accelerate").is_dir():
        acc.load_state(str(ckpt / "accelerate"))
    else:
        weights = load_file(str(ckpt / "trainable.safetensors"))
        missing = acc.unwrap_model(model).load_state_dict(weights, strict=False).unexpected_keys
        if missing:
            raise NabraError(f"{ckpt}: weights do not fit the model ({missing[:3]} ...)")
        optimizer.load_state_dict(torch.load(ckpt / "optimizer.pt", map_location="cpu", weights_only=True))
    state = torch.load(ckpt / "trainer_state.pt", map_location="cpu", weights_only=True)
    lr_scheduler.load_state_dict(state["lr_scheduler"])
    schedule.load_state_dict(state["schedule"])
    rng_file = ckpt / f"rng-{acc.process_index}.pt"
    if rng_file.is_file():
        _set_rng_state(torch.load(rng_file, weights_only=True))
    return int(state["step"])


# ============================================================================================
# the run folder
# ============================================================================================

class RunDir:
    """``config.yaml``, ``metrics.jsonl``, ``checkpoints/``, ``final/`` of one run."""

    def __init__(self, path: str | Path, cfg: RunConfig, is_main: bool):
        self.path = Path(path)
        self.is_main = is_main
        self.metrics = self.path / "metrics.jsonl"
        if is_main:
            self.path.mkdir(parents=True, exist_ok=True)
            self._check_config(cfg)

    def _check_config(self, cfg: RunConfig) -> None:
        import yaml

        from nabra.config import to_dict

        saved = self.path / "config.yaml"
        new = to_dict(cfg)
        if saved.is_file() and checkpoints(self.path):
            old = yaml.safe_load(saved.read_text(encoding="utf-8"))
            diffs = [k for k in _diff_keys(old, new) if k not in RESUMABLE_CHANGES]
            if diffs:
                raise NabraError(f"{self.path} holds a run with another config ({', '.join(diffs)} differ): "
                                 "resume it with the same config, or choose another output_dir")
        saved.write_text(dump_config(cfg), encoding="utf-8")

    def truncate_metrics(self, step: int) -> None:
        """Drop metric lines past ``step`` (they are recomputed after a resume)."""
        if not (self.is_main and self.metrics.is_file()):
            return
        lines = self.metrics.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [line for line in lines if line.strip() and json.loads(line).get("step", 0) <= step]
        self.metrics.write_text("".join(kept), encoding="utf-8")

    def log(self, record: dict) -> None:
        if self.is_main:
            with open(self.metrics, "a", encoding="utf-8") as f:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")


def _diff_keys(a, b, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(set(a) | set(b))
        return [k for key in keys for k in _diff_keys(a.get(key), b.get(key), f"{prefix}{key}.")]
    return [] if a == b else [prefix.rstrip(".")]


# ============================================================================================
# the loop
# ============================================================================================

class Diagnostics:
    """Sliding-window variance of per-task losses and of the gradient norm (ADS's "volatility")."""

    def __init__(self, window: int):
        self.window = window
        self.losses: dict[str, deque] = {}
        self.grad_norms: deque = deque(maxlen=window)

    def update(self, task_loss: dict[str, float], grad_norm: float) -> dict:
        for task, value in task_loss.items():
            self.losses.setdefault(task, deque(maxlen=self.window)).append(value)
        self.grad_norms.append(grad_norm)
        var = {t: float(np.var(v)) for t, v in self.losses.items() if len(v) > 1}
        return {"loss_var": var, "grad_norm_var": float(np.var(self.grad_norms)) if len(self.grad_norms) > 1 else 0.0}


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


def _to_device(batch: dict, device) -> dict:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def _task_sums(tasks: list[str], losses: torch.Tensor, counts: torch.Tensor, order: list[str], device) -> torch.Tensor:
    """[2, n_tasks]: summed loss and label tokens per task."""
    out = torch.zeros(2, len(order), dtype=torch.float64, device=device)
    for task, loss, n in zip(tasks, losses.detach(), counts, strict=True):
        out[0, order.index(task)] += loss.double()
        out[1, order.index(task)] += n.double()
    return out


@dataclass
class Loop:
    """The objects of a run, so the loop's helpers read as sentences."""

    cfg: RunConfig
    acc: object
    run: RunDir
    data: Data
    bundle: object
    model: object
    optimizer: object
    lr_scheduler: object
    schedule: object
    collator: Collator
    total_steps: int
    micro_batches: int
    tasks: list[str]
    diagnostics: Diagnostics
    embedding_key: str | None = None
    best: float = float("-inf")
    """Best composite dev score so far (its model is in ``best/``)."""
    tb: object = None

    @property
    def trained(self):
        """The model being trained (PEFT or plain thinker), without DDP/loss wrappers."""
        return self.acc.unwrap_model(self.model).model

    def train_step(self) -> dict:
        """One optimizer step over one global batch; returns its metrics."""
        t0 = time.perf_counter()
        global_batch = self.schedule.next_batch()
        from nabra.schedule import shard

        world = self.acc.num_processes
        shards = shard(group_by_length(global_batch, self.data.lengths, world, self.micro_batches), self.data.table, self.acc.process_index, self.acc.num_processes, self.micro_batches)
        per_example = self.cfg.train.loss_reduction == "example"
        denominator = len(global_batch) if per_example else sum(self.data.answer_tokens[i] for i in global_batch)
        sums = torch.zeros(2, len(self.tasks), dtype=torch.float64, device=self.acc.device)
        for j, indices in enumerate(shards):
            examples = [self.data.train[i] for i in indices]
            batch = _to_device(self.collator(self.data.store.samples(examples)), self.acc.device)
            sync = j == len(shards) - 1
            with (nullcontext() if sync else self.acc.no_sync(self.model)), self.acc.autocast():
                losses, counts = self.model(batch)
                # Sum over the micro-batch / tokens (or examples) of the whole global batch; DDP averages
                # over processes, hence the factor: the step's gradient is that of the global mean loss.
                summed = (losses / counts.clamp(min=1)).sum() if per_example else losses.sum()
                self.acc.backward(summed / denominator * self.acc.num_processes)
            sums += _task_sums(batch["tasks"], losses, counts, self.tasks, self.acc.device)
        grad_norm = self._clip()
        self.optimizer.step()
        self.lr_scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        sums = self.acc.reduce(sums, reduction="sum")
        return self._record(sums, grad_norm, len(global_batch), time.perf_counter() - t0)

    def _clip(self) -> float:
        params = [p for p in self.model.parameters() if p.requires_grad]
        max_norm = self.cfg.train.max_grad_norm if self.cfg.train.max_grad_norm > 0 else float("inf")
        return float(self.acc.clip_grad_norm_(params, max_norm))

    def _record(self, sums: torch.Tensor, grad_norm: float, n_examples: int, seconds: float) -> dict:
        task_loss = {t: float(sums[0, i] / sums[1, i]) for i, t in enumerate(self.tasks) if sums[1, i] > 0}
        record = {"step": self.schedule_step(), "loss": float(sums[0].sum() / sums[1].sum().clamp(min=1)),
                  "task_loss": task_loss, "lr": self.lr_scheduler.get_last_lr()[0], "grad_norm": grad_norm,
                  "stage": self.schedule.stage(), "examples_per_s": n_examples / seconds}
        record.update(self.diagnostics.update(task_loss, grad_norm))
        return record

    def schedule_step(self) -> int:
        return int(self.lr_scheduler.last_epoch)

    @torch.no_grad()
    def dev_losses(self) -> dict[str, float]:
        """Mean token loss per task on the fixed dev subset."""
        if not self.data.dev:
            return {}
        self.model.eval()
        size = self.cfg.train.micro_batch_size or self.cfg.train.batch_size
        sums = torch.zeros(2, len(self.tasks), dtype=torch.float64, device=self.acc.device)
        for i in range(0, len(self.data.dev), size):
            examples = self.data.dev[i : i + size]
            batch = _to_device(self.collator(self.data.store.samples(examples)), self.acc.device)
            with self.acc.autocast():
                losses, counts = self.model(batch)
            sums += _task_sums(batch["tasks"], losses, counts, self.tasks, self.acc.device)
        self.model.train()
        return {t: float(sums[0, i] / sums[1, i]) for i, t in enumerate(self.tasks) if sums[1, i] > 0}


# ============================================================================================
# ADS: aligner embeddings from the current model
# ============================================================================================

def set_embeddings(loop: Loop, key: str | None = None) -> None:
    """Give the schedule per-example aligner embeddings: read under ``key`` (a resume: the clusters
    come from the checkpoint), or computed from the current weights (cached in the run folder under
    the weights' fingerprint)."""
    from nabra.model.embeddings import EmbeddingTable, compute_embeddings, embedding_key

    cache = loop.run.path / "embeddings"
    resuming = key is not None
    if key is None:
        model = loop.trained
        key = embedding_key(model, loop.bundle.path, loop.cfg.data.manifest)
        model.eval()
        if loop.acc.is_main_process:
            compute_embeddings(loop.bundle, loop.cfg.data.manifest, cache, model=model, key=key, progress=False)
        loop.acc.wait_for_everyone()
        model.train()
    path = cache / key / "embeddings.npz"
    if not path.is_file():
        raise NabraError(f"{path}: the aligner embeddings this run was using are gone; cannot resume exactly")
    table = EmbeddingTable.read(path)
    vectors = np.stack([table.for_example(ex.utt_id, ex.task) for ex in loop.data.train])
    loop.schedule.set_embeddings(vectors, recluster=not resuming)
    loop.embedding_key = key


# ============================================================================================
# train
# ============================================================================================

def _total_steps(cfg: RunConfig, n_examples: int) -> int:
    if cfg.train.epochs:
        return max(1, math.ceil(cfg.train.epochs * n_examples / cfg.train.batch_size))
    return cfg.train.max_steps


def _micro_batches(cfg: RunConfig, acc) -> int:
    world = acc.num_processes
    per_process, rest = divmod(cfg.train.batch_size, world)
    micro = cfg.train.micro_batch_size or per_process
    if rest or micro <= 0 or per_process % micro:
        raise NabraError(f"train.batch_size {cfg.train.batch_size} must be a multiple of processes ({world}) x "
                         f"train.micro_batch_size ({cfg.train.micro_batch_size})")
    if per_process // micro > 1 and acc.distributed_type.value == "DEEPSPEED":
        raise NabraError("with DeepSpeed, set train.micro_batch_size = batch_size / processes (DeepSpeed "
                         "accumulates itself: put gradient_accumulation_steps in its config instead)")
    return per_process // micro


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup(cfg: RunConfig, log) -> Loop:
    """Everything before step 1: accelerator, run folder, data checks, model, schedule, optimizer."""
    from accelerate import Accelerator

    # cpu=True lets torchrun/accelerate launch run several CPU processes (gloo) where there is no GPU.
    acc = Accelerator(mixed_precision="bf16" if cfg.train.precision == "bf16" else "no", cpu=not torch.cuda.is_available())
    run = RunDir(cfg.output_dir, cfg, acc.is_main_process)
    say = log if acc.is_main_process else (lambda *_: None)
    _seed_everything(cfg.train.seed)
    bundle, model = setup_model(cfg, say)
    data = setup_data(cfg, bundle.tokenizer, run.path, say)
    total = _total_steps(cfg, len(data.train))
    micro = _micro_batches(cfg, acc)
    schedule = build_run_schedule(cfg, data, total, min_audio=acc.num_processes * micro)
    optimizer, lr_scheduler = build_optimizer(model, cfg, total)
    model, optimizer = acc.prepare(AnswerLoss(model), optimizer)
    tasks = [t for t in cfg.data.tasks if any(ex.task == t for ex in data.train)]
    return Loop(cfg, acc, run, data, bundle, model, optimizer, lr_scheduler, schedule,
                Collator(bundle.tokenizer, bundle.feature_extractor, cfg.collate), total, micro, tasks,
                Diagnostics(cfg.train.volatility_window))


def resume(loop: Loop, log) -> int:
    """Continue from the last complete checkpoint, if any; returns the step to start after."""
    ckpts = checkpoints(loop.run.path)
    if not ckpts:
        return 0
    step = load_checkpoint(ckpts[-1], loop.acc, loop.model, loop.optimizer, loop.lr_scheduler, loop.schedule)
    state = torch.load(ckpts[-1] / "trainer_state.pt", map_location="cpu", weights_only=True)
    loop.best = float(state.get("best", float("-inf")))
    key = state.get("embedding_key")
    if key:
        set_embeddings(loop, key=key)
    loop.run.truncate_metrics(step)
    log(f"resuming {loop.run.path} from {ckpts[-1].name} (step {step} of {loop.total_steps})")
    return step


def train(cfg: RunConfig, *, progress: bool = True, log=print) -> Path:
    """Run (or resume) the training described by ``cfg``; returns the run folder."""
    loop = setup(cfg, log)
    start = resume(loop, log)
    with _progress_bar(loop, start, progress) as advance:
        for step in range(start + 1, loop.total_steps + 1):
            if loop.schedule.needs_embeddings(loop.schedule.step):
                set_embeddings(loop)
            record = loop.train_step()
            if step % cfg.train.log_every == 0 or step == loop.total_steps:
                loop.run.log(record)
                _tensorboard(loop, record)
            if cfg.train.eval_every and step % cfg.train.eval_every == 0:
                loop.run.log({"step": step, "event": "dev", "dev_loss": loop.dev_losses()})
                if cfg.train.eval_metrics:
                    dev_evaluation(loop, step)
            if cfg.train.save_every and step % cfg.train.save_every == 0 and step < loop.total_steps:
                _save(loop, step)
            advance(record)
    save_final(loop)
    loop.data.store.close()
    return loop.run.path


def dev_evaluation(loop: Loop, step: int) -> dict:
    """Generate on the dev subset, score it (WER/CER, ROUGE, macro-F1, composite), log it, and keep
    the model as ``best/`` when the composite improves."""
    from nabra.evaluate import composite_score, compute_metrics
    from nabra.evaluate.runner import generate_predictions

    if not loop.data.dev:
        return {}
    dialects, emotions = label_sets(loop.cfg)
    preds = generate_predictions(loop.trained, loop.bundle, loop.collator, loop.data.dev, loop.data.store,
                                 batch_size=loop.cfg.train.eval_batch_size, progress=False,
                                 dialect_of=loop.data.dialect_of, dialects=dialects, emotions=emotions)
    metrics = compute_metrics(preds, dialects=dialects, emotions=emotions)
    composite = composite_score(metrics, loop.cfg.train.composite_weights or None)
    loop.run.log({"step": step, "event": "dev_eval", "metrics": _headline(metrics), "composite": composite})
    if composite == composite and composite > loop.best:  # not NaN, and better
        loop.best = composite
        save_model(loop, loop.run.path / "best", {"step": step, "composite": composite})
    return metrics


def _headline(metrics: dict) -> dict:
    """The scalar metrics of each task (the per-class tables stay in the final evaluation)."""
    return {task: {k: v for k, v in m.items() if isinstance(v, int | float)} for task, m in metrics.items()}


def _save(loop: Loop, step: int) -> None:
    extra = {"best": loop.best}
    if loop.embedding_key:
        extra["embedding_key"] = loop.embedding_key
    save_checkpoint(loop.run.path, step, loop.acc, loop.model, loop.optimizer, loop.lr_scheduler, loop.schedule,
                    loop.cfg.train.keep_last, extra)


def save_final(loop: Loop) -> Path:
    """``final/``: the PEFT adapter (LoRA) or the full thinker checkpoint, loadable by Nabra."""
    return save_model(loop, loop.run.path / "final", {"step": loop.total_steps})


def save_model(loop: Loop, out: Path, info: dict) -> Path:
    """Write the trained model to ``out`` (replacing it): adapter or full checkpoint + ``nabra_run.json``."""
    loop.acc.wait_for_everyone()
    # The state of the trained model inside the AnswerLoss wrapper (gathered under FSDP).
    state = {k.removeprefix("model."): v for k, v in loop.acc.get_state_dict(loop.model).items()}
    if loop.acc.is_main_process:
        tmp = out.with_name(f".tmp-{out.name}")
        shutil.rmtree(tmp, ignore_errors=True)
        loop.trained.save_pretrained(tmp, state_dict=state, safe_serialization=True)
        if loop.cfg.model.finetune == "full":
            loop.bundle.tokenizer.save_pretrained(tmp)
            loop.bundle.feature_extractor.save_pretrained(tmp)
        (tmp / "nabra_run.json").write_text(json.dumps({"base_model": str(loop.bundle.path), "finetune":
                                                       loop.cfg.model.finetune, **info}, indent=2))
        shutil.rmtree(out, ignore_errors=True)
        os.replace(tmp, out)
    loop.acc.wait_for_everyone()
    return out


def _tensorboard(loop: Loop, record: dict) -> None:
    if not (loop.cfg.train.tensorboard and loop.acc.is_main_process):
        return
    if loop.tb is None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise NabraError("train.tensorboard needs the tensorboard package: pip install tensorboard") from None
        loop.tb = SummaryWriter(str(loop.run.path / "tb"))
    step = record["step"]
    for key in ("loss", "lr", "grad_norm", "grad_norm_var", "examples_per_s"):
        loop.tb.add_scalar(f"train/{key}", record[key], step)
    for task, value in record["task_loss"].items():
        loop.tb.add_scalar(f"task_loss/{task}", value, step)


class _progress_bar:
    """A rich progress bar with loss, stage and ETA (main process, when asked for)."""

    def __init__(self, loop: Loop, start: int, enabled: bool):
        self.loop, self.start, self.enabled = loop, start, enabled and loop.acc.is_main_process

    def __enter__(self):
        if not self.enabled:
            return lambda record: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                            TextColumn("{task.fields[info]}"))
        self.bar.start()
        self.task = self.bar.add_task("train", total=self.loop.total_steps, completed=self.start, info="")
        return lambda r: self.bar.update(self.task, advance=1, info=f"loss {r['loss']:.3f} | {r['stage']}")

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.stop()
        return False
