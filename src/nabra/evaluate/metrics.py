"""Per-task metrics on model predictions, all on text normalized by :func:`nabra.text.arabic.normalize`.

- ``asr``: corpus-level WER and CER (jiwer) under the chosen scheme and always also under the Open
  Universal Arabic ASR Leaderboard's (``wer_leaderboard``, ``cer_leaderboard``), with a per-dialect
  breakdown when the references carry dialect labels.
- ``ssum``/``tsum``: ROUGE-1/2/L F1 (rouge-score, mean over examples) on normalized,
  whitespace-split text: rouge-score's own tokenizer keeps only ``[a-z0-9]`` and scores every
  Arabic text 0.0, even against itself. Optionally BERTScore with a local model.
- ``did``/``ser`` and every declared label task: accuracy, macro-F1 over the configured label set, per-class precision/recall/F1,
  the confusion matrix (with an ``unparsed`` column) and the unparsed rate. An output that parses to
  no label (empty, ambiguous, off-set) is wrong: it is counted and shown, never dropped.

Every generative task also counts ``looped`` answers (:func:`repetition_loop`): the same piece of
text over and over, the failure of long-form decoding (Whisper's and Qwen-ASR's too) whose
insertions push a CER past 1.

A task whose predictions have no references is skipped with a message, not an error.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields

from nabra.corpus.labels import LabelSet
from nabra.errors import NabraError
from nabra.tasks import COMPOSITE_PARTS, DEFAULT_TASKS, TaskSet
from nabra.text.arabic import normalize
from nabra.text.english import is_english, normalize_english

log = logging.getLogger(__name__)

UNPARSED = "unparsed"
"""Column of the confusion matrix for outputs that parse to no label."""
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
PRIMARY = {"asr": ("wer", False), "ssum": ("rougeL", True), "tsum": ("rougeL", True), "did": ("macro_f1", True),
           "ser": ("macro_f1", True), "composite": ("composite", True)}
"""The metric that decides who "wins" a task in reports and claims, and whether higher is better."""


def primary(task: str) -> tuple[str, bool]:
    """``PRIMARY`` of a task; a declared (label) task is decided by its macro-F1."""
    return PRIMARY.get(task, ("macro_f1", True))


@dataclass
class Prediction:
    """One generated answer with its reference: a line of ``predictions.jsonl``."""

    id: str
    """Example id (``<utterance id>#<task>``)."""
    task: str
    prompt: str = ""
    """The instruction the model was given."""
    prediction: str = ""
    """The generated text, special tokens removed."""
    reference: str | None = None
    """The reference answer (transcript, summary or label name); ``None`` when unknown."""
    parsed: str | None = None
    """:func:`nabra.tasks.parse_output` of the prediction: a label (``None`` = unparsed) or the text."""
    label: str | None = None
    """Reference label (label tasks: did, ser, declared ones)."""
    dialect: str | None = None
    """Dialect of the utterance, when known (for the per-dialect ASR breakdown)."""
    truncated: bool = False
    """Generation stopped at its ``max_new_tokens`` budget, not at the end token: the answer may be cut."""
    looped: bool = False
    """The answer is caught in a repetition loop (:func:`repetition_loop`)."""
    language: str | None = None
    """The speech's language (English ASR is scored under Whisper's English normalizer)."""
    duration: float | None = None
    """Seconds of the example's audio (for the ASR breakdown by length); ``None`` for text-only tasks."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Prediction:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


# ============================================================================================
# the public entry points
# ============================================================================================

def compute_metrics(
    predictions: Iterable[Prediction], *, scheme: str = "default", task_set: TaskSet = DEFAULT_TASKS,
    bertscore_model: str | None = None, skipped: list[str] | None = None,
) -> dict[str, dict]:
    """Metrics of every task present in ``predictions``: ``{task: {metric: value, ...}}``.

    ``scheme`` is the normalization of the headline WER/CER and ROUGE (``default`` or
    ``leaderboard``); ``task_set`` holds the tasks, and the label sets macro-F1 runs over.
    ``bertscore_model`` (a local model folder) adds ``bertscore_f1`` to summaries. Tasks without
    references are left out; a line saying so is appended to ``skipped`` and logged.
    """
    by_task: dict[str, list[Prediction]] = {}
    for p in predictions:
        by_task.setdefault(p.task, []).append(p)
    unknown = sorted(set(by_task) - set(task_set))
    if unknown:
        raise NabraError(f"unknown task(s) {unknown} in predictions; tasks are {', '.join(task_set)}")
    out: dict[str, dict] = {}
    for task in (t for t in task_set if t in by_task):
        preds = by_task[task]
        scored = [p for p in preds if _reference(p)]
        if not scored:
            _skip(f"{task}: none of its {len(preds)} prediction(s) has a reference: skipped", skipped)
            continue
        if task == "asr":
            out[task] = asr_metrics(scored, scheme=scheme)
        elif task in ("ssum", "tsum"):
            out[task] = summary_metrics(scored, scheme=scheme, bertscore_model=bertscore_model)
        else:
            out[task] = classification_metrics(scored, _names(task_set.labels(task)))
        if len(scored) < len(preds):
            out[task]["n_without_reference"] = len(preds) - len(scored)
        out[task]["truncated"] = sum(p.truncated for p in preds)  # answers that ran into their token budget
        if task in GENERATIVE:
            out[task]["looped"] = sum(repetition_loop(p.prediction) for p in preds)
    return out


GENERATIVE = ("asr", "ssum", "tsum")
"""Tasks whose answers are free text (and can loop)."""
LOOP_SHORT = re.compile(r"(\S.{0,11}?)\1{5,}", re.DOTALL)
"""A piece of up to 12 characters six times in a row: ``ال ال ال ال ال ال``, ``للللللللل``."""
LOOP_LONG = re.compile(r"(\S.{12,199}?)\1{2,}", re.DOTALL)
"""A piece of 13-200 characters (a phrase, a sentence) three times in a row."""


def repetition_loop(text: str) -> bool:
    """Whether ``text`` repeats one piece of itself back to back — six times for a piece of up to
    12 characters, three times for a longer one (up to 200) — after normalizing spaces. A speaker
    rarely does; a decoder that lost its place in long audio does it until its token budget ends."""
    text = " ".join(text.split()) + " "  # a trailing space lets the last copy of "word " match
    return bool(LOOP_SHORT.search(text) or LOOP_LONG.search(text))


def composite_score(metrics: dict[str, dict], weights: dict[str, float] | None = None,
                    task_set: TaskSet = DEFAULT_TASKS) -> float:
    """Weighted mean of the parts present: ``asr`` (1 - WER, clipped at 0), ``sum`` (ROUGE-L, the
    mean of ssum and tsum), ``did``, ``ser`` and each declared label task (macro-F1). Higher is better.

    ``weights`` overrides the default weight 1.0 of named parts (``task_set``'s declared tasks are
    parts too). NaN when no part is present.
    """
    names = (*COMPOSITE_PARTS, *(s.name for s in task_set.declared()))
    parts = composite_parts(metrics)
    weights = {**dict.fromkeys([*names, *parts], 1.0), **(weights or {})}
    bad = sorted(set(weights) - set(names) - set(parts))
    if bad:
        raise NabraError(f"unknown composite weight(s) {bad}; parts are {', '.join(names)}")
    total = sum(weights[k] for k in parts)
    if not parts or total <= 0:
        return math.nan
    return sum(weights[k] * v for k, v in parts.items()) / total


def composite_parts(metrics: dict[str, dict]) -> dict[str, float]:
    """The values the composite score averages, for the parts present in ``metrics``."""
    parts = {}
    if "asr" in metrics:
        parts["asr"] = max(0.0, 1.0 - metrics["asr"]["wer"])
    rouge = [metrics[t]["rougeL"] for t in ("ssum", "tsum") if t in metrics]
    if rouge:
        parts["sum"] = sum(rouge) / len(rouge)
    for task, m in metrics.items():  # did, ser, then declared label tasks, as evaluated
        if isinstance(m, dict) and "macro_f1" in m:
            parts[task] = m["macro_f1"]
    return parts


# ============================================================================================
# ASR
# ============================================================================================

DURATION_BUCKETS = ((10.0, "< 10 s"), (30.0, "10-30 s"), (300.0, "30-300 s"), (math.inf, ">= 300 s"))
"""Upper bounds (exclusive) and names of the ASR length buckets: a sentence, past Whisper's 30-s window,
past the 300-s window of Qwen2.5-Omni's feature extractor (audio kept whole is encoded in windows)."""


def duration_bucket(seconds: float) -> str:
    """The :data:`DURATION_BUCKETS` name of a clip of ``seconds``."""
    return next(name for bound, name in DURATION_BUCKETS if seconds < bound)


def asr_metrics(preds: Sequence[Prediction], *, scheme: str = "default") -> dict:
    """Corpus-level WER/CER under ``scheme`` and the leaderboard's, plus breakdowns per dialect, per
    language (when mixed) and per audio length (``by_duration``, when the clips span several buckets)."""
    refs = [p.reference for p in preds]
    hyps = [_text(p) for p in preds]
    languages = [p.language for p in preds]
    main = error_rates(refs, hyps, scheme, languages)
    board = main if scheme == "leaderboard" else error_rates(refs, hyps, "leaderboard", languages)
    out = {"wer": main.wer, "cer": main.cer, "wer_leaderboard": board.wer, "cer_leaderboard": board.cer,
           "n": len(preds), "ref_words": main.ref_words, "substitutions": main.substitutions,
           "deletions": main.deletions, "insertions": main.insertions}
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(preds):
        if p.dialect:
            groups.setdefault(p.dialect, []).append(i)
    if groups:
        out["by_dialect"] = {d: main.subset(idx) for d, idx in sorted(groups.items())}
    by_language: dict[str, list[int]] = {}
    for i, p in enumerate(preds):
        by_language.setdefault("en" if is_english(p.language) else (p.language or "ar"), []).append(i)
    if len(by_language) > 1:  # English under Whisper's normalizer, Arabic under the scheme's
        out["by_language"] = {lang: main.subset(idx) for lang, idx in sorted(by_language.items())}
    by_duration: dict[str, list[int]] = {}
    for i, p in enumerate(preds):
        if p.duration is not None:
            by_duration.setdefault(duration_bucket(p.duration), []).append(i)
    if len(by_duration) > 1:  # where long audio is lost: a model that transcribes sentences but not paragraphs
        out["by_duration"] = {b: {**main.subset(idx), "seconds": round(sum(preds[i].duration for i in idx), 1)}
                              for _, b in DURATION_BUCKETS if (idx := by_duration.get(b))}
    return out


@dataclass
class ErrorRates:
    """Corpus WER/CER with the per-utterance error and reference counts they sum."""

    wer: float
    cer: float
    ref_words: int
    substitutions: int
    deletions: int
    insertions: int
    word_errors: list[int]
    word_counts: list[int]
    char_errors: list[int]
    char_counts: list[int]

    def subset(self, indices: Sequence[int]) -> dict:
        """WER/CER of the utterances at ``indices`` (e.g. one dialect's)."""
        words = sum(self.word_counts[i] for i in indices)
        chars = sum(self.char_counts[i] for i in indices)
        return {"wer": _ratio(sum(self.word_errors[i] for i in indices), words),
                "cer": _ratio(sum(self.char_errors[i] for i in indices), chars), "n": len(indices)}


def error_rates(references: Sequence[str], hypotheses: Sequence[str], scheme: str = "default",
                languages: Sequence[str | None] | None = None) -> ErrorRates:
    """WER and CER (jiwer, corpus level) of ``hypotheses`` against ``references`` after
    normalization: under ``scheme`` (Arabic), or Whisper's English normalizer for the utterances
    whose entry in ``languages`` is English. An empty hypothesis is all deletions, not an error."""
    import jiwer

    english = [is_english(x) for x in languages] if languages is not None else [False] * len(references)

    def norm(text: str, en: bool) -> str:
        return normalize_english(text) if en else normalize(text, scheme)

    refs = [norm(r, en) for r, en in zip(references, english, strict=True)]
    hyps = [norm(h, en) for h, en in zip(hypotheses, english, strict=True)]
    if not any(refs):
        raise NabraError(f"every ASR reference is empty after {scheme!r} normalization")
    # The normalizer already stripped and collapsed whitespace: jiwer need only split.
    words = jiwer.process_words(refs, hyps, jiwer.ReduceToListOfListOfWords(), jiwer.ReduceToListOfListOfWords())
    chars = jiwer.process_characters(refs, hyps, jiwer.ReduceToListOfListOfChars(), jiwer.ReduceToListOfListOfChars())
    word_errors = _utterance_errors(words.alignments)
    char_errors = _utterance_errors(chars.alignments)
    word_counts = [len(r) for r in words.references]
    char_counts = [len(r) for r in chars.references]
    return ErrorRates(_ratio(sum(word_errors), sum(word_counts)), _ratio(sum(char_errors), sum(char_counts)),
                      sum(word_counts), words.substitutions, words.deletions, words.insertions,
                      word_errors, word_counts, char_errors, char_counts)


def _utterance_errors(alignments) -> list[int]:
    """Edit operations per utterance from jiwer's alignment chunks (for breakdowns without re-aligning)."""
    out = []
    for chunks in alignments:
        n = 0
        for c in chunks:
            if c.type == "insert":
                n += c.hyp_end_idx - c.hyp_start_idx
            elif c.type != "equal":
                n += c.ref_end_idx - c.ref_start_idx
        out.append(n)
    return out


# ============================================================================================
# summaries
# ============================================================================================

class ArabicTokenizer:
    """A rouge-score tokenizer for Arabic: the project's normalizer, case-folded, split on whitespace.

    rouge-score's default tokenizer lowercases and keeps only ``[a-z0-9]+``: Arabic disappears.
    """

    def __init__(self, scheme: str = "default"):
        self.scheme = scheme

    def tokenize(self, text: str) -> list[str]:
        return normalize(text, self.scheme).casefold().split()


def rouge_scores(references: Sequence[str], hypotheses: Sequence[str], scheme: str = "default") -> dict[str, float]:
    """Mean ROUGE-1/2/L F1 over the pairs, on normalized whitespace tokens."""
    from rouge_score.rouge_scorer import RougeScorer

    scorer = RougeScorer(list(ROUGE_TYPES), tokenizer=ArabicTokenizer(scheme))
    totals = dict.fromkeys(ROUGE_TYPES, 0.0)
    for ref, hyp in zip(references, hypotheses, strict=True):
        for name, score in scorer.score(ref, hyp).items():
            totals[name] += score.fmeasure
    return {name: value / len(references) for name, value in totals.items()}


def require_bertscore():
    """The bert-score module, or a clear error (it is optional: not among Nabra's dependencies)."""
    try:
        import bert_score
    except ImportError:
        raise NabraError("BERTScore needs the bert-score package: pip install bert-score") from None
    return bert_score


def bertscore_f1(references: Sequence[str], hypotheses: Sequence[str], model_path: str, *,
                 scheme: str = "default", num_layers: int | None = None) -> float:
    """Mean BERTScore F1 with the local model at ``model_path`` (all its layers unless ``num_layers``)."""
    bert_score = require_bertscore()
    from transformers import AutoConfig

    if num_layers is None:
        num_layers = AutoConfig.from_pretrained(model_path, local_files_only=True).num_hidden_layers
    cands = [normalize(h, scheme) for h in hypotheses]
    refs = [normalize(r, scheme) for r in references]
    _, _, f1 = bert_score.score(cands, refs, model_type=str(model_path), num_layers=num_layers, verbose=False)
    return float(f1.mean())


def summary_metrics(preds: Sequence[Prediction], *, scheme: str = "default",
                    bertscore_model: str | None = None) -> dict:
    """ROUGE-1/2/L F1 (and BERTScore F1 when a local model is given) of summaries."""
    refs = [p.reference for p in preds]
    hyps = [_text(p) for p in preds]
    out = {**rouge_scores(refs, hyps, scheme), "n": len(preds)}
    if bertscore_model:
        out["bertscore_f1"] = bertscore_f1(refs, hyps, bertscore_model, scheme=scheme)
    return out


# ============================================================================================
# classification
# ============================================================================================

def classification_metrics(preds: Sequence[Prediction], labels: Sequence[str]) -> dict:
    """Accuracy, macro-F1 over ``labels``, per-class P/R/F1, confusion matrix, unparsed rate.

    Unparsed outputs are predictions of the ``unparsed`` class: wrong for accuracy, a false
    negative of their reference class. Macro-F1 averages over the whole configured label set
    (sklearn, ``zero_division=0``): a class absent from references and predictions has F1 0 and
    pulls macro-F1 down; ``macro_f1_present`` averages over the classes the references hold.
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    y_true = [_reference(p) for p in preds]
    y_pred = [p.parsed if p.parsed else UNPARSED for p in preds]
    # References outside the configured set still get a row (and a column), rather than vanish.
    labels = list(labels) + sorted(set(y_true) - set(labels))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=0)
    matrix = confusion_matrix(y_true, y_pred, labels=[*labels, UNPARSED])[: len(labels)]
    present = [i for i, s in enumerate(support) if s > 0]
    return {
        "accuracy": sum(t == p for t, p in zip(y_true, y_pred, strict=True)) / len(preds),
        "macro_f1": float(f1.mean()),
        "macro_f1_present": float(f1[present].mean()) if present else 0.0,
        "unparsed_rate": y_pred.count(UNPARSED) / len(preds),
        "n": len(preds),
        "per_class": {name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                             "support": int(support[i])} for i, name in enumerate(labels)},
        "confusion": {"labels": labels, "columns": [*labels, UNPARSED], "matrix": matrix.tolist()},
    }


# ============================================================================================
# helpers
# ============================================================================================

def _reference(p: Prediction) -> str | None:
    """The reference of a prediction: its label for a label task, else its reference text."""
    ref = p.label if p.label else p.reference
    return ref if ref and ref.strip() else None


def _text(p: Prediction) -> str:
    return p.parsed if p.parsed is not None else p.prediction


def _names(labels: LabelSet | Sequence[str]) -> tuple[str, ...]:
    return tuple(labels.names) if isinstance(labels, LabelSet) else tuple(labels)


def _ratio(errors: int, total: int) -> float:
    return errors / total if total else math.nan


def _skip(message: str, skipped: list[str] | None) -> None:
    log.info(message)
    if skipped is not None:
        skipped.append(message)


HEADLINE = (("asr", "wer", "WER"), ("asr", "cer", "CER"), ("ssum", "rougeL", "SSUM R-L"), ("tsum", "rougeL", "TSUM R-L"),
            ("did", "macro_f1", "DID F1"), ("ser", "macro_f1", "SER F1"))
"""The headline columns (task, metric key, title) of a one-line result table (the demo's, a model card's)."""


def headline_columns(metrics: dict) -> list[tuple[str, str, str]]:
    """:data:`HEADLINE`, then the macro-F1 of each declared label task found in ``metrics``."""
    return [*HEADLINE, *((t, "macro_f1", f"{t.upper()} F1") for t, m in metrics.items()
                         if t not in ("did", "ser") and isinstance(m, dict) and "macro_f1" in m)]
