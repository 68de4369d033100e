"""A run's data preparation: validated utterances -> examples -> what the loop and the evaluation use.

Training (:mod:`nabra.train`) and evaluation (:mod:`nabra.evaluate.runner`) read manifests the same
way: validation first (invalid lines stop the run, or are quarantined with their reasons), then
the one utterances -> examples step (:func:`nabra.tasks.iter_examples`) with the run's templates,
label sets and seed. Lengths come from the manifest's durations: nothing here opens audio.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nabra.config import RunConfig
from nabra.corpus.manifest import Utterance, display_line, iter_lines, resolve_audio
from nabra.corpus.validate import ValidationConfig, reason_key, validate_manifest
from nabra.errors import NabraError
from nabra.files import open_append, read_records
from nabra.model.collate import Collator
from nabra.model.config import WINDOW
from nabra.model.loader import AudioStore
from nabra.schedule import ExampleTable
from nabra.tasks import Example, iter_examples

Log = Callable[[str], None]


def read_valid(manifest: str, cfg: RunConfig, run_dir: Path | None, log: Log,
               where: dict[str, str] | None = None) -> list[Utterance]:
    """The manifest's utterances after validation: invalid lines stop the run, or with
    ``data.skip_invalid`` go to ``quarantine.jsonl`` with their reasons. With ``data.check_audio``
    every audio file is also decoded now. ``where`` is filled with ``id -> "FILE:LINE"``."""
    task_set = cfg.task_set()
    checks = ValidationConfig(dialects=task_set.labels("did"), emotions=task_set.labels("ser"),
                              declared=task_set.declared(), check_audio=cfg.data.check_audio,
                              workers=cfg.data.load_workers, max_line_bytes=cfg.data.max_line_bytes)
    parsed: list[tuple[int, Utterance]] = []
    problems, warnings = [], []
    for p in validate_manifest(manifest, checks, parsed=parsed):
        (warnings if p.warning else problems).append(p)
    bad_lines = {p.line for p in problems}
    if warnings:
        kinds = Counter(reason_key(w.reason) for w in warnings)
        log(f"{manifest}: {len(warnings):,} warning(s), e.g. {warnings[0].format(manifest)}; by kind: "
            + "; ".join(f"{n:,} x {k}" for k, n in kinds.most_common(3))
            + f" (`nabra data validate {manifest}` lists them)")
    if problems and not cfg.data.skip_invalid:
        shown = "\n".join(p.format(manifest) for p in problems[:20])
        more = f"\n... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise NabraError(f"{manifest}: {len(bad_lines)} invalid line(s):\n{shown}{more}\n"
                         "fix them, or pass --skip-invalid to quarantine them")
    if problems and run_dir is not None:
        _quarantine(manifest, problems, run_dir / "quarantine.jsonl", checks.max_line_bytes)
        log(f"quarantined {len(bad_lines):,} invalid line(s) of {manifest} -> {run_dir / 'quarantine.jsonl'}")
    root = Path(manifest).resolve().parent
    utts = [resolve_audio(u, root) for n, u in parsed if n not in bad_lines]
    if where is not None:
        where.update((u.id, f"{manifest}:{n}") for n, u in parsed if n not in bad_lines)
    return utts


def _quarantine(manifest: str, problems, path: Path, max_bytes: int) -> None:
    reasons: dict[int, list[str]] = {}
    for p in problems:
        reasons.setdefault(p.line, []).append(p.reason)
    # A resumed run validates again: the lines it quarantined before are not written twice.
    done = {(e.get("manifest"), e.get("line")) for e in read_records(path)[0] if "line" in e} if path.is_file() else set()
    with open_append(path) as f:
        for lineno, line in iter_lines(manifest, max_bytes):
            if lineno in reasons and (str(manifest), lineno) not in done:
                f.write(json.dumps({"manifest": str(manifest), "line": lineno, "reasons": reasons[lineno],
                                    "text": display_line(line)}, ensure_ascii=False) + "\n")


def examples(utts: list[Utterance], cfg: RunConfig, split: str, tasks=None) -> list[Example]:
    """The examples of ``split`` for ``tasks`` (default: the run's), with the run's templates and labels."""
    return list(iter_examples(utts, tasks=tuple(tasks or cfg.data.tasks), split=split, seed=cfg.train.seed,
                              language=cfg.data.language, task_set=cfg.task_set()))


def missing_tasks(found: list[Example], tasks, split: str) -> list[str]:
    """A message for every task of ``tasks`` without examples in ``found``."""
    present = {ex.task for ex in found}
    return [f"{task}: no {split} utterances with its references (and audio) in the manifest: skipped"
            for task in tasks if task not in present]


def dev_subset(examples: list[Example], per_task: int, seed: int = 0) -> list[Example]:
    """``per_task`` dev examples of each task, drawn with ``seed`` and stratified by label: the labels
    of a label task (did, ser, a declared one) take turns (a label with fewer examples gives its turns to the others), so a manifest
    sorted by label folder still gives a balanced subset. Fixed for a run, so dev losses and the
    ``best/`` choice compare across steps; returned in the input order."""
    chosen: list[int] = []
    by_task: dict[str, list[int]] = {}
    for i, ex in enumerate(examples):
        by_task.setdefault(ex.task, []).append(i)
    for task, rows in by_task.items():
        rng = np.random.default_rng([seed, *task.encode()])
        by_label: dict[str, list[int]] = {}
        for i in rows:
            by_label.setdefault(examples[i].label or "", []).append(i)
        queues = [list(rng.permutation(by_label[k])) for k in sorted(by_label)]
        picked: list[int] = []
        while len(picked) < per_task and any(queues):
            for q in queues:  # one per label per round
                if q and len(picked) < per_task:
                    picked.append(int(q.pop(0)))
        chosen += picked
    return [examples[i] for i in sorted(chosen)]


def drop_overlong(examples: list[Example], collator: Collator, log: Log,
                  stretch: float = 1.0) -> tuple[list[Example], list[int], list[int]]:
    """Leave out examples whose prompt + audio placeholders + answer exceed ``max_length`` before
    step 1 (audio length from the manifest's durations, times ``stretch``: the most speed perturbation can
    lengthen a training clip), reporting each. Returns the kept examples, their answer lengths and their
    estimated total lengths (tokens)."""
    if not examples:
        return [], [], []
    cfg = collator.cfg
    count = TokenCounter(collator.tokenizer)
    distinct = list(dict.fromkeys(ex.instruction for ex in examples))  # shared by most examples
    per_instruction = dict(zip(distinct, count([collator.family.prompt_text(cfg.system_prompt, i, []) for i in distinct]), strict=True))
    prompts = [per_instruction[ex.instruction] for ex in examples]
    answers = count([collator.family.answer_text(ex.target) for ex in examples])
    if cfg.max_length == WINDOW and collator.max_length is None:
        limit = collator.window_limit(max(prompts), max(answers))
        log(f"collate.max_length window: {limit:,} tokens ({collator.audio_tokens(collator.window_seconds):,} audio "
            f"placeholders for the model's {collator.window_seconds:g}-s window + the longest prompt, {max(prompts):,}, "
            f"+ the longest answer, {max(answers):,})")
    limit = collator.max_length
    undated = [ex.id for ex in examples if ex.audio and not ex.duration]
    if undated:
        log(f"warning: {len(undated):,} example(s) with audio have no duration in the manifest (first: {undated[0]}): "
            "their audio counts as 0 tokens against collate.max_length and train.micro_batch_tokens, so a long clip "
            "can overrun a micro-batch's budget; give the manifest durations (every importer writes them; "
            "`nabra data stats` counts the lines without)")
    keep, lengths, totals = [], [], []
    for ex, p, a in zip(examples, prompts, answers, strict=True):
        n = p + a + collator.audio_tokens(ex.duration * stretch if ex.audio and ex.duration else None)
        if limit is not None and n > limit:
            if cfg.overlong == "error":
                raise NabraError(f"example {ex.id}: about {n} tokens > max_length {limit}")
            log(f"skipping {ex.id}: about {n} tokens > collate.max_length {limit}")
            continue
        keep.append(ex)
        lengths.append(a)
        totals.append(n)
    return keep, lengths, totals


class TokenCounter:
    """Token counts of texts, each distinct text tokenized once and in chunks: a million examples
    share a few dozen instructions and label answers, and their id lists would take gigabytes."""

    CHUNK = 16_384

    def __init__(self, tokenizer):
        self.tokenizer, self.known = tokenizer, {}

    def __call__(self, texts: list[str]) -> list[int]:
        new = list(dict.fromkeys(t for t in texts if t not in self.known))
        backend = getattr(self.tokenizer, "backend_tokenizer", None)  # the Rust tokenizer: no Python id lists
        for i in range(0, len(new), self.CHUNK):
            part = new[i : i + self.CHUNK]
            if backend is not None:
                counts = [len(e) for e in backend.encode_batch_fast(part, add_special_tokens=False)]
            else:
                counts = [len(t) for t in self.tokenizer(part, add_special_tokens=False)["input_ids"]]
            self.known.update(zip(part, counts, strict=True))
        return [self.known[t] for t in texts]


@dataclass
class Data:
    """Everything the training loop needs to know about the data."""

    train: list[Example]
    dev: list[Example]
    table: ExampleTable
    store: AudioStore
    answer_tokens: list[int] = field(default_factory=list)
    """Answer tokens (labels) of every training example: the loss denominator of a global batch."""
    dialect_of: dict[str, str] = field(default_factory=dict)
    """Dialect of each dev utterance (the per-dialect WER breakdown)."""
    lengths: np.ndarray | None = None
    """Estimated sequence length (tokens) of every training example, for length-grouped micro-batches."""
    where: dict[str, str] = field(default_factory=dict)
    """``FILE:LINE`` of every utterance, by id (what a quarantine entry names)."""
    index: dict[str, int] = field(default_factory=dict)
    """Position of every training example in ``train``, by example id."""
    utterances: list[Utterance] = field(default_factory=list)
    """The valid training-split utterances the examples come from (what ADS embeds)."""
    dev_lengths: list[int] = field(default_factory=list)
    """Estimated sequence length (tokens) of every dev example, for the dev micro-batches."""


@dataclass
class Manifests:
    """The validated utterances of a run's manifests (what :func:`prepare` turns into examples)."""

    train: list[Utterance]
    dev: list[Utterance]
    where: dict[str, str]
    """``FILE:LINE`` of every utterance, by id."""


def read_manifests(cfg: RunConfig, run_dir: Path, log: Log) -> Manifests:
    """Validate the run's manifests (before the model loads: a bad manifest is said in seconds)."""
    where: dict[str, str] = {}
    utts = read_valid(cfg.data.manifest, cfg, run_dir, log, where)
    dev_utts = read_valid(cfg.data.dev_manifest, cfg, run_dir, log, where) if cfg.data.dev_manifest else utts
    return Manifests(utts, dev_utts, where)


def prepare(cfg: RunConfig, collator: Collator, manifests: Manifests, log: Log) -> Data:
    """Build the training and dev examples of the validated manifests, their metadata table and the audio store."""
    utts, dev_utts, where = manifests.train, manifests.dev, manifests.where
    stretch = cfg.data.augment.max_stretch  # a slowed-down clip has more placeholders: budgets plan for it
    train, answer_tokens, lengths = drop_overlong(examples(utts, cfg, "train"), collator, log, stretch)
    if not train:
        raise NabraError(f"{cfg.data.manifest}: no training examples (split 'train', tasks {', '.join(cfg.data.tasks)})")
    dev_kept, _, dev_totals = drop_overlong(examples(dev_utts, cfg, "dev"), collator, log)
    dev = dev_subset(dev_kept, cfg.data.dev_per_task, cfg.train.seed)
    dev.sort(key=lambda ex: ex.duration or 0.0)  # similar lengths batched together: less padding
    total_of = {ex.id: n for ex, n in zip(dev_kept, dev_totals, strict=True)}
    counts = {t: sum(ex.task == t for ex in train) for t in cfg.data.tasks}
    log("training examples: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()) + f"; dev examples: {len(dev):,}")
    if absent := [t for t, n in counts.items() if n == 0]:
        log(f"warning: no training example for task(s) {', '.join(absent)} in {cfg.data.manifest}: the run trains "
            "without them (their annotations are missing from the manifest); data.tasks names the tasks to train")
    task_set = cfg.task_set()
    table = ExampleTable.from_examples(train, labels=task_set.label_sets(), task_names=task_set.names)
    store = AudioStore(cfg.data.audio_cache_mb, cfg.data.load_workers)
    dialect_of = {u.id: u.dialect for u in dev_utts if u.dialect}
    used = {ex.utt_id for ex in train}
    return Data(train, dev, table, store, answer_tokens, dialect_of, np.asarray(lengths), where,
                {ex.id: i for i, ex in enumerate(train)}, [u for u in utts if u.id in used],
                [total_of[ex.id] for ex in dev])
