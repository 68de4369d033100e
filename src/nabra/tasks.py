"""The task registry: instruction templates, how targets are written, how outputs are parsed back.

Five built-in tasks: ``asr`` (transcribe), ``ssum`` (summarize speech), ``tsum`` (summarize a
transcript given as text: no audio), ``did`` (dialect) and ``ser`` (emotion). A run's ``tasks:``
section declares more classification tasks (accent, gender, call outcome ...): a manifest field,
a label set with aliases and templates (:class:`TaskSpec`); the resolved set is a :class:`TaskSet`,
and everything downstream — ADS's label-balanced slots, macro-F1 and the confusion matrix, the
report, ``analyze``'s probabilities — treats a declared task as it treats DID and SER.

Each task has several instruction templates in Arabic and English; the template of an example is
chosen by a hash of (seed, example id), so the same seed always gives the same prompt, whatever the
order examples are built in.
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache

from nabra.corpus.labels import DIALECTS, EMOTIONS, LabelSet, label_key
from nabra.corpus.manifest import FIELD_NAMES, TASKS, Utterance
from nabra.errors import NabraError

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

LABEL_TEMPLATES_EN = (
    "What is {description} in this recording? Answer with one of: {labels}.",
    "Identify {description} ({labels}).",
)
LABEL_TEMPLATES_AR = (
    "ما {description} في هذا التسجيل؟ أجب بواحدة من: {labels}.",
    "حدّد {description} ({labels}).",
)
"""The default templates of a declared task, from its ``description`` (English) and
``description_ar`` (Arabic; without one the task has English templates only)."""

COMPOSITE_PARTS = ("asr", "sum", "did", "ser")
"""Parts of the composite score (:func:`nabra.evaluate.metrics.composite_score`): 1 - WER, ROUGE-L
(mean of ssum/tsum), macro-F1 of DID, of SER; and the macro-F1 of each declared label task, as a
part named by the task."""
LABEL_FIELDS = {"did": "dialect", "ser": "emotion"}


@dataclass(frozen=True, eq=False)  # compared and hashed by identity (its label set holds dicts)
class TaskSpec:
    """One task: what it reads from an utterance, what it answers, and how it asks."""

    name: str
    kind: str
    """``asr``, ``ssum``, ``tsum`` (the built-in generative tasks) or ``label`` (classification)."""
    field: str | None = None
    """Label tasks: the manifest field holding the label (a field of its own or an extra one: ``l1``)."""
    labels: LabelSet | None = None
    """Label tasks: the label set answers are parsed against (names + aliases)."""
    templates: tuple[str, ...] = ()
    """Instruction templates; ``{labels}`` is filled with the label names."""
    builtin: bool = True

    @property
    def audio(self) -> bool:
        """Whether the task's examples feed audio (every task but ``tsum``)."""
        return self.kind != "tsum"

    def value(self, utt: Utterance) -> object:
        """The raw label of ``utt`` (``None``/blank: the task does not serve it)."""
        raw = getattr(utt, self.field) if self.field in FIELD_NAMES else utt.extra.get(self.field)
        return None if raw is None or (isinstance(raw, str) and not raw.strip()) else raw

    def label_of(self, utt: Utterance) -> str | None:
        """The canonical label of ``utt``: the built-in fields hold names as they are; a declared
        task's field may hold any alias (``F`` for ``female``), mapped to its name; None when unset
        or outside the set (validation reports that)."""
        raw = self.value(utt)
        if raw is None:
            return None
        if self.builtin:
            return raw
        return self.labels.lookup(raw)


