"""The training recipe: setup -> train -> save, with exact resume.

One readable file wiring the library (as torchtune's recipes do): :meth:`Recipe.setup` builds the
accelerator, the run folder, the model, the data (:mod:`nabra.data`), the schedule and the
optimizer; :meth:`Recipe.train` runs the steps, with dev evaluations (:mod:`nabra.evaluate`) and
checkpoints (:mod:`nabra.run.checkpoint`); :meth:`Recipe.save` writes ``final/``. ``accelerate launch``
runs the same file on several GPUs (DDP, FSDP, DeepSpeed).

Every process derives the same global batch from the schedule's seed and takes its shard: no data
is communicated. The loss of a step is the mean token loss over the whole global batch (or, with
``train.loss_reduction: example``, the mean over its examples of each one's mean token loss), whatever
the number of processes and accumulation steps, so a 2-process run matches a 1-process run.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import gather_object

from nabra import data as run_data
from nabra.config import RunConfig
from nabra.corpus.augment import Augmenter
from nabra.errors import NabraError
from nabra.evaluate.runner import headline, score_examples
from nabra.model import load
from nabra.model.collate import Collator, to_device
from nabra.model.embeddings import (
    aligner_trains,
    compute_embeddings,
    embedding_key,
    example_vectors,
    utterances_key,
)
from nabra.model.families import AUTO, check_family, family
from nabra.model.families.qwen2_5_omni import QWEN2_5_OMNI
from nabra.model.lora import label_token_ids, trainable
from nabra.model.loss import AnswerLoss, TaskSums
from nabra.model.packed_attention import use_packed_sdpa
from nabra.model.tiny import init_tiny
from nabra.run.checkpoint import checkpoints, load_checkpoint, save_checkpoint, save_model, trainer_state
from nabra.run.log import Diagnostics, RunDir, TensorBoard, drop_entries, training_progress
from nabra.run.optim import build_optimizer, micro_batches, seed_everything, total_steps
from nabra.schedule import build_schedule, group_by_length, shard
from nabra.schedule.micro import plan_micro_batches, token_batches


def train(cfg: RunConfig, *, progress: bool = True, log=print) -> Path:
    """Run (or resume) the training described by ``cfg``; returns the run folder."""
    return setup(cfg, log).train(progress=progress)


def setup(cfg: RunConfig, log=print) -> Recipe:
    """The recipe of ``cfg`` with everything before step 1 done."""
    recipe = Recipe(cfg, log)
    try:
        recipe.setup()
    except BaseException:
        recipe.cleanup()
        raise
    return recipe


class Recipe:
    """One training run. ``step`` counts the optimizer steps done."""

    def __init__(self, cfg: RunConfig, log=print):
        self.cfg, self._log = cfg, log
        self.step = 0
        self.best = float("-inf")
        """Best composite dev score so far (its model is in ``best/``)."""
        self.embedding_key: str | None = None
        self.dropped = 0
        """Training examples left out of their batches so far (audio that failed to decode, overlong)."""
        # What setup() builds, in its order:
        self.acc: Accelerator | None = None
        self.run: RunDir | None = None
        """The run folder, written by the main process."""
        self.bundle = None
        """The loaded model bundle (thinker, tokenizer, feature extractor, family)."""
        self.collator: Collator | None = None
        self.data: run_data.Data | None = None
        self.total_steps = self.planned_steps = 0
        """Steps of this start / of the run's first start (an extension keeps its plan)."""
        self.micro_batches: int | None = None
        """Micro-batches per process and step (``None``: by token budget, planned each step)."""
        self.schedule = None
        self.model = self.optimizer = self.lr_scheduler = None
        """The loss-wrapped model and its optimizer, as accelerate prepared them."""
        self.tasks: list[str] = []
        """The run's tasks that have training examples (the per-task logs' columns)."""
        self.diagnostics: Diagnostics | None = None
        self.task_set = None
        self.filler: dict | None = None
        """The zero-weight stand-in micro-batch."""
        self.tb: TensorBoard | None = None

    def cleanup(self) -> None:
        """Release what the run holds (the audio store's decoding threads); every way out of training calls it."""
        if self.data is not None:
            self.data.store.close()

    # ========================================================================================
    # setup
    # ========================================================================================

    def setup(self) -> None:
        """Accelerator, run folder, model, data, schedule, optimizer: everything before step 1."""
        cfg = self.cfg
        # cpu=True lets torchrun/accelerate launch run several CPU processes (gloo) where there is no GPU.
        self.acc = Accelerator(mixed_precision="bf16" if cfg.train.precision == "bf16" else "no",
                               cpu=not torch.cuda.is_available())
        self.run = RunDir(cfg.output_dir, cfg, self.acc.is_main_process)
        seed_everything(cfg.train.seed)
        manifests = run_data.read_manifests(cfg, self.run.path, self.say)  # the data first: seconds, not minutes
        self.bundle, model = self._setup_model(manifests)
        self.collator = Collator.for_bundle(self.bundle, cfg.collate)
        self.data = run_data.prepare(cfg, self.collator, manifests, self.say)
        self.run.write_train_data(self.data.train)
        self.augmenter = (Augmenter.from_config(cfg.data.augment, seed=cfg.train.seed,
                                                sample_rate=self.collator.sampling_rate)
                          if cfg.data.augment.active else None)
        self.speaker_of = {u.id: u.speaker for u in self.data.utterances}
        if self.augmenter is not None:
            self.say(f"data.augment: {cfg.data.augment.describe()}; {self.augmenter.sources()} "
                     "(training clips only, seeded per example and epoch)")
        self.total_steps = total_steps(cfg, len(self.data.train))
        # The plan of the run's first start: an extended max_steps keeps the TPC stages, the tpc_ads
        # switch and the LR curve of the original plan (the LR stays at its final value past it).
        self.planned_steps = self._planned_steps()
        self.micro_batches = micro_batches(cfg, self.acc)
        self._check_budget()
        self.schedule = build_schedule(cfg.schedule.name, self.data.table, batch_size=cfg.train.batch_size,
                                       seed=cfg.train.seed, total_steps=self.planned_steps,
                                       # one per micro-batch (by token budget: one per rank at least; the plan gives the rest)
                                       min_audio=self.acc.num_processes * (self.micro_batches or 1),
                                       config=getattr(cfg.schedule, cfg.schedule.name))
        if self.schedule.dev_loss_setting and not cfg.train.eval_every:
            raise NabraError(f"{self.schedule.dev_loss_setting} reads the dev loss: set train.eval_every > 0")
        if cfg.train.warmup_steps >= self.planned_steps:
            self.say(f"warning: train.warmup_steps ({cfg.train.warmup_steps}) is not below the run's {self.planned_steps} "
                     f"planned steps: the learning rate never reaches train.lr ({cfg.train.lr:g}) nor decays, and an "
                     "extended run keeps warming up; set warmup_steps to a fraction of max_steps (10% is usual)")
        optimizer, self.lr_scheduler = build_optimizer(model, cfg, self.planned_steps)
        self.model, self.optimizer = self.acc.prepare(AnswerLoss(model), optimizer)
        self.tasks = [t for t in cfg.data.tasks if any(ex.task == t for ex in self.data.train)]
        self.diagnostics = Diagnostics(cfg.train.volatility_window)
        self.task_set = cfg.task_set()
        self.filler = self._filler_batch()

    def _check_budget(self) -> None:
        """``micro_batch_tokens`` holds the longest example the run keeps (or it would go alone, over budget)."""
        budget = self.cfg.train.micro_batch_tokens
        longest = int(self.data.lengths.max()) if len(self.data.lengths) else 0
        if budget and longest > budget:
            raise NabraError(f"train.micro_batch_tokens {budget:,} is below the longest training example, about "
                             f"{longest:,} tokens (collate.max_length {self.collator.max_length}): raise it to "
                             f"{longest:,} or more, or lower collate.max_length")

    def _planned_steps(self) -> int:
        ckpts = checkpoints(self.run.path)
        if not ckpts:
            return self.total_steps
        return int(trainer_state(ckpts[-1]).get("planned_steps", self.total_steps))

    def say(self, message: str) -> None:
        """Log a line (main process only)."""
        if self.acc.is_main_process:
            self._log(message)

    def _setup_model(self, manifests: run_data.Manifests):
        """The bundle (thinker, tokenizer, feature extractor) and the model to train (LoRA or full)."""
        cfg, path = self.cfg, Path(self.cfg.model.path)
        if cfg.model.init_tiny and not (path / "config.json").is_file():
            if self.acc.is_main_process:  # its tokenizer learns the validated training texts
                fam = family(cfg.model.family) if cfg.model.family != AUTO else QWEN2_5_OMNI
                self.say(f"building a tiny {fam.title} at {path}")
                # refuses a folder of someone else's files; replaces a tiny model a kill left without config.json
                init_tiny(path, manifests.train, family=fam, force=True)
            self.acc.wait_for_everyone()
        if cfg.model.finetune == "lora" and (path / "nabra_tiny.json").is_file():
            # init_tiny writes nabra_tiny.json; a trained run's final/ has none: these weights are random.
            self.say(f"warning: {path} is a freshly initialised tiny model (random weights): LoRA adapters over "
                     "random weights learn next to nothing — use model.finetune=full, or point model.path at a "
                     "trained model (the demo's base: demo/runs/base-pretrain/final)")
        bundle = load(path, dtype=cfg.model.dtype)
        check_family(cfg.model.family, bundle.family, str(path))
        if cfg.model.attn_implementation != "auto":
            bundle.model.set_attn_implementation(cfg.model.attn_implementation)
        if cfg.collate.packing:
            refusal = bundle.family.packing_refusal(bundle.model)
            if refusal:
                raise NabraError(f"collate.packing: {refusal}")
            if cfg.model.attn_implementation == "auto":  # SDPA per sequence: no length² mask
                use_packed_sdpa(bundle.family.parts(bundle.model)["language model"])
            elif cfg.model.attn_implementation in ("sdpa", "eager"):
                self.say(f"warning: collate.packing under {cfg.model.attn_implementation} attention builds a mask of "
                         "length² for each packed micro-batch; leave model.attn_implementation: auto (SDPA per "
                         "sequence) or set flash_attention_2 (varlen kernels)")
        torch.manual_seed(cfg.train.seed)  # LoRA's initialisation
        labels = label_token_ids(bundle.tokenizer, cfg.task_set().label_sets().values()) if cfg.model.lora.train_label_tokens else None
        return bundle, trainable(bundle.model, cfg.model.finetune, cfg.model.lora,
                                 gradient_checkpointing=cfg.model.gradient_checkpointing, label_token_ids=labels)

    @property
    def trained(self):
        """The model being trained (PEFT or plain thinker), without DDP/loss wrappers."""
        return self.acc.unwrap_model(self.model).model

    def resume(self) -> None:
        """Continue from the last complete checkpoint, if any."""
        ckpts = checkpoints(self.run.path)
        if not ckpts:
            for line in self.run.truncate(0):  # what an earlier start without a checkpoint logged
                self.say(line)
            return
        state = load_checkpoint(ckpts[-1], self.acc, self.model, self.optimizer, self.lr_scheduler, self.schedule)
        self.step, self.best = int(state["step"]), float(state.get("best", float("-inf")))
        self.diagnostics.load_state_dict(state.get("diagnostics", {}))
        if state.get("embedding_key"):
            self._set_embeddings(key=state["embedding_key"])
        self.dropped = int(state.get("dropped", 0))
        for line in self.run.truncate(self.step):
            self.say(line)
        if self.step < self.total_steps:
            extended = f"; extended from {self.planned_steps}" if self.total_steps > self.planned_steps else ""
            self.say(f"resuming {self.run.path} from {ckpts[-1].name} (step {self.step} of {self.total_steps}{extended})")

    # ========================================================================================
    # train
    # ========================================================================================

    def train(self, *, progress: bool = True) -> Path:
        """Resume if there is a checkpoint, run the remaining steps, save ``final/``; returns the run folder.
        A finished run (its last step checkpointed, ``final/`` written) is left as it is. Whatever happens,
        :meth:`cleanup` runs."""
        try:
            return self._train(progress)
        finally:
            self.cleanup()

    def _train(self, progress: bool) -> Path:
        self.resume()
        if self.step >= self.total_steps and self.run.has_weights("final"):
            self.say(f"{self.run.path} finished at step {self.step}: nothing to do (raise train.max_steps to "
                     "continue it)")
            return self.run.path
        train = self.cfg.train
        # Steps logged again after a resume replace the old ones in TensorBoard too.
        self.tb = TensorBoard(self.run.path, train.tensorboard and self.acc.is_main_process,
                              purge_step=self.step + 1)
        if self.step == 0 and train.eval_every:
            # The dev loss before step 1: every curve starts from the same point, and a schedule that
            # reads the dev loss knows where each task started.
            self._observe(0, self.dev_losses())
        with training_progress(self.total_steps, self.step, progress and self.acc.is_main_process) as advance:
            while self.step < self.total_steps:
                if self.schedule.needs_embeddings(self.schedule.step):
                    self._set_embeddings()
                record = self.train_step()
                step = self.step
                if step % train.log_every == 0 or step == self.total_steps:
                    self.run.log(record)
                    self.tb.log(record)
                if train.eval_every and step % train.eval_every == 0:
                    self._dev_evaluation()
                if (train.save_every and step % train.save_every == 0) or step == self.total_steps:
                    self._checkpoint()  # the last step always: a rerun knows it finished, an extension resumes exactly
                advance(record)
        self.save(self.run.path / "final", {"step": self.step, "dropped_examples": self.dropped})
        if self.dropped:
            self.say(f"{self.dropped:,} training example(s) were left out of their batches (audio that failed "
                     f"to decode, or overlong): listed in {self.run.quarantine}")
        return self.run.path

    def train_step(self) -> dict:
        """One optimizer step over one global batch; returns its metrics."""
        t0 = time.perf_counter()
        stage = self.schedule.stage()  # of the batch about to be drawn
        global_batch = self.schedule.next_batch()
        acc, world = self.acc, self.acc.num_processes
        shards = self.micro_plan(global_batch)[acc.process_index]
        # Decode and collate this rank's micro-batches first: what they lose (audio that fails to
        # decode, examples overlong once collated) is known before the loss is scaled.
        mark = len(self.collator.skipped)
        batches = [self._batch([self.data.train[i] for i in indices], augment=True) if indices is not None else None
                   for indices in shards]
        per_example = self.cfg.train.loss_reduction == "example"
        kept = [self.data.index[eid] for b in batches if b is not None for eid in b["example_ids"]]
        local = [len(kept) if per_example else sum(self.data.answer_tokens[i] for i in kept),
                 sum(len(s) for s in shards if s is not None) - len(kept)]
        denominator, dropped = acc.reduce(torch.tensor(local, dtype=torch.float64, device=acc.device),
                                          reduction="sum").tolist()
        if dropped:
            self._quarantine(mark, self.step + 1, gather=world > 1)
        sums = TaskSums(self.tasks, acc.device)
        for j, batch in enumerate(batches):
            # A micro-batch that lost every example, or a stand-in of a rank with fewer micro-batches,
            # still runs, at zero weight, so that DDP/FSDP ranks stay in step.
            weight = 1.0 if batch is not None and batch["example_ids"] else 0.0
            batch = batch if weight else self.filler
            sync = j == len(batches) - 1
            with (nullcontext() if sync else acc.no_sync(self.model)), acc.autocast():
                losses, counts = self.model(batch)
                # Sum over the micro-batch / tokens (or examples) of the whole global batch; DDP averages
                # over processes, hence the factor: the step's gradient is that of the global mean loss.
                summed = (losses / counts.clamp(min=1)).sum() if per_example else losses.sum()
                acc.backward(summed * weight / max(denominator, 1.0) * world)
            if weight:
                sums.add(batch["tasks"], losses, counts)
        grad_norm = self._clip()
        self.optimizer.step()
        self.lr_scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.dropped += int(dropped)
        sums.reduce(acc)
        record = self._record(sums, grad_norm, stage, len(global_batch), time.perf_counter() - t0)
        return {**record, "dropped": int(dropped), "micro_batches": len(shards)}

    def micro_plan(self, global_batch) -> list[list]:
        """Every rank's micro-batches of ``global_batch`` (arrays of example rows; ``None``: a stand-in),
        the same number for every rank: by token budget (``train.micro_batch_tokens``), or equal counts
        grouped by length. A pure function of the batch and the lengths: every rank plans alike."""
        world = self.acc.num_processes
        budget = self.cfg.train.micro_batch_tokens
        if budget:
            return plan_micro_batches(global_batch, self.data.lengths, self.data.table.has_audio, world, budget,
                                      packing=self.collator.cfg.packing).ranks
        ordered = group_by_length(global_batch, self.data.lengths, world, self.micro_batches)
        return [shard(ordered, self.data.table, r, world, self.micro_batches) for r in range(world)]

    def _quarantine(self, mark: int, step: int, *, gather: bool = False, split: str = "train") -> None:
        """Write down the examples left out since the collator held ``mark`` skips: one line each time
        one is left out, with the reason, the step and its manifest line (``gather``: of every rank)."""
        skips = self.collator.skipped
        skipped = zip(skips.ids[mark:], skips.reasons[mark:], strict=True)
        entries = drop_entries(self.data.store.take_failures(), skipped, self.data.where, step, split)
        if gather:
            entries = [e for part in gather_object([entries]) for e in part]
        for entry in entries:
            self.run.log(entry, self.run.quarantine)

    def _filler_batch(self) -> dict:
        """A one-example batch (with audio when the data has any) that decodes: what a micro-batch that
        lost every example runs instead, at zero weight."""
        candidates = sorted(range(len(self.data.train)), key=lambda i: not self.data.train[i].audio)
        for i in candidates[:1000]:
            batch = self._batch([self.data.train[i]])
            if batch["example_ids"]:
                self.data.store.take_failures()  # they come back, and are quarantined, when the schedule draws them
                return batch
        raise NabraError(f"{self.cfg.data.manifest}: none of the first training examples can be loaded "
                         "(their audio fails to decode): check the audio paths")

    def _batch(self, examples, augment: bool = False) -> dict:
        """The collated micro-batch of ``examples``; ``augment``: training clips under ``data.augment``."""
        samples = self.data.store.samples(examples)
        if augment and self.augmenter is not None:
            samples = self._augmented(samples)
        batch = to_device(self.collator(samples), self.acc.device)
        if "input_features" in batch:  # a bfloat16 model under fp32 precision gets bfloat16 features, as in evaluation
            batch["input_features"] = batch["input_features"].to(self.trained.dtype)
        return batch

    def _augmented(self, samples: list) -> list:
        """``samples`` under ``data.augment``, each drawn from (train.seed, example, epoch): the epoch is the
        passes over the training examples before this step, so a resumed run redraws the same audio. Babble
        is the micro-batch's other speakers (its other utterances where the manifest names no speaker)."""
        epoch = self.step * self.cfg.train.batch_size // max(1, len(self.data.train))
        return self.augmenter.batch(samples, epoch, self.speaker_of)

    def _clip(self) -> float:
        params = [p for p in self.model.parameters() if p.requires_grad]
        max_norm = self.cfg.train.max_grad_norm if self.cfg.train.max_grad_norm > 0 else float("inf")
        norm = self.acc.clip_grad_norm_(params, max_norm)
        if norm is None:  # DeepSpeed clips inside its engine and returns nothing here
            engine = getattr(self.model, "get_global_grad_norm", None)
            norm = engine() if engine else None
        return float("nan") if norm is None else float(norm)

    def _record(self, sums: TaskSums, grad_norm: float, stage: str, n_examples: int, seconds: float) -> dict:
        # The loss as the step averaged it: token mean, or the mean of each example's token mean.
        per_example = self.cfg.train.loss_reduction == "example"
        task_loss = sums.task_means(per_example)
        record = {"step": self.step, "loss": sums.mean(per_example),
                  "task_loss": task_loss, "lr": self.lr_scheduler.get_last_lr()[0], "grad_norm": grad_norm,
                  "stage": stage, "examples_per_s": n_examples / seconds}
        record.update(self.diagnostics.update(task_loss, grad_norm))
        return record

    @torch.no_grad()
    def dev_losses(self) -> dict[str, float]:
        """Mean token loss per task on the fixed dev subset."""
        if not self.data.dev:
            return {}
        self.model.eval()
        size = self.cfg.train.micro_batch_size or self.cfg.train.batch_size
        sums = TaskSums(self.tasks, self.acc.device)
        mark = len(self.collator.skipped)
        # The dev subset (sorted by duration) in micro-batches of the training's size, or of its token budget.
        lengths = self.data.dev_lengths if len(self.data.dev_lengths) == len(self.data.dev) else [0] * len(self.data.dev)
        groups = token_batches(lengths, self.cfg.train.micro_batch_tokens,
                               packing=self.collator.cfg.packing, max_count=None if self.cfg.train.micro_batch_tokens else size)
        for group in groups:
            batch = self._batch([self.data.dev[i] for i in group])
            if not batch["example_ids"]:
                continue
            with self.acc.autocast():
                losses, counts = self.model(batch)
            sums.add(batch["tasks"], losses, counts)
        self.model.train()
        self._quarantine(mark, self.step, split="dev")
        return sums.task_means()

    def _dev_evaluation(self) -> None:
        """Dev losses; with ``eval_metrics`` also generate, score (WER/CER, ROUGE, macro-F1, composite),
        and keep the model as ``best/`` when the composite improves."""
        self._observe(self.step, self.dev_losses())
        if not (self.cfg.train.eval_metrics and self.data.dev):
            return
        mark = len(self.collator.skipped)
        metrics, composite = score_examples(
            self.trained, self.bundle, self.collator, self.data.dev, self.data.store, task_set=self.task_set,
            batch_size=self.cfg.train.eval_batch_size, dialect_of=self.data.dialect_of,
            weights=self.cfg.train.composite_weights, batch_tokens=self.cfg.train.micro_batch_tokens)
        self._quarantine(mark, self.step, split="dev")
        self.run.log({"step": self.step, "event": "dev_eval", "metrics": headline(metrics), "composite": composite})
        if composite == composite and composite > self.best:  # not NaN, and better
            self.best = composite
            self.save(self.run.path / "best", {"step": self.step, "composite": composite})

    def _observe(self, step: int, dev_loss: dict[str, float]) -> None:
        """Log the dev losses and hand them to the schedule; a change of course is said and logged
        with the step (and the task shares, for a schedule whose mix moves)."""
        self.run.log({"step": step, "event": "dev", "dev_loss": dev_loss})
        change = self.schedule.observe(step, dev_loss)
        if change is not None:
            self.say(change)
            weights = self.schedule.task_weights()
            self.run.log({"step": step, "event": "schedule", "message": change, "stage": self.schedule.stage(),
                          **({"weights": weights} if weights is not None else {})})

    def _set_embeddings(self, key: str | None = None) -> None:
        """Give the schedule per-example aligner embeddings: read under ``key`` (a resume: the clusters
        come from the checkpoint), or computed from the current weights by every process, each its
        shard (cached in the run folder under the fingerprint of the weights that embed)."""
        acc, resuming, cache = self.acc, key is not None, self.run.path / "embeddings"
        if key is None:
            model = self.trained
            if self.embedding_key and not aligner_trains(model):
                self.say(f"step {self.step}: the aligner is frozen, its embeddings cannot change: refresh skipped")
                return
            data_key = utterances_key(self.data.utterances)
            key = embedding_key(model, self.bundle.path, data_key, self.schedule.embedding_dim)
            model.eval()
            compute_embeddings(self.bundle, None, cache, utterances=self.data.utterances, model=model, key=key,
                               dim=self.schedule.embedding_dim, seed=self.cfg.train.seed, progress=False,
                               rank=acc.process_index, world=acc.num_processes, barrier=acc.wait_for_everyone,
                               batch_tokens=self.cfg.train.micro_batch_tokens)
            model.train()
        vectors = example_vectors(cache / key, self.data.train, rank=acc.process_index, barrier=acc.wait_for_everyone)
        self.schedule.set_embeddings(vectors, recluster=not resuming, normalized=True)
        self.embedding_key = key

    # ========================================================================================
    # save
    # ========================================================================================

    def _checkpoint(self) -> None:
        extra = {"best": self.best, "planned_steps": self.planned_steps, "diagnostics": self.diagnostics.state_dict(),
                 "dropped": self.dropped,
                 **({"embedding_key": self.embedding_key} if self.embedding_key else {})}
        save_checkpoint(self.run.path, self.step, self.acc, self.model, self.optimizer, self.lr_scheduler,
                        self.schedule, self.cfg.train.keep_last, extra)

    def save(self, out: Path, info: dict) -> Path:
        """Write the trained model to ``out``: the PEFT adapter (LoRA) or the full thinker checkpoint
        with its tokenizer and feature extractor, loadable by Nabra, and ``nabra_run.json``."""
        full = self.cfg.model.finetune == "full"
        extra = (self.bundle.tokenizer, self.bundle.feature_extractor) if full else ()
        info = {"base_model": str(self.bundle.path), "finetune": self.cfg.model.finetune, **info}
        return save_model(self.acc, self.model, self.trained, out, info, extra_files=extra)
