"""Evaluation runner: load a trained model, generate answers greedily in batches, score them.

Batches never mix tasks: each task has its own answer budget (``max_new_tokens``), and an
untrained or confused model that never writes its end token runs every batch to that budget, so a
dialect label must not wait for a 128-token summary. Within a task, examples are sorted by
estimated prompt length (audio tokens + instruction), longest first, so a batch pads little and
an out-of-memory error shows at the first batch; predictions come back in input order.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import numpy as np
import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from nabra import data
from nabra.config import RunConfig
from nabra.corpus.audio import load_audio
from nabra.corpus.augment import CONDITION_SEED, Condition, parse_conditions, rng_for
from nabra.corpus.manifest import TASKS, Utterance
from nabra.errors import AudioError, NabraError
from nabra.evaluate.metrics import (
    GENERATIVE,
    Prediction,
    composite_score,
    compute_metrics,
    repetition_loop,
    require_bertscore,
)
from nabra.files import atomic_path, read_json, write_text
from nabra.model import load
from nabra.model.collate import Collator
from nabra.model.loader import AudioStore
from nabra.model.lora import load_adapter
from nabra.progress import progress_bar
from nabra.run.folder import RunFolder
from nabra.schedule.micro import token_batches
from nabra.tasks import DEFAULT_TASKS, Example, TaskSet, parse_output

AUDIO_TOKENS_PER_SECOND = 25
"""Whisper frames (100/s) after the thinker's two stride-2 stages."""
LABEL_NEW_TOKENS = 16
"""Label tasks (did, ser, declared ones): a label word takes 3-9 BPE tokens; room for an alias or a short phrase."""
ASR_TOKENS_PER_SECOND = 10
"""asr: ~3 words/s of speech x ~3 tokens per Arabic word, with margin."""
SUMMARY_TOKENS_PER_SECOND = 4
"""ssum: a summary says less than the speech (~a third of its tokens), with margin."""
REFERENCE_MARGIN = 1.5
"""With a reference, the budget is also at least this many times its length (+ MIN_NEW_TOKENS / 2)."""
MIN_NEW_TOKENS = 32
"""The smallest budget of a generative task."""
NO_LENGTH_NEW_TOKENS = 256
"""A generative answer with neither a duration nor a reference to size it."""


# ============================================================================================
# generation
# ============================================================================================

