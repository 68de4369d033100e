"""Typed run configuration: one YAML file per recipe, validated, overridable as ``key.sub=value``.

Every knob is a dataclass field with its one-line docstring beside it (the documentation lives
here and nowhere else). Unknown keys are errors naming the nearest valid key; values are checked
by type and by each dataclass's ``__post_init__``.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from nabra.corpus.augment import AugmentConfig
from nabra.corpus.labels import label_sets
from nabra.corpus.manifest import MAX_LINE_BYTES
from nabra.errors import NabraError, check_choices, choices_text, printable
from nabra.model.config import CollatorConfig, LoraConfig
from nabra.model.families import AUTO, family
from nabra.schedule import SCHEDULES
from nabra.schedule import config as schedules
from nabra.tasks import COMPOSITE_PARTS, TaskSet, declared_task

CONFIG_DIR = Path(__file__).parent / "configs"


@dataclass
class DataConfig:
    """Where the examples come from."""

    manifest: str = ""
    """Utterance manifest (JSONL); its ``train`` split is trained on."""
    dev_manifest: str | None = None
    """Manifest for the dev evaluation (default: the ``dev`` split of ``manifest``)."""
    tasks: list[str] | None = None
    """Tasks to train (asr, ssum, tsum, did, ser and the run's declared ``tasks:``); null: all of them."""
    language: Literal["ar", "en"] | None = None
    """Instruction templates: ``ar``, ``en`` or both (null)."""
    dialects: list[str] | None = None
    """Dialect label set (default EGY, GLF, LAV, NOR, MSA)."""
    emotions: list[str] | None = None
    """Emotion label set (default neutral, happy, sad, angry, surprised)."""
    skip_invalid: bool = False
    """Quarantine invalid manifest lines (``quarantine.jsonl`` in the run) instead of stopping."""
    check_audio: bool = False
    """Decode every audio file before step 1 (slow on a large corpus). Without it, a file that fails
    to decode during the run is left out of its batch and quarantined with the step."""
    dev_per_task: int = 32
    """Dev examples per task for the periodic dev evaluation (seeded, stratified by label, fixed for the run)."""
    audio_cache_mb: int = 1024
    """Decoded audio kept in memory between epochs (0 = decode every time)."""
    load_workers: int = 4
    """Threads decoding audio for a batch."""
    max_line_bytes: int = MAX_LINE_BYTES
    """Longest manifest line accepted (bytes; default 1 MiB); a longer one is an invalid line."""
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    """Audio augmentation of the training clips (speed, reverberation, noise, gain; each with a probability,
    0 = off, the default), seeded per (train.seed, example, epoch): docs/augment.md."""

    def __post_init__(self):
        if self.tasks is not None and not self.tasks:
            raise NabraError("data.tasks: an empty list trains nothing (null: every task)")
        if self.max_line_bytes < 1:
            raise NabraError(f"data.max_line_bytes must be a positive number of bytes, got {self.max_line_bytes}")
        check_choices(self, "data")


@dataclass
class ModelConfig:
    """Which model and what of it is trained."""

    path: str = ""
    """Checkpoint folder (Qwen2.5-Omni: the release or a thinker-only layout)."""
    family: str = "auto"
    """Model family (``nabra.model.families``): ``auto`` reads it from the checkpoint's ``config.json``;
    a name (``qwen2_5_omni``) is checked against it."""
    init_tiny: bool = False
    """Build a tiny random thinker at ``path`` first when the folder is empty or absent (the CPU demo)."""
    dtype: str = "float32"
    """Weights dtype: float32, bfloat16 or float16."""
    finetune: Literal["lora", "full"] = "lora"
    """``lora`` (adapters on the language model) or ``full`` (every weight; for tiny models)."""
    lora: LoraConfig = field(default_factory=LoraConfig)
    """LoRA settings (used when finetune is lora)."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass (saves memory on large models)."""
    attn_implementation: Literal["auto", "sdpa", "eager", "flash_attention_2", "flash_attention_3",
                                 "flex_attention"] = "auto"
    """transformers' attention kernel: ``auto`` (what the checkpoint loads with, SDPA; with ``collate.packing``
    the language model runs SDPA one packed sequence at a time, no length² mask), ``sdpa``, ``eager``,
    ``flash_attention_2`` (CUDA, the flash-attn package: packed sequences run its varlen kernels) or
    ``flex_attention``."""

    def __post_init__(self):
        check_choices(self, "model")
        if self.family != AUTO:
            family(self.family)  # a clear error naming the known families


@dataclass
class TrainConfig:
    """The optimisation loop."""

    max_steps: int = 1000
    """Optimizer steps to run (ignored when ``epochs`` is set)."""
    epochs: float | None = None
    """Train for this many passes over the training examples instead of ``max_steps``."""
    batch_size: int = 16
    """Global batch: examples per optimizer step, over all processes and accumulation steps."""
    micro_batch_size: int | None = None
    """Examples per forward pass and process (default: the whole global batch of the process): equal
    counts, length-grouped. For corpora of similar lengths."""
    micro_batch_tokens: int | None = None
    """Instead of ``micro_batch_size``: micro-batches of at most this many tokens each (prompt + audio
    placeholders + answer, padding included; with ``collate.packing`` the sum of the lengths), spread
    over the processes by their tokens. For corpora whose lengths differ widely (2-s labels beside
    5-minute articles): the budget sizes the memory of every forward pass, not its worst case.
    ``nabra model size MODEL --gpu-memory 80GiB`` suggests one."""
    loss_reduction: Literal["token", "example"] = "token"
    """How a global batch's answer tokens are averaged: ``token`` (every answer token weighs the same:
    a 40-token transcript outweighs a one-word dialect label 40 to 1) or ``example`` (each example's
    mean token loss, then the mean over examples: every example weighs the same, whatever its task)."""
    lr: float = 2e-4
    """Peak learning rate."""
    min_lr_ratio: float = 0.1
    """The cosine decay ends at ``lr * min_lr_ratio``."""
    warmup_steps: int = 30
    """Linear warm-up steps."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    max_grad_norm: float = 1.0
    """Gradient clipping (0 = no clipping; the norm is logged either way)."""
    precision: Literal["fp32", "bf16"] = "fp32"
    """``fp32`` or ``bf16`` (autocast; GPUs with bf16 support)."""
    seed: int = 0
    """Seed of the schedule, the initialisation of new weights and dropout."""
    save_every: int = 100
    """Write a checkpoint every N steps (0 = only the final adapter)."""
    keep_last: int = 3
    """Checkpoints kept (older ones are deleted)."""
    eval_every: int = 100
    """Dev evaluation every N steps (0 = never): per-task dev loss, and with ``eval_metrics`` WER/ROUGE/F1."""
    eval_metrics: bool = True
    """At each dev evaluation also generate answers and score them; the best composite is kept as ``best/``."""
    composite_weights: dict = field(default_factory=dict)
    """Weights of the composite score's parts (asr, sum, did, ser; default equal): the same for choosing
    ``best/`` and for `nabra evaluate` of the run."""
    eval_batch_size: int = 32
    """Examples per generation batch in dev evaluations."""
    log_every: int = 1
    """Write a metrics line every N steps."""
    volatility_window: int = 50
    """Steps in the sliding window of the loss/gradient-norm variance diagnostics."""
    tensorboard: bool = False
    """Also log to TensorBoard (``tb/`` in the run folder; needs the tensorboard package)."""

    def __post_init__(self):
        check_choices(self, "train")
        for name in ("max_steps", "batch_size", "keep_last", "log_every", "volatility_window"):
            if getattr(self, name) <= 0:
                raise NabraError(f"train.{name} must be positive, got {getattr(self, name)}")
        if self.micro_batch_tokens is not None:
            if self.micro_batch_tokens <= 0:
                raise NabraError(f"train.micro_batch_tokens must be positive, got {self.micro_batch_tokens}")
            if self.micro_batch_size is not None:
                raise NabraError(f"train.micro_batch_size ({self.micro_batch_size}) and train.micro_batch_tokens "
                                 f"({self.micro_batch_tokens}) are two ways to cut a batch: set one (override the other "
                                 "with =null, e.g. train.micro_batch_tokens=null)")


@dataclass
class ScheduleConfig:
    """Which data schedule (``name``), with the settings of each registered schedule
    (``schedule.<name>.<field>``; see docs/schedules.md). One field per entry of
    :data:`nabra.schedule.SCHEDULES`, typed by its ``config_class`` (a test checks they match)."""

    name: str = "uniform"
    """The schedule: one of the registry's names."""
    uniform: schedules.UniformConfig = field(default_factory=schedules.UniformConfig)
    tpc: schedules.TPCConfig = field(default_factory=schedules.TPCConfig)
    ads: schedules.ADSConfig = field(default_factory=schedules.ADSConfig)
    tpc_ads: schedules.TPCADSConfig = field(default_factory=schedules.TPCADSConfig)
    balanced: schedules.BalancedConfig = field(default_factory=schedules.BalancedConfig)
    adaptive: schedules.AdaptiveConfig = field(default_factory=schedules.AdaptiveConfig)

    def __post_init__(self):
        if self.name not in SCHEDULES:
            raise NabraError(f"schedule.name must be {choices_text(list(SCHEDULES))}, got {self.name!r}")


@dataclass
class TaskConfig:
    """A classification task declared by the run (``tasks.<name>``, e.g. ``aid`` for accent, ``gid`` for
    gender): everything downstream treats it as DID and SER are treated (label-balanced ADS slots,
    macro-F1 and confusion in evaluation and report, probabilities in ``nabra analyze``)."""

    field: str = ""
    """Manifest field holding the label: an extra field (``l1``, ``gender``) or one of the manifest's own."""
    labels: dict[str, list[str]] | list[str] = dataclasses.field(default_factory=dict)
    """Label names, each with its other spellings (``female: [F, أنثى]``): the field may hold any of them,
    and a generated answer spelling one is parsed to the name. A plain list: names without aliases."""
    description: str = ""
    """What the label is, in English (``the speaker's native language``): the default templates are made from it."""
    description_ar: str = ""
    """The same in Arabic (``اللغة الأم للمتحدث``): adds Arabic default templates."""
    templates: list[str] = dataclasses.field(default_factory=list)
    """Instruction templates instead of the generated ones; ``{labels}`` is replaced by the label names."""


@dataclass
class RunConfig:
    """A whole training run."""

    output_dir: str = "runs/run"
    """The run folder: resolved config, metrics, checkpoints, final adapter."""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    collate: CollatorConfig = field(default_factory=CollatorConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tasks: dict[str, TaskConfig] = field(default_factory=dict)
    """Classification tasks declared by the run, by name (see :class:`TaskConfig`); the five built-in
    tasks need no declaration."""

    def __post_init__(self):
        self.tasks = {str(name): t if isinstance(t, TaskConfig) else from_dict(TaskConfig, t or {}, f"tasks.{name}")
                      for name, t in (self.tasks or {}).items()}
        task_set = self.task_set()  # checks every declaration
        if self.data.tasks is None:
            self.data.tasks = list(task_set.names)
        _check_task_names(self, task_set)

    def task_set(self) -> TaskSet:
        """The run's tasks: the built-in five with the run's DID/SER label sets, then the declared ones.
        Built once per config (again only if those settings change): its task specs key the template
        caches, which a new set at every call would keep missing."""
        key = repr((self.data.dialects, self.data.emotions, self.tasks))
        cached = self.__dict__.get("_task_set")
        if cached is not None and cached[0] == key:
            return cached[1]
        dialects, emotions = label_sets(self.data.dialects, self.data.emotions)
        declared = tuple(declared_task(name, field=t.field, labels=t.labels, description=t.description,
                                       description_ar=t.description_ar, templates=t.templates)
                         for name, t in self.tasks.items())
        task_set = TaskSet.default(dialects, emotions, declared)
        self.__dict__["_task_set"] = (key, task_set)  # not a field: not in config.yaml, not compared
        return task_set


def _check_task_names(cfg: RunConfig, task_set: TaskSet) -> None:
    """Every task a section names is one of the run's; TPC's default stages take the declared tasks
    into their second stage (with did and ser: labels after the ASR foundation)."""
    known = ", ".join(task_set.names)

    def check(where: str, names) -> None:
        bad = [t for t in names if t not in task_set]
        if bad:
            raise NabraError(f"{where}: unknown task(s) {bad}; tasks are {known}")

    check("data.tasks", cfg.data.tasks)
    declared = [s.name for s in task_set.declared()]
    sched = cfg.schedule
    for where, tpc in (("schedule.tpc", sched.tpc), ("schedule.tpc_ads.tpc", sched.tpc_ads.tpc)):
        if declared and tpc.stages == [list(s) for s in schedules.DEFAULT_STAGES]:
            tpc.stages = [s if i == 0 else [*s[:3], *declared, *s[3:]] for i, s in enumerate(tpc.stages)]
        for stage in tpc.stages:
            check(f"{where}.stages", stage)
    check("schedule.uniform.weights", sched.uniform.weights)
    check("schedule.tpc_ads.plateau_task", [sched.tpc_ads.plateau_task])
    parts = (*COMPOSITE_PARTS, *declared)
    bad = sorted(set(cfg.train.composite_weights) - set(parts))
    if bad:
        raise NabraError(f"train.composite_weights: unknown part(s) {bad}; parts are {', '.join(parts)}")


# -- building dataclasses from plain data ------------------------------------------------------

def from_dict(cls, data: Any, where: str = ""):
    """Build dataclass ``cls`` from ``data`` (nested dicts), checking keys and types."""
    if not isinstance(data, dict):
        raise NabraError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"; did you mean {(where + '.' if where else '') + close[0]!r}?" if close else ""
            raise NabraError(f"unknown config key {shown_key(path)}{hint} (valid: {', '.join(fields)})")
        kwargs[key] = _coerce(hints[key], value, path)
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise NabraError(f"{where or 'config'}: {e}") from None


def _coerce(tp, value, path: str):
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise NabraError(f"{path} must be {choices_text(typing.get_args(tp))}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        for arg in args[:-1]:  # the first type that takes the value (float | str: 0.5 or "plateau")
            try:
                return _coerce(arg, value, path)
            except NabraError:
                continue
        last = args[-1]
        if typing.get_origin(last) is typing.Literal and value not in typing.get_args(last):  # null is allowed too
            raise NabraError(f"{path} must be {choices_text((*typing.get_args(last), None))}, got {value!r}")
        return _coerce(last, value, path)
    if dataclasses.is_dataclass(tp):
        return value if isinstance(value, tp) else from_dict(tp, value or {}, path)
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise NabraError(f"{path}: expected a list, got {value!r}")
        (item,) = typing.get_args(tp)[:1] or (Any,)
        items = [_coerce(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):
        try:  # YAML 1.1 reads "2e-3" (no dot) as a string
            return float(value)
        except ValueError:
            pass
    if tp in (int, float, str, bool) and not (isinstance(value, tp) and not (tp is int and isinstance(value, bool))):
        raise NabraError(f"{path}: expected {tp.__name__}, got {value!r}")
    if (tp is dict or origin is dict) and not isinstance(value, dict):
        raise NabraError(f"{path}: expected a mapping, got {value!r}")
    return value


def to_dict(obj) -> dict:
    """Plain nested dicts of a config (tuples become lists, for YAML)."""
    def plain(v):
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, list | tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v
    return plain(obj)


# -- files and overrides -------------------------------------------------------------------------

def shipped_recipes() -> dict[str, Path]:
    """Every shipped file a user starts from, by name: the run recipes (``omni7b-lora-ads``) and the
    ``accelerate`` launch configs (``accelerate/fsdp``)."""
    files = sorted(CONFIG_DIR.glob("*.yaml")) + sorted((CONFIG_DIR / "accelerate").glob("*.yaml"))
    return {p.relative_to(CONFIG_DIR).with_suffix("").as_posix(): p for p in files}


def shipped_recipe(name: str) -> Path:
    """The shipped file called ``name`` (a recipe or ``accelerate/<config>``), or an error listing them."""
    found = shipped_recipes().get(name.removesuffix(".yaml"))
    if found is None:
        near = difflib.get_close_matches(name, shipped_recipes(), n=1)
        raise NabraError(f"{name}: not a shipped recipe" + (f" (did you mean {near[0]!r}?)" if near else "")
                         + "; `nabra recipe list` lists them")
    return found


def copy_recipe(name: str, dest: str | Path | None = None) -> Path:
    """Copy the shipped file ``name`` to ``dest`` (a file, or a folder to put it in; default: the current
    folder) to edit; an existing file is never overwritten. Returns the new file."""
    src = shipped_recipe(name)
    folder = dest is not None and (Path(dest).is_dir() or str(dest).endswith(("/", "\\")))
    dest = Path(dest) / src.name if folder else Path(dest) if dest is not None else Path(src.name)
    if dest.exists():
        raise NabraError(f"{dest} exists: nabra recipe copy never overwrites a file (give another path)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "x", encoding="utf-8") as f:  # "x": refuse a file that appeared meanwhile
        f.write(src.read_text(encoding="utf-8"))
    return dest


def resolve_config_path(name: str | Path) -> Path:
    """A YAML path, or the name of a shipped recipe (``demo``, ``omni7b-lora-ads`` ...)."""
    path = Path(name)
    if path.is_file():
        return path
    shipped = CONFIG_DIR / f"{name}.yaml"
    if shipped.is_file():
        return shipped
    names = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    raise NabraError(f"{name}: no such config file, and not a shipped recipe ({', '.join(names)})")


def apply_override(data: dict, override: str) -> None:
    """Apply one ``key.sub=value`` override (the value is parsed as YAML) to nested ``data``."""
    if "=" not in override:
        raise NabraError(f"override {override!r} is not of the form key.sub=value")
    key, raw = override.split("=", 1)
    parts = key.strip().split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise NabraError(f"override {override!r}: {part!r} is not a section")
    node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else None


class _DuplicateKey(Exception):
    def __init__(self, key, first: int, again: int):
        super().__init__(key)
        self.key, self.first, self.again = key, first, again


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, but a key given twice in one mapping is an error, not a silent overwrite
    (a second ``train:`` section would replace the first whole)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                if isinstance(key, typing.Hashable) and key in seen:
                    raise _DuplicateKey(key, seen[key], line)
                if isinstance(key, typing.Hashable):
                    seen[key] = line
        return super().construct_mapping(node, deep)


def read_yaml(path: Path):
    """The YAML document of ``path``: one-line errors that name the place, never echo the file's text
    (a path given by mistake may be a secret), and refuse duplicate keys at any depth."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise NabraError(f"{path}: not UTF-8 text (byte 0x{e.object[e.start]:02X} at offset {e.start}): "
                         "a recipe is a UTF-8 YAML file") from None
    except IsADirectoryError:
        raise NabraError(f"{path}: is a folder, not a YAML recipe") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - _StrictLoader is a SafeLoader
    except _DuplicateKey as e:
        raise NabraError(f"{path}:{e.again}: duplicate key {shown_key(e.key)} (first on line {e.first}): "
                         "the later one would silently replace the earlier; keep one") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        raise NabraError(f"{where}: not valid YAML ({getattr(e, 'problem', None) or type(e).__name__})") from None


def shown_key(key) -> str:
    """A config key as an error shows it: quoted, control and bidi characters escaped, and the code points
    of any non-ASCII letter named (a Cyrillic а in ``trаin`` looks like the Latin one)."""
    text = printable(repr(str(key)))
    odd = [c for c in str(key) if ord(c) > 0x7E]
    if not odd:
        return text
    names = ", ".join(f"U+{ord(c):04X} {unicodedata.name(c, 'unnamed')}" for c in dict.fromkeys(odd))
    return f"{text} (it holds {names})"


def load_config(path: str | Path, overrides: list[str] = ()) -> RunConfig:
    """Read a recipe YAML, apply overrides, validate. Relative paths stay relative to the cwd."""
    path = resolve_config_path(path)
    data = read_yaml(path)
    data = {} if data is None else data
    sections = [f.name for f in dataclasses.fields(RunConfig)]
    if not isinstance(data, dict) or (data and not any(k in sections for k in data)):
        what = "a mapping with none of them" if isinstance(data, dict) else f"a {type(data).__name__}"
        raise NabraError(f"{path}: not a Nabra recipe: expected a YAML mapping of its sections "
                         f"({', '.join(sections)}), got {what}")
    for override in overrides:
        apply_override(data, override)
    return from_dict(RunConfig, data)


def dump_config(cfg: RunConfig) -> str:
    """The resolved config as YAML (what a run folder's ``config.yaml`` holds)."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True)