class TaskSet(Mapping):
    """The tasks of a run, by name: the five built-in ones (with the run's DID/SER label sets) and
    the declared ones, in that order. Immutable; what ``dialects=``/``emotions=`` used to carry."""

    def __init__(self, specs: Mapping[str, TaskSpec]):
        self._specs = dict(specs)

    def __getitem__(self, name: str) -> TaskSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise NabraError(f"unknown task {name!r}; tasks are {', '.join(self._specs)}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self):
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def __repr__(self) -> str:
        return f"TaskSet({', '.join(self._specs)})"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._specs)

    def label_tasks(self) -> tuple[str, ...]:
        """Classification tasks: did, ser and every declared one."""
        return tuple(n for n, s in self._specs.items() if s.kind == "label")

    def declared(self) -> tuple[TaskSpec, ...]:
        return tuple(s for s in self._specs.values() if not s.builtin)

    def labels(self, task: str) -> LabelSet | None:
        return self[task].labels

    def label_sets(self) -> dict[str, LabelSet]:
        """``{task: label set}`` of the label tasks (what :class:`~nabra.schedule.ExampleTable` codes)."""
        return {n: self._specs[n].labels for n in self.label_tasks()}

    def serves(self, utt: Utterance) -> tuple[str, ...]:
        """The tasks ``utt`` can serve: the built-in ones by :meth:`Utterance.tasks`, a declared one
        when the utterance has audio and a label in its field."""
        out = list(utt.tasks())
        if utt.audio is not None:
            out += [s.name for s in self.declared() if s.label_of(utt) is not None]
        return tuple(out)

    def check(self, names) -> None:
        """A ``NabraError`` naming the unknown ones among task ``names``."""
        bad = [t for t in names if t not in self._specs]
        if bad:
            raise NabraError(f"unknown task(s) {', '.join(map(str, bad))}; tasks are {', '.join(self._specs)}")

    @classmethod
    def default(cls, dialects: LabelSet = DIALECTS, emotions: LabelSet = EMOTIONS,
                declared: tuple[TaskSpec, ...] = ()) -> TaskSet:
        """The built-in tasks with these DID/SER label sets, then ``declared``."""
        specs = {t: TaskSpec(t, t if t in ("asr", "ssum", "tsum") else "label", LABEL_FIELDS.get(t),
                             {"did": dialects, "ser": emotions}.get(t), TEMPLATES[t]) for t in TASKS}
        for spec in declared:
            if spec.name in specs:
                raise NabraError(f"tasks.{spec.name}: a built-in task (set its labels with data.dialects/"
                                 "data.emotions)" if spec.name in TASKS else f"tasks.{spec.name}: declared twice")
            specs[spec.name] = spec
        return cls(specs)


DEFAULT_TASKS = TaskSet.default()


def declared_task(name: str, *, field: str, labels: Mapping[str, list[str]] | list[str], description: str = "",
                  description_ar: str = "", templates: list[str] | tuple[str, ...] = ()) -> TaskSpec:
    """A declared classification task, checked: its labels (a list of names, or names -> aliases)
    and its templates (given, or generated from the descriptions). The errors name ``tasks.<name>``."""
    where = f"tasks.{name}"
    if not name.isidentifier() or not name.isascii() or "#" in name:
        raise NabraError(f"{where}: a task name is a plain ASCII identifier (like aid, gid), got {name!r}")
    if not field:
        raise NabraError(f"{where}: field (the manifest field holding the label) is required")
    if isinstance(labels, Mapping):  # name -> aliases (a list, one string, or none)
        aliases = {str(k): tuple(str(a) for a in ([v] if isinstance(v, str | int) else v or ())) for k, v in labels.items()}
    else:
        aliases = {str(k): () for k in labels}
    if len(aliases) < 2:
        raise NabraError(f"{where}: labels must name two or more labels, got {list(aliases)}")
    label_set = LabelSet(field, LabelSet(field, ()).with_names(list(aliases)).names, aliases)
    clash = _alias_clashes(label_set)
    if clash:
        raise NabraError(f"{where}: alias {clash[0]!r} spells two labels ({clash[1]} and {clash[2]})")
    if templates:
        chosen = tuple(templates)
    elif description:
        chosen = tuple(t.replace("{description}", description) for t in LABEL_TEMPLATES_EN)
        if description_ar:
            chosen += tuple(t.replace("{description}", description_ar) for t in LABEL_TEMPLATES_AR)
    else:
        raise NabraError(f"{where}: give templates, or a description to generate them from")
    for t in chosen:
        fields = {f for _, f, _, _ in string.Formatter().parse(t) if f is not None}
        if fields - {"labels"}:
            raise NabraError(f"{where}: template {t!r} has placeholder(s) {sorted(fields - {'labels'})}; "
                             "only {labels} is filled")
    return TaskSpec(name, "label", field, label_set, chosen, builtin=False)


def _alias_clashes(labels: LabelSet) -> tuple[str, str, str] | None:
    seen: dict[str, str] = {}
    for name in labels.names:
        for alias in (name, *labels.aliases.get(name, ())):
            key = label_key(alias)
            if key in seen and seen[key] != name:
                return alias, seen[key], name
            seen.setdefault(key, name)
    return None


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
    """Canonical label of a label task (did, ser, a declared one)."""
    split: str | None = None
    language: str | None = None
    """The speech's language (the utterance's), for per-language WER and English normalization."""


def choose(seed: int, key: str, n: int) -> int:
    """A stable index in ``range(n)`` from (seed, key): independent of order and of PYTHONHASHSEED."""
    digest = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % n


def make_example(utt: Utterance, task: str, *, seed: int = 0, language: str | None = None,
                 task_set: TaskSet = DEFAULT_TASKS) -> Example:
    """Build the example of ``task`` for ``utt``. ``language`` (``ar``/``en``) restricts templates."""
    served = task_set.serves(utt)
    if task not in served:
        raise ValueError(f"utterance {utt.id!r} does not serve task {task!r} (it serves {served})")
    return _example(utt, task_set[task], seed, language)