def answer_budget(ex: Example, reference_tokens: int | None = None) -> int:
    """Default ``max_new_tokens`` of an example: fixed for labels; for transcripts and summaries
    the most of what its audio duration (asr, ssum), its source text (tsum) and its reference
    (``reference_tokens``, with a margin) call for — a 20-minute episode is not cut at a fixed cap."""
    if ex.label is not None or ex.task in ("did", "ser"):
        return LABEL_NEW_TOKENS
    sizes = [math.ceil(REFERENCE_MARGIN * reference_tokens) + MIN_NEW_TOKENS // 2] if reference_tokens else []
    if ex.task == "asr" and ex.duration:
        sizes.append(math.ceil(ASR_TOKENS_PER_SECOND * ex.duration) + MIN_NEW_TOKENS // 2)
    elif ex.task == "ssum" and ex.duration:
        sizes.append(math.ceil(SUMMARY_TOKENS_PER_SECOND * ex.duration) + MIN_NEW_TOKENS)
    elif ex.task == "tsum":
        sizes.append(len(ex.instruction) // 6 + MIN_NEW_TOKENS)  # ~2 characters a token, a third of the source
    return max(MIN_NEW_TOKENS, *sizes) if sizes else NO_LENGTH_NEW_TOKENS


def prompt_length(ex: Example) -> float:
    """Estimated prompt tokens: audio placeholders from the duration, ~2 characters per text token."""
    return AUDIO_TOKENS_PER_SECOND * (ex.duration or 0.0) + len(ex.instruction) / 2


def plan_batches(examples: list[Example], batch_size: int, sort_by_length: bool = True,
                 max_tokens: int | None = None) -> list[list[int]]:
    """Indices of ``examples`` per batch: one task per batch, longest prompts first when sorting; with
    ``max_tokens`` also at most that many tokens a batch (left-padded prompt + answer budget, times the
    rows): a 300-s clip does not take ``batch_size - 1`` others with it."""
    by_task: dict[str, list[int]] = {}
    for i, ex in enumerate(examples):
        by_task.setdefault(ex.task, []).append(i)
    batches = []
    for task in sorted(by_task, key=lambda t: TASKS.index(t) if t in TASKS else len(TASKS)):  # declared ones last
        order = by_task[task]
        if sort_by_length:
            order = sorted(order, key=lambda i: -prompt_length(examples[i]))
        if max_tokens is None:
            batches += [order[k : k + batch_size] for k in range(0, len(order), batch_size)]
            continue
        lengths = [math.ceil(prompt_length(examples[i])) + answer_budget(examples[i]) for i in order]
        batches += [[order[k] for k in group] for group in token_batches(lengths, max_tokens, max_count=batch_size)]
    return batches


def generate_predictions(model, bundle, collator, examples: list[Example], store, *, batch_size: int = 16,
                         max_new_tokens: int | None = None, sort_by_length: bool = True, progress: bool = True,
                         dialect_of: dict[str, str] | None = None, task_set: TaskSet = DEFAULT_TASKS,
                         stop_loops: bool = True, batch_tokens: int | None = None) -> list[Prediction]:
    """Greedy answers of ``model`` to ``examples``, parsed, in the order of ``examples``.
    Batches of at most ``batch_size`` examples (and ``batch_tokens`` tokens, see :func:`plan_batches`).

    ``max_new_tokens`` (default: :func:`answer_budget` of each example, the largest of its batch)
    caps every answer. ``dialect_of`` maps utterance ids to dialects (for the per-dialect ASR
    breakdown); ``task_set`` has the label sets outputs are parsed against. An example
    the collator leaves out (longer than ``max_length``) gets an empty answer: it counts as wrong.
    ``stop_loops``: an answer caught in a repetition loop ends there (:class:`LoopStop`).
    """
    outputs: dict[int, str] = {}
    batches = plan_batches(examples, batch_size, sort_by_length, batch_tokens)
    was_training = model.training
    model.eval()  # no dropout while generating; a model in training (dev evaluation) is given back as it was
    try:
        with progress_bar("evaluate", len(examples), enabled=progress, unit="examples") as advance:
            for indices in batches:
                batch = [examples[i] for i in indices]
                budget = max_new_tokens or max(answer_budget(ex, n) for ex, n in
                                               zip(batch, _reference_tokens(bundle.tokenizer, batch), strict=True))
                samples = store.samples(batch)
                position = {id(ex): j for j, ex in enumerate(batch)}
                texts = generate_batch(model, bundle.tokenizer, collator, samples, budget, stop_loops)
                outputs.update({indices[position[id(samples[j][0])]]: out for j, out in texts.items()})
                advance(len(batch), batch[0].task)
    finally:
        model.train(was_training)
    dialect_of = dialect_of or {}
    return [Prediction(id=ex.id, task=ex.task, prompt=ex.instruction, prediction=outputs.get(i, ("", False))[0],
                       reference=ex.target, parsed=parse_output(ex.task, outputs.get(i, ("", False))[0], task_set=task_set),
                       label=ex.label, dialect=dialect_of.get(ex.utt_id), truncated=outputs.get(i, ("", False))[1],
                       looped=ex.task in GENERATIVE and repetition_loop(outputs.get(i, ("", False))[0]),
                       language=ex.language, duration=ex.duration if ex.audio else None)
            for i, ex in enumerate(examples)]


def _reference_tokens(tokenizer, batch: list[Example]) -> list[int | None]:
    targets = [ex.target or "" for ex in batch]
    ids = tokenizer(targets, add_special_tokens=False)["input_ids"]
    return [len(t) if target else None for t, target in zip(ids, targets, strict=True)]


LOOP_CHECK_EVERY = 8
"""New tokens between two looks for a repetition loop in the answers still being written."""
LOOP_TAIL_TOKENS = 640
"""Tokens of an answer's end that each look decodes: a loop shows at the end, and the longest one
:func:`~nabra.evaluate.metrics.repetition_loop` looks for is 3 × 200 characters — so a 12,000-token
episode transcript is not decoded whole 1,500 times."""


class LoopStop(StoppingCriteria):
    """Ends each answer of a batch once it is caught in a repetition loop
    (:func:`~nabra.evaluate.metrics.repetition_loop`, checked every ``every`` new tokens): a looping
    answer would otherwise run to its budget — hundreds of tokens of insertions, and the whole batch
    waits for it. What it wrote up to there is kept and scored. ``stopped``: the rows it ended."""

    def __init__(self, tokenizer, prompt_length: int, every: int = LOOP_CHECK_EVERY):
        self.tokenizer, self.prompt_length, self.every = tokenizer, prompt_length, every
        self.stopped: torch.Tensor | None = None

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        if self.stopped is None:
            self.stopped = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        if (input_ids.shape[1] - self.prompt_length) % self.every == 0:
            rows = (~self.stopped).nonzero().flatten().tolist()
            start = max(self.prompt_length, input_ids.shape[1] - LOOP_TAIL_TOKENS)
            texts = self.tokenizer.batch_decode(input_ids[rows, start:], skip_special_tokens=True)
            for row, text in zip(rows, texts, strict=True):
                if repetition_loop(text):
                    self.stopped[row] = True
        return self.stopped.clone()


def generate_batch(model, tokenizer, collator, samples, max_new_tokens: int,
                   stop_loops: bool = True) -> dict[int, tuple[str, bool]]:
    """``(decoded new tokens, cut at max_new_tokens)`` of one batch, by position in ``samples``
    (positions the collator skipped are missing). ``stop_loops``: end an answer once it loops
    (:class:`LoopStop`) instead of letting it run to ``max_new_tokens``."""
    batch = collator(samples, for_generation=True)
    if not batch["example_ids"]:
        return {}
    position = {ex.id: i for i, (ex, _) in enumerate(samples)}
    param = next(model.parameters())
    inputs = {k: v.to(param.device) for k, v in batch.items() if isinstance(v, torch.Tensor) and k != "labels"}
    if "input_features" in inputs:
        inputs["input_features"] = inputs["input_features"].to(param.dtype)
    prompt = inputs["input_ids"].shape[1]
    loops = LoopStop(tokenizer, prompt) if stop_loops else None
    with torch.inference_mode():
        out = model.generate(**inputs, do_sample=False, use_cache=True, max_new_tokens=max_new_tokens,
                             stopping_criteria=StoppingCriteriaList([loops] if loops else []))
    # Left padding: every prompt ends at the same column, the answers start after it.
    new = out[:, prompt:]
    texts = tokenizer.batch_decode(new, skip_special_tokens=True)
    eos = _eos_ids(model, tokenizer)
    stopped = loops.stopped.tolist() if loops is not None and loops.stopped is not None else [False] * len(new)
    # A row that never wrote an end token within the budget was cut (the whole batch then ran to
    # it) — unless it was ended for looping.
    cut = [new.shape[1] >= max_new_tokens and not any(int(t) in eos for t in row) and not s
           for row, s in zip(new, stopped, strict=True)]
    return {position[eid]: (text, c) for eid, text, c in zip(batch["example_ids"], texts, cut, strict=True)}


def _eos_ids(model, tokenizer) -> set[int]:
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = set(configured if isinstance(configured, list | tuple) else [configured])
    return {int(i) for i in ids | {tokenizer.eos_token_id} if i is not None}


def score_examples(model, bundle, collator, examples: list[Example], store, *, task_set: TaskSet,
                   batch_size: int = 16, dialect_of: dict[str, str] | None = None, weights: dict | None = None,
                   progress: bool = False, batch_tokens: int | None = None) -> tuple[dict, float]:
    """Generate on ``examples`` and score the answers: ``(metrics per task, composite score)`` with the
    composite's part ``weights`` (default equal). The dev evaluation of a training run."""
    preds = generate_predictions(model, bundle, collator, examples, store, batch_size=batch_size, progress=progress,
                                 dialect_of=dialect_of, task_set=task_set, batch_tokens=batch_tokens)
    metrics = compute_metrics(preds, task_set=task_set)
    return metrics, composite_score(metrics, weights or None, task_set)


def headline(metrics: dict) -> dict:
    """The scalar metrics of each task (the per-class tables stay in the full evaluation)."""
    return {task: {k: v for k, v in m.items() if isinstance(v, int | float)} for task, m in metrics.items()}


# ============================================================================================
# loading a trained model
# ============================================================================================

def load_for_eval(path: str | os.PathLike, *, base: str | None = None, dtype: str | None = None,
                  device: str | None = None, run: RunFolder | None = None):
    """``(model, bundle)`` ready to generate, from a run folder (its ``best/`` if complete, else
    ``final/``: :meth:`RunFolder.weights`), a thinker checkpoint folder, or a PEFT adapter folder. An
    adapter is merged into its base (``base``, else ``nabra_run.json``'s ``base_model``, else the run
    config's ``model.path``, else ``adapter_config.json``'s ``base_model_name_or_path``). ``run``: the
    run folder ``path`` is (in), when the caller has it open already."""
    path = Path(path)
    if not path.is_dir():
        raise NabraError(f"{path}: not a folder (expected a run folder, a checkpoint or an adapter folder)")
    run = run or RunFolder.find(path)
    cfg = run.config() if run else None
    weights = run.weights() if run and run.path == path else path
    dtype = dtype or (cfg.model.dtype if cfg else "float32")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    bundle = _load_weights(weights, dtype, base, cfg.model.path if cfg else None)
    bundle.model.to(device).eval()
    return bundle.model, bundle


def _load_weights(folder: Path, dtype: str, base: str | None, config_base: str | None):
    if (folder / "adapter_config.json").is_file():
        bundle = load(_adapter_base(folder, base, config_base), dtype=dtype)
        # Merged once: generation then runs at the plain model's speed, and modules_to_save are applied.
        bundle.model = load_adapter(bundle.model, folder).merge_and_unload()
        return bundle
    if (folder / "config.json").is_file():
        return load(folder, dtype=dtype)
    if (folder / "trainer_state.pt").is_file():
        raise NabraError(f"{folder}: a training checkpoint (optimizer and trainer state), not a model: evaluate "
                         "the run folder (its final/) instead")
    raise NabraError(f"{folder}: neither a checkpoint folder (config.json) nor a PEFT adapter folder "
                     "(adapter_config.json)")


def _adapter_base(folder: Path, base: str | None, config_base: str | None) -> str:
    """The base model folder of an adapter: ``base`` when given, else the first recorded one that exists."""
    if base:
        if not Path(base).is_dir():
            raise NabraError(f"{base}: base model folder not found")
        return base
    run_info = folder / "nabra_run.json"
    adapter_cfg = read_json(folder / "adapter_config.json")
    candidates = [
        ("nabra_run.json", read_json(run_info).get("base_model") if run_info.is_file() else None),
        ("the run's config.yaml", config_base),
        ("adapter_config.json", adapter_cfg.get("base_model_name_or_path")),
    ]
    for _, value in candidates:
        if value and Path(value).is_dir():
            return value
    tried = "; ".join(f"{src}: {value}" for src, value in candidates if value) or "none recorded"
    raise NabraError(f"{folder}: the adapter's base model folder is not found ({tried}); pass --base")


# ============================================================================================
# evaluate a manifest split
# ============================================================================================

def evaluate(path: str | os.PathLike, manifest: str | os.PathLike, *, split: str = "test",
             tasks: list[str] | None = None, out_dir: str | os.PathLike | None = None, batch_size: int = 16,
             scheme: str = "default", base: str | None = None, device: str | None = None,
             dtype: str | None = None, max_new_tokens: int | None = None, bertscore_model: str | None = None,
             stop_loops: bool = True, progress: bool = True, log=print, batch_tokens: int | None = None,
             by: list[str] | None = None, conditions: list[str] | None = None) -> dict:
    """Evaluate the model at ``path`` on the ``split`` of ``manifest``; writes ``predictions.jsonl``
    and ``metrics.json`` to ``out_dir`` (default ``<run folder or path>/eval-<split>``) and returns
    what ``metrics.json`` holds, plus ``out_dir``.

    Templates, label sets and collation follow the run's config when ``path`` is (in) a run folder.
    ``bertscore_model``: a local model folder for BERTScore on summaries (needs bert-score).
    ``stop_loops``: end an answer once it loops (``False``: every answer runs to its end token or budget).
    ``batch_tokens``: also at most this many tokens a generation batch (default: the run's ``train.micro_batch_tokens``).
    ``by``: manifest fields (``speaker``, ``dialect``, ``source``, or any extra field such as ``l1``) to break every
    task's metrics down by (``by`` in ``metrics.json``: each value's figures, and ``(none)`` for the utterances
    without the field, so the groups add up to the whole).
    ``conditions``: how the audio is heard (:class:`~nabra.corpus.augment.Condition` specs: ``clean``,
    ``noise:snr=10``, ``noise:snr=0,source=babble``, ``reverb``, ...; default clean): each is scored with the same
    seeded corruption for every run; clean writes to ``out_dir``, the others to ``out_dir/<condition slug>/``, and
    the result holds every condition's under ``conditions``."""
    conds = parse_conditions(conditions) or [Condition("clean")]
    if bertscore_model:
        require_bertscore()  # before minutes of generation, not after
    run = RunFolder.find(path)
    cfg = run.config() if run else RunConfig()
    task_set = cfg.task_set()
    tasks = list(tasks or cfg.data.tasks)
    task_set.check(tasks)
    where: dict[str, str] = {}
    utts = data.read_valid(str(manifest), cfg, None, log, where)
    examples = data.examples(utts, cfg, split, tasks)
    skipped = data.missing_tasks(examples, tasks, split)
    for message in skipped:
        log(message)
    if not examples:
        raise NabraError(f"{manifest}: no {split} examples for task(s) {', '.join(tasks)}")
    used = {ex.utt_id for ex in examples}
    value_of = {name: {u.id: field_value(u, name) for u in utts if u.id in used} for name in by or ()}
    for name, values in value_of.items():  # a mistyped field is said before minutes of generation
        if not any(v is not None for v in values.values()):
            raise NabraError(f"--by {name}: no {split} utterance of {manifest} has a {name!r} field")
    model, bundle = load_for_eval(path, base=base, dtype=dtype, device=device, run=run)
    collator = Collator.for_bundle(bundle, cfg.collate)
    store = AudioStore(cfg.data.audio_cache_mb, cfg.data.load_workers)
    # Beside the run's other outputs (where `nabra report` looks), also when given run/final.
    out = Path(out_dir) if out_dir else run.eval_dir(split) if run else Path(path) / f"eval-{split}"
    results = {}
    try:
        for cond in conds:
            if len(conds) > 1:
                log(f"condition {cond.name}")
            heard = store if cond.clean else ConditionStore(store, cond, utts, used, collator.sampling_rate)
            preds = generate_predictions(
                model, bundle, collator, examples, heard,
                batch_size=batch_size, max_new_tokens=max_new_tokens, progress=progress, task_set=task_set,
                dialect_of={u.id: u.dialect for u in utts if u.dialect}, stop_loops=stop_loops,
                batch_tokens=batch_tokens or cfg.train.micro_batch_tokens)
            # Audio that failed to decode: its examples have no answer and count as wrong; named here.
            unreadable = sorted({f"{where.get(ex.utt_id, ex.utt_id)} (id {ex.utt_id}): {reason}"
                                 for ex, reason in store.take_failures()})
            for line in unreadable:
                log(f"audio failed to decode, its examples count as wrong: {line}")
            metrics = compute_metrics(preds, scheme=scheme, task_set=task_set,
                                      bertscore_model=bertscore_model, skipped=skipped)
            result = {"model": str(path), "manifest": str(manifest), "split": split, "scheme": scheme,
                      "stop_loops": stop_loops, "condition": cond.describe(), "metrics": metrics,
                      "composite": composite_score(metrics, cfg.train.composite_weights or None, task_set),
                      "skipped": skipped, "unreadable_audio": unreadable}
            if value_of:
                result["by"] = {name: metrics_by(preds, values, scheme=scheme, task_set=task_set)
                                for name, values in value_of.items()}
            where_to = out if cond.clean else out / cond.slug
            write_outputs(where_to, preds, result)
            results[cond.name] = {**result, "out_dir": str(where_to)}
    finally:
        store.close()
    first = results.get("clean") or next(iter(results.values()))
    return {**first, "conditions": results} if len(conds) > 1 or not conds[0].clean else first


BABBLE_POOL = 16
"""Clips of the evaluated split that a babble condition's talkers are drawn from (chosen once, by the condition's
seed): the crowd under every clip comes from these, never from the clip's own speaker."""
BABBLE_SECONDS = 30.0
"""The most of each pool clip that is read (a crowd loops its voices under a longer clip)."""


class ConditionStore:
    """An :class:`~nabra.model.loader.AudioStore` heard through a :class:`~nabra.corpus.augment.Condition`: the
    clean clips are decoded (and cached) as ever, each batch's copies corrupted. Babble's talkers are a fixed pool of
    the split's clips (:data:`BABBLE_POOL`), so every run hears the same crowd."""

    def __init__(self, store: AudioStore, condition: Condition, utts: list[Utterance], used: set[str],
                 sample_rate: int):
        self.store, self.condition, self.sample_rate = store, condition, sample_rate
        self.speaker_of = {u.id: u.speaker for u in utts if u.id in used}
        self.pool: list[tuple[str, str | None, np.ndarray]] = []
        if condition.params.get("source") == "babble":
            self.pool = babble_pool(condition, [u for u in utts if u.id in used and u.audio], sample_rate)

    def talkers(self, utt_id: str) -> list[np.ndarray]:
        speaker = self.speaker_of.get(utt_id)
        others = [(spk, w) for uid, spk, w in self.pool if uid != utt_id]
        voices = [w for spk, w in others if speaker is None or spk != speaker]
        return voices or [w for _, w in others]  # a one-speaker split: the speaker's other clips

    def samples(self, batch: list[Example]) -> list:
        return [(ex, self.condition.apply(w, ex.utt_id, self.talkers(ex.utt_id), self.sample_rate)
                 if w is not None else None) for ex, w in self.store.samples(batch)]

    def take_failures(self):
        return self.store.take_failures()


def babble_pool(condition: Condition, utts: list[Utterance], sample_rate: int) -> list:
    """``(utterance id, speaker, clip)`` of up to :data:`BABBLE_POOL` of ``utts``, chosen by the condition's seed
    from the ids in sorted order (the same pool whatever order the manifest lists them in); at most
    :data:`BABBLE_SECONDS` of each (an episode is not decoded whole to be a voice in a crowd); a clip that does not
    decode is passed over for the next."""
    utts = sorted(utts, key=lambda u: u.id)
    if len(utts) < 2:
        raise NabraError(f"--condition {condition.name}: babble needs at least two clips in the split")
    rng = rng_for(CONDITION_SEED, f"{condition.slug}\x00pool", 0)
    pool = []
    for i in rng.permutation(len(utts)):
        u = utts[int(i)]
        try:
            wave = load_audio(u.audio, offset=u.offset, duration=min(u.duration or BABBLE_SECONDS, BABBLE_SECONDS),
                              sample_rate=sample_rate)
        except AudioError:
            continue
        if wave.size:
            pool.append((u.id, u.speaker, wave))
        if len(pool) == BABBLE_POOL:
            break
    if len(pool) < 2:
        raise NabraError(f"--condition {condition.name}: fewer than two clips of the split decode; no babble")
    return pool


UTTERANCE_FIELDS = {f.name for f in dataclasses.fields(Utterance)} - {"extra"}
NO_VALUE = "(none)"
"""The group of the utterances without the ``--by`` field."""


def field_value(utt: Utterance, name: str) -> str | None:
    """The manifest field ``name`` of ``utt`` as text: a schema field (``speaker``) or an extra one (``l1``)."""
    value = getattr(utt, name) if name in UTTERANCE_FIELDS else utt.extra.get(name)
    return None if value is None or value == "" else str(value)


def metrics_by(preds: list[Prediction], value_of: dict[str, str | None], *, scheme: str, task_set: TaskSet) -> dict:
    """Every task's metrics per value of one field (``value_of``: utterance id -> value): ``{value: {task:
    {metric: value}}}``, the breakdowns inside each task left out. ASR keeps its error and reference counts,
    so the groups' errors add up to the whole's."""
    groups: dict[str, list[Prediction]] = {}
    for p in preds:
        value = value_of.get(p.id.rsplit("#", 1)[0]) or NO_VALUE
        groups.setdefault(value, []).append(p)
    return {value: {task: {k: v for k, v in m.items() if not isinstance(v, dict | list)}
                    for task, m in compute_metrics(part, scheme=scheme, task_set=task_set).items()}
            for value, part in sorted(groups.items())}


def write_outputs(out_dir: Path, preds: list[Prediction], result: dict) -> None:
    """``predictions.jsonl`` (one prediction a line) and ``metrics.json`` (NaN written as null)."""
    # Atomic: after an hour of generation a full disk is one line, and never a torn predictions file.
    with atomic_path(out_dir / "predictions.jsonl") as tmp, open(tmp, "w", encoding="utf-8") as f:
        for p in preds:
            f.write(json.dumps(p.to_dict(), ensure_ascii=False) + "\n")
    write_text(out_dir / "metrics.json", json.dumps(_finite(result), ensure_ascii=False, indent=2) + "\n")


def read_predictions(path: str | os.PathLike) -> list[Prediction]:
    """The predictions of a ``predictions.jsonl``."""
    with open(path, encoding="utf-8") as f:
        return [Prediction.from_dict(json.loads(line)) for line in f if line.strip()]


def _finite(value):
    """``value`` with NaN/inf floats replaced by ``None``: strict JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
