"""The task registry: instruction templates, how targets are written, how outputs are parsed back.

Five tasks: ``asr`` (transcribe), ``ssum`` (summarize speech), ``tsum`` (summarize a transcript given
as text: no audio), ``did`` (dialect) and ``ser`` (emotion). Each has several instruction templates
in Arabic and English; the template of an example is chosen by a hash of (seed, example id), so the
same seed always gives the same prompt, whatever the order examples are built in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from nabra.corpus.labels import DIALECTS, EMOTIONS, LabelSet, label_key
from nabra.corpus.manifest import TASKS, Utterance

SYSTEM_PROMPT = "You are a helpful assistant that understands Arabic speech."

TEMPLATES: dict[str, tuple[str, ...]] = {
    "asr": (
        "Transcribe the Arabic speech.",
        "Write down exactly what is said in this recording.",
        "Convert the speech to Arabic text.",
        "اكتب ما يقال في هذا التسجيل.",
        "حوّل الكلام المسموع إلى نص عربي.",
        "فرّغ هذا المقطع الصوتي نصياً.",
    ),
    "ssum": (
        "Summarize the spoken Arabic news in one sentence.",
        "Listen and give a one-sentence summary in Arabic.",
        "What is the gist of this recording? Answer in Arabic.",
        "لخّص هذا الخبر المسموع في جملة واحدة.",
        "استمع واكتب ملخصاً قصيراً لما قيل.",
        "ما خلاصة هذا التسجيل؟",
    ),
    "tsum": (
        "Summarize the following Arabic text in one sentence:\n{transcript}",
        "Give a one-sentence Arabic summary of this text:\n{transcript}",
        "لخّص النص التالي في جملة واحدة:\n{transcript}",
        "اكتب ملخصاً قصيراً للنص التالي:\n{transcript}",
    ),
    "did": (
        "Which Arabic dialect is spoken? Answer with one of: {labels}.",
        "Identify the dialect of the speaker ({labels}).",
        "ما لهجة المتحدث؟ أجب بواحدة من: {labels}.",
        "حدّد اللهجة العربية في هذا التسجيل ({labels}).",
    ),
    "ser": (
        "What emotion does the speaker express? Answer with one of: {labels}.",
        "Classify the speaker's emotion ({labels}).",
        "ما الشعور الذي يعبر عنه المتحدث؟ أجب بواحدة من: {labels}.",
        "صنّف انفعال المتحدث ({labels}).",
    ),
}

SPEECH_TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "asr": (
            "Transcribe the English speech.",
            "Write down exactly what is said in this recording.",
            "Convert the speech to English text.",
            "اكتب ما يقال في هذا التسجيل باللغة الإنجليزية.",
            "فرّغ هذا المقطع الصوتي الإنجليزي نصياً.",
        ),
    },
}
"""Templates of a task for speech in another language than Arabic (the utterance's ``language``):
English ASR asks for English text, in English or Arabic prompts alike."""

METRICS: dict[str, tuple[str, ...]] = {
    "asr": ("wer", "cer"),
    "ssum": ("rouge1", "rouge2", "rougeL"),
    "tsum": ("rouge1", "rouge2", "rougeL"),
    "did": ("accuracy", "macro_f1"),
    "ser": ("accuracy", "macro_f1"),
}
AUDIO_TASKS = frozenset({"asr", "ssum", "did", "ser"})
LABEL_FIELDS = {"did": "dialect", "ser": "emotion"}


@dataclass(frozen=True, slots=True)
class Example:
    """One instruction example: an utterance seen through one task."""

    id: str
    """``<utterance id>#<task>``."""
    utt_id: str
    task: str
    instruction: str
    """The user's instruction text (for ``tsum`` it contains the transcript)."""
    target: str
    """The answer the model should write."""
    audio: str | None = None
    offset: float = 0.0
    duration: float | None = None
    label: str | None = None
    """Canonical label for ``did``/``ser``."""
    split: str | None = None
    language: str | None = None
    """The speech's language (the utterance's), for per-language WER and English normalization."""


def choose(seed: int, key: str, n: int) -> int:
    """A stable index in ``range(n)`` from (seed, key): independent of order and of PYTHONHASHSEED."""
    digest = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % n


def make_example(
    utt: Utterance, task: str, *, seed: int = 0, language: str | None = None,
    dialects: LabelSet = DIALECTS, emotions: LabelSet = EMOTIONS,
) -> Example:
    """Build the example of ``task`` for ``utt``. ``language`` (``ar``/``en``) restricts templates."""
    if task not in utt.tasks():
        raise ValueError(f"utterance {utt.id!r} does not serve task {task!r} (it serves {utt.tasks()})")
    return _example(utt, task, seed, language, dialects, emotions)


def _example(utt: Utterance, task: str, seed: int, language: str | None, dialects: LabelSet,
             emotions: LabelSet) -> Example:
    templates = _templates(task, language, speech_language(utt.language))
    template = templates[choose(seed, f"{utt.id}#{task}", len(templates))]
    label = getattr(utt, LABEL_FIELDS[task]) if task in LABEL_FIELDS else None
    target = {"asr": utt.transcript, "ssum": utt.summary, "tsum": utt.summary}.get(task, label)
    return _build(utt, task, template, {"did": dialects, "ser": emotions}.get(task), target, label)


def _build(utt: Utterance, task: str, template: str, labels: LabelSet | None, target: str, label: str | None) -> Example:
    if "{transcript}" in template:
        instruction = template.format(transcript=utt.transcript, labels=", ".join(labels.names) if labels else "")
    else:  # one shared string per template and label set, not one per example (a million examples)
        instruction = _instruction(template, labels.names if labels else ())
    audio = utt.audio if task in AUDIO_TASKS else None
    return Example(f"{utt.id}#{task}", utt.id, task, instruction, target, audio, utt.offset if audio else 0.0,
                   utt.duration if audio else None, label, utt.split, utt.language)


def prompt_example(utt: Utterance, task: str, *, language: str | None = "ar", dialects: LabelSet = DIALECTS,
                   emotions: LabelSet = EMOTIONS, target: str = "") -> Example:
    """The example of ``task`` for an utterance that need not have references (new recordings to
    analyze): the first template of ``language`` (so every input gets the same prompt), ``target``
    as the answer to score (a label's name; empty to generate). ``tsum`` needs ``utt.transcript``."""
    if task in AUDIO_TASKS and utt.audio is None:
        raise ValueError(f"utterance {utt.id!r}: task {task!r} needs audio")
    if task == "tsum" and not utt.transcript:
        raise ValueError(f"utterance {utt.id!r}: tsum summarizes a transcript, and it has none")
    return _build(utt, task, _templates(task, language, speech_language(utt.language))[0],
                  {"did": dialects, "ser": emotions}.get(task), target, target or None)


def iter_examples(utterances, *, tasks=TASKS, split: str | None = None, seed: int = 0, language: str | None = None,
                  dialects: LabelSet = DIALECTS, emotions: LabelSet = EMOTIONS) -> Iterator[Example]:
    """Every example of every utterance (of ``split``, when given), for the tasks in ``tasks``, as
    :func:`make_example` builds them. The one utterances -> examples step."""
    for utt in utterances:
        if split is not None and utt.split != split:
            continue
        for task in utt.tasks():
            if task in tasks:
                yield _example(utt, task, seed, language, dialects, emotions)


@lru_cache(maxsize=1024)
def _instruction(template: str, labels: tuple[str, ...]) -> str:
    return template.format(labels=", ".join(labels))


def speech_language(language: str | None) -> str | None:
    """The key of :data:`SPEECH_TEMPLATES` for an utterance's language (``en``, ``en-US`` -> ``en``), or
    ``None`` for Arabic and any language without templates of its own."""
    base = (language or "").split("-")[0].split("_")[0].lower()
    return base if base in SPEECH_TEMPLATES else None


@lru_cache(maxsize=64)
def _templates(task: str, language: str | None, speech: str | None = None) -> tuple[str, ...]:
    if task not in TEMPLATES:
        raise ValueError(f"unknown task {task!r}; tasks are {', '.join(TASKS)}")
    templates = SPEECH_TEMPLATES.get(speech, {}).get(task, TEMPLATES[task])
    if language is None:
        return templates
    arabic = [t for t in templates if any("\u0600" <= ch <= "\u06ff" for ch in t.split("{")[0])]
    chosen = tuple(arabic) if language == "ar" else tuple(t for t in templates if t not in arabic)
    if not chosen:
        raise ValueError(f"no {language!r} templates for task {task!r}")
    return chosen


def parse_label(text: str, labels: LabelSet) -> str | None:
    """Map generated text to a canonical label, or ``None`` (unparsed).

    Exact name or alias first (case-, diacritic- and punctuation-insensitive); otherwise the one
    label whose name or alias occurs as whole words in the text. Ambiguous text is unparsed.
    """
    key = label_key(text)
    if not key or key in labels.keys:  # the same table as LabelSet.lookup
        return labels.keys.get(key)
    padded = f" {key} "
    found = {name for alias, name in labels.keys.items() if f" {alias} " in padded}
    return found.pop() if len(found) == 1 else None


def parse_output(task: str, text: str, *, dialects: LabelSet = DIALECTS, emotions: LabelSet = EMOTIONS) -> str | None:
    """The prediction of ``task`` from generated ``text``: a label for did/ser, else the stripped text."""
    if task == "did":
        return parse_label(text, dialects)
    if task == "ser":
        return parse_label(text, emotions)
    return text.strip()