def _example(utt: Utterance, spec: TaskSpec, seed: int, language: str | None, label: str | None = None) -> Example:
    """``label``: the utterance's canonical label when the caller has it already."""
    templates = _templates(spec, language, speech_language(utt.language))
    template = templates[choose(seed, f"{utt.id}#{spec.name}", len(templates))]
    if spec.kind == "label" and label is None:
        label = spec.label_of(utt)
    target = {"asr": utt.transcript, "ssum": utt.summary, "tsum": utt.summary}.get(spec.kind, label)
    return _build(utt, spec, template, target, label)


def _build(utt: Utterance, spec: TaskSpec, template: str, target: str, label: str | None) -> Example:
    labels = spec.labels
    if "{transcript}" in template:
        instruction = template.format(transcript=utt.transcript, labels=", ".join(labels.names) if labels else "")
    else:  # one shared string per template and label set, not one per example (a million examples)
        instruction = _instruction(template, labels.names if labels else ())
    audio = utt.audio if spec.audio else None
    return Example(f"{utt.id}#{spec.name}", utt.id, spec.name, instruction, target, audio,
                   utt.offset if audio else 0.0, utt.duration if audio else None, label, utt.split, utt.language)


def prompt_example(utt: Utterance, task: str, *, language: str | None = "ar", task_set: TaskSet = DEFAULT_TASKS,
                   target: str = "") -> Example:
    """The example of ``task`` for an utterance that need not have references (new recordings to
    analyze): the first template of ``language`` (so every input gets the same prompt), ``target``
    as the answer to score (a label's name; empty to generate). ``tsum`` needs ``utt.transcript``."""
    spec = task_set[task]
    if spec.audio and utt.audio is None:
        raise ValueError(f"utterance {utt.id!r}: task {task!r} needs audio")
    if task == "tsum" and not utt.transcript:
        raise ValueError(f"utterance {utt.id!r}: tsum summarizes a transcript, and it has none")
    speech = speech_language(utt.language)
    try:
        templates = _templates(spec, language, speech)
    except NabraError:  # a declared task with English templates only, asked in Arabic: its English one
        templates = _templates(spec, None, speech)
    return _build(utt, spec, templates[0], target, target or None)


def iter_examples(utterances, *, tasks=None, split: str | None = None, seed: int = 0, language: str | None = None,
                  task_set: TaskSet = DEFAULT_TASKS) -> Iterator[Example]:
    """Every example of every utterance (of ``split``, when given), for the tasks in ``tasks`` (default:
    all of ``task_set``), as :func:`make_example` builds them. The one utterances -> examples step."""
    specs = [task_set[t] for t in task_set if tasks is None or t in tasks]
    declared = [s for s in specs if not s.builtin]
    builtin = {s.name: s for s in specs if s.builtin}
    for utt in utterances:
        if split is not None and utt.split != split:
            continue
        for task in utt.tasks():
            if task in builtin:
                yield _example(utt, builtin[task], seed, language)
        if declared and utt.audio is not None:
            for spec in declared:
                if (label := spec.label_of(utt)) is not None:  # looked up once: aliases are normalized
                    yield _example(utt, spec, seed, language, label)


@lru_cache(maxsize=1024)
def _instruction(template: str, labels: tuple[str, ...]) -> str:
    return template.format(labels=", ".join(labels))


def speech_language(language: str | None) -> str | None:
    """The key of :data:`SPEECH_TEMPLATES` for an utterance's language (``en``, ``en-US`` -> ``en``), or
    ``None`` for Arabic and any language without templates of its own."""
    base = (language or "").split("-")[0].split("_")[0].lower()
    return base if base in SPEECH_TEMPLATES else None


@lru_cache(maxsize=256)
def _templates(spec: TaskSpec, language: str | None, speech: str | None = None) -> tuple[str, ...]:
    templates = SPEECH_TEMPLATES.get(speech, {}).get(spec.name, spec.templates) if spec.builtin else spec.templates
    if language is None:
        return templates
    arabic = [t for t in templates if any("\u0600" <= ch <= "\u06ff" for ch in t.split("{")[0])]
    chosen = tuple(arabic) if language == "ar" else tuple(t for t in templates if t not in arabic)
    if not chosen:
        raise NabraError(f"no {language!r} templates for task {spec.name!r}"
                         + ("" if spec.builtin else " (give it description_ar or Arabic templates, or set data.language)"))
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


def parse_output(task: str, text: str, *, task_set: TaskSet = DEFAULT_TASKS) -> str | None:
    """The prediction of ``task`` from generated ``text``: a label for a label task, else the stripped text."""
    labels = task_set[task].labels if task in task_set else None
    return parse_label(text, labels) if labels is not None else text.strip()
