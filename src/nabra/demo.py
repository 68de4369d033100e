"""`nabra demo`: the main job on the embedded default, end to end, on the CPU.

As in the paper's setting, the schedules fine-tune a model that already knows ASR (and emotions):

1. synthesize the fine-tuning corpus (once);
2. build the **base** (once, cached): a tiny Qwen2.5-Omni thinker with a character-level Arabic
   vocabulary, pre-trained on ASR and SER (recipe ``demo-base``) over its own synthetic clips — other
   sentences than the fine-tuning corpus's (any that coincide are dropped, and counted);
3. fine-tune the base with LoRA once per schedule and seed, on the same budget (recipe ``demo``),
   several runs at a time (one CPU thread each: the results do not depend on how many run at once);
4. evaluate the base and every run on the test split (unseen voices; the base never heard its sentences);
5. write the schedule-comparison report, the paper's claims tested on these runs included.

Finished pieces are reused when the demo is run again.
"""

from __future__ import annotations

import json
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path

from rich.console import Console
from rich.table import Table

from nabra.config import dump_config, load_config
from nabra.corpus.manifest import iter_manifest, write_manifest
from nabra.corpus.synth import SynthConfig, news_words, summary_pairs, synthesize
from nabra.corpus.validate import ValidationReport, validate_manifest
from nabra.errors import NabraError
from nabra.evaluate.metrics import DURATION_BUCKETS, HEADLINE
from nabra.evaluate.report import make_report
from nabra.evaluate.report.differs import rare_labels
from nabra.evaluate.runner import evaluate
from nabra.files import read_json, write_text
from nabra.model.families import Family
from nabra.model.families import family as family_named
from nabra.model.families.qwen2_5_omni import QWEN2_5_OMNI
from nabra.model.load import inspect_family
from nabra.model.tiny import TinyConfig, init_tiny
from nabra.progress import progress_bar
from nabra.run.folder import RunFolder
from nabra.schedule import SCHEDULE_NAMES
from nabra.train import train

# Sizes. The fine-tuning corpus: few news paragraphs and few of them over 30 s (long audio is most
# of a CPU step); dialect words only (a tiny model needs a dense lexical cue). The base: short
# clips of other sentences, ASR and SER. Measured on 2 cores: see docs/demo.md.
SHAPE = {
    # ADI-17's training videos per region (Shon et al. 2020; swshon/arabic-dialect-identification
    # data/train/utt2lang: 18,644 videos, countries mapped to regions, SUD left out) scaled to 84.8 %, and MSA
    # at its ADI-5 share, 15.2 % (qcri/dialectID data/train.vardial2017/wav.lst): most / least 2.5.
    "dialect_shares": {"EGY": 21.0, "GLF": 30.2, "LAV": 12.1, "NOR": 21.5, "MSA": 15.2},
    # IEMOCAP's counts of the five emotions (Busso et al. 2008; 4,597 utterances, "hap" alone): neutral leads,
    # surprise is rare — most / least 16. No Arabic emotion corpus publishes per-label counts.
    "emotion_shares": {"neutral": 37.2, "happy": 12.9, "sad": 23.6, "angry": 24.0, "surprised": 2.3},
    # The labelled share of the transcribed clips: the square root of the real hours' ratio (MGB-2 1,200 h of
    # ASR : ADI-5 53.6 h of dialect : KSUEmotions 5 h of emotion), a compression fixed before measuring.
    "dialect_fraction": 0.21, "emotion_fraction": 0.065,
    # The test split label-balanced and fully labelled: macro-F1 measures the rare labels on as many clips.
    "balanced_splits": ["test"],
    # Three times the clips, the test and dev splits kept at the default demo's ~100 (evaluation time): the
    # shape above leaves the rarest labels a few dozen training examples (MSA 85, LAV 67; happy 22).
    "utterances": 3000, "split_shares": {"train": 0.93, "dev": 0.035, "test": 0.035},
    # The base knows text summarization, as a real LLM does before it hears a summary spoken: 400 text-only
    # news/summary pairs in its pre-training (ASR 3 : SER 1 : TSUM 1), and a vocabulary with the news words
    # whole (a real BPE has its frequent words; letters elsewhere, for ASR): base test TSUM ROUGE-L 0.64,
    # not 0.13 letter by letter (docs/notes/demo-shaped-corpus.md).
    "base_summary_pairs": 400, "whole_news_words": True, "vocab_size": 3000,
    # and it has heard news read aloud (10 % of its clips are short news paragraphs, for ASR and TSUM):
    # fine-tuned SSUM ROUGE-L 0.17-0.22 from such a base, 0.04-0.11 without (one seed each).
    "base_summary_fraction": 0.1,
    # Each step laid in one packed row (0.20 s a base step, not 0.31 s): the time saved buys the base 2,000 steps,
    # not 1,300 (base test CER 0.53, not 0.62; a fine-tuned SER on the rare emotions that the shorter base lacked).
    # More SER in the base (ASR 3 : SER 2 : TSUM 1, or 3,000 steps at 3 : 1.5 : 1) lifted the base's SER to
    # 0.68 / 0.56, but every fine-tuned short-clip CER to 0.48-0.61 (docs/notes/demo-shaped-corpus.md).
    "packing": True, "base_steps": 2000,
    # The test split heard clean and under one noise condition (`nabra evaluate --condition`): babble of the test
    # split's other voices at 10 dB, the same for every run, for the report's robustness section.
    "conditions": ["noise:snr=10,source=babble"],
    # 40 news paragraphs in the test split, not the 5 its share gives: over 5 clips a summary score swung by seed
    # and clip (balanced's SSUM 0.13 ± 0.06 on 5 clips, 0.39 ± 0.03 on 40). Added after the other clips, which
    # stay the same; they are ASR's long rows too, and the demo takes 24 min 14 s, not 22 min 28 s.
    "min_summaries": {"test": 40},
}
"""The demo's fine-tuning corpus and base (``nabra demo``), the corpus's shape from real corpora (docs/demo.md):
the skews under which balance and curricula matter. ``nabra demo --balanced`` leaves it out."""
SHAPE_QUICK = {"utterances": 1500, "base_utterances": 1000, "base_steps": 500}
"""``nabra demo --quick`` on the skewed corpus: half the clips (test and dev about 50 each), a shorter base, and
:data:`QUICK`'s one seed of 80 steps a schedule — every task still learned by its best schedule (tested)."""
QUICK_LEAVES_OUT = ("min_summaries",)
"""Keys of :data:`SHAPE` the quick demo goes without: its test split keeps the 3 paragraphs its share gives (20 more
cost 38 s of its 5 minutes, 4 min 39 s, and a one-seed check that everything works makes no claim about the
summaries); left out of the plan, a quick demo folder made before the full demo had them is still its plan."""
SYNTH_SHAPE = ("dialect_shares", "emotion_shares", "dialect_fraction", "emotion_fraction", "balanced_splits",
               "split_shares", "min_summaries")
"""The keys of :data:`SHAPE` that are the fine-tuning corpus's :class:`SynthConfig` knobs."""
QUICK = {"utterances": 600, "steps": 80, "seeds": 1, "summary_fraction": 0.05, "long_fraction": 0.1,
         "dialect_density": 1.0, "base_utterances": 1000, "base_steps": 240, "vocab_size": 400}
FULL = {**QUICK, "utterances": 1000, "steps": 150, "seeds": 3, "base_utterances": 2000, "base_steps": 1300}
PACKED_MICRO_BATCH = 16
"""A packed micro-batch: the whole batch of 16 in one row (8 and 16 measured alike on 2 cores)."""
BASE_SEED = 1
"""Synthesis seed of the base's corpus (the fine-tuning corpus has seed 0): other sentences."""
BASE_THREADS = 2
"""Torch threads for the base's pre-training and evaluation, whatever the machine: a float sum split
over another number of threads rounds differently, and the base would differ from machine to machine
(the fine-tuning runs use one thread each, so neither does their number at a time matter)."""


def ensure_corpus(corpus_dir: Path, plan: dict, console: Console, *, seed: int = 0, utterances: int | None = None,
                  summary_fraction: float | None = None, shaped: bool = True) -> Path:
    """The synthetic corpus at ``corpus_dir``, generated once and validated; ``shaped``: with the plan's
    label and task skews (:data:`SHAPE`; the base's own corpus is balanced)."""
    manifest = corpus_dir / "manifest.jsonl"
    if not manifest.exists():
        n = utterances or plan["utterances"]
        console.print(f"synthesizing {n} clips with eSpeak NG -> {corpus_dir}")
        shape = {k: plan[k] for k in SYNTH_SHAPE if k in plan} if shaped else {}
        synthesize(corpus_dir, SynthConfig(
            utterances=n, seed=seed, long_fraction=plan["long_fraction"], dialect_density=plan["dialect_density"],
            summary_fraction=plan["summary_fraction"] if summary_fraction is None else summary_fraction, **shape))
    report = ValidationReport()
    problems = [p for p in validate_manifest(manifest, report=report) if not p.warning]
    if problems:
        raise NabraError(f"the synthetic corpus is invalid (a bug): {problems[0].format(manifest)}")
    return manifest


def ensure_base(out: Path, manifest: Path, plan: dict, console: Console, fam: Family = QWEN2_5_OMNI) -> Path:
    """The pre-trained base model of family ``fam`` (built once): returns its folder."""
    final = out / "runs" / "base-pretrain" / "final"
    tiny = out / "tiny"
    if (tiny / "config.json").is_file():
        held = inspect_family(tiny)[0]
        if held is not fam:
            raise NabraError(f"{out} holds a {held.name} demo (its tiny model {tiny}); the {fam.name} demo "
                             f"needs another --out (default demo-{fam.name})")
    if RunFolder(final.parent).has_weights("final"):
        return final
    news = plan.get("base_summary_fraction", 0.0)  # short paragraphs only: long audio is most of a base step
    base_manifest = ensure_corpus(out / "base-corpus", {**plan, "long_fraction": 0.0} if news else plan, console,
                                  seed=BASE_SEED, utterances=plan["base_utterances"], summary_fraction=news,
                                  shaped=False)
    pairs = plan.get("base_summary_pairs", 0)
    if pairs:
        add_summary_pairs(base_manifest, pairs)
    dropped = drop_shared_sentences(base_manifest, manifest)
    if dropped:
        console.print(f"base corpus: {dropped} clip(s) whose sentence is also in the fine-tuning corpus dropped "
                      f"(listed in {base_manifest.parent / 'dropped-shared.jsonl'})")
    if not (tiny / "config.json").is_file():
        # force: what a killed build left (its nabra_tiny.json, no config.json) is replaced
        words = news_words() if plan.get("whole_news_words") else ()
        init_tiny(tiny, base_manifest, TinyConfig(vocab_size=plan["vocab_size"], whole_words=words), fam, force=True)
    tasks = "ASR, SER and text summarization" if pairs else "ASR and SER"
    packed = packing_overrides(plan, tiny)
    console.rule(f"[bold]pre-train the base on {tasks} ({plan['base_steps']} steps, built once)")
    cfg = load_config("demo-base", [f"output_dir={final.parent}", f"data.manifest={base_manifest}",
                                    f"model.path={tiny}", f"train.max_steps={plan['base_steps']}",
                                    f"train.eval_every={max(50, plan['base_steps'] // 4)}",
                                    f"train.save_every={max(50, plan['base_steps'] // 4)}",
                                    *([f"train.lr={fam.tiny_lr}"] if fam.tiny_lr else []),
                                    *base_task_overrides(plan), *packed])
    with torch_threads(BASE_THREADS):
        train(cfg, log=console.print)
    return final


def packing_overrides(plan: dict, model: Path) -> list[str]:
    """``collate.packing`` on, one micro-batch a step, where the plan asks for it (``packing``) and the
    family of the tiny ``model`` packs (a Mamba LM does not: :meth:`Family.packing_refusal`): a training step
    laid in one row, without padding, costs 0.20 s, not 0.31 s, on the base (measured on 2 cores; the losses
    match the padded layout's to the third decimal)."""
    if not plan.get("packing"):
        return []
    from nabra.model.load import load

    bundle = load(model)
    if bundle.family.packing_refusal(bundle.model) is not None:
        return []
    return ["collate.packing=true", f"train.micro_batch_size={PACKED_MICRO_BATCH}"]


def base_task_overrides(plan: dict) -> list[str]:
    """The base's tasks and their batch shares: the recipe's (ASR 3 : SER 1) unless the plan adds text
    summaries (``base_summary_pairs``) or gives ``base_weights``."""
    weights = plan.get("base_weights") or ({"asr": 3, "ser": 1, "tsum": 1} if plan.get("base_summary_pairs") else None)
    if not weights:
        return []
    return [f"data.tasks=[{','.join(weights)}]",
            "schedule.uniform.weights={" + ", ".join(f"{t}: {w}" for t, w in weights.items()) + "}"]


@contextmanager
def torch_threads(n: int):
    """Run the block with ``n`` torch threads, then restore the number before."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def add_summary_pairs(base_manifest: Path, n: int, seed: int = BASE_SEED + 10) -> int:
    """Append ``n`` text-only news/summary pairs (:func:`~nabra.corpus.synth.summary_pairs`) to the base's
    manifest, once (a manifest that has them is left as it is); returns how many it holds."""
    utts = list(iter_manifest(base_manifest, resolve=False))
    have = sum(u.id.startswith("text-") for u in utts)
    if not have:
        write_manifest(base_manifest, utts + summary_pairs(n, seed))
        have = n
    return have


def drop_shared_sentences(base_manifest: Path, manifest: Path) -> int:
    """Remove from the base's manifest every clip whose transcript is also one of the fine-tuning
    corpus's (the base must not have heard the test sentences); writes them down, returns how many."""
    seen = {u.transcript for u in iter_manifest(manifest, resolve=False) if u.transcript}
    kept, dropped = [], []
    for u in iter_manifest(base_manifest, resolve=False):
        (dropped if u.transcript in seen else kept).append(u)
    if dropped:
        write_manifest(base_manifest.parent / "dropped-shared.jsonl", dropped)
        write_manifest(base_manifest, kept)
    return len(dropped)


def run_overrides(out: Path, manifest: Path, base: Path, schedule: str, seed: int, steps: int) -> list[str]:
    every = max(20, steps // 3)
    return [f"output_dir={out / 'runs' / f'{schedule}-seed{seed}'}", f"data.manifest={manifest}",
            f"model.path={base}", f"schedule.name={schedule}", f"train.seed={seed}", f"train.max_steps={steps}",
            f"train.eval_every={every}", f"train.save_every={every}"]


def missing_conditions(folder: Path, conditions: list[str]) -> list[str]:
    """Which of clean and ``conditions`` ``folder`` (a run's ``eval-test``) has no metrics for."""
    from nabra.corpus.augment import Condition

    wanted = [Condition("clean"), *(Condition.parse(c) for c in conditions)]
    return [c.name for c in wanted if not (folder / ("" if c.clean else c.slug) / "metrics.json").is_file()]


def train_and_evaluate(overrides: list[str], manifest: str, threads: int, test: bool = True,
                       conditions: list[str] = ()) -> tuple[str, float]:
    """One fine-tuning run and (``test``) its test evaluation, clean and under ``conditions``, in a worker process
    (``threads`` torch threads); its lines go to ``demo.log`` in the run folder. Returns the run folder and the
    seconds it took."""
    import warnings

    import torch

    # transformers' deprecation notice for the PEFT call path, once per run: noise on the demo's console.
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    cfg = load_config("demo", overrides)
    run = Path(cfg.output_dir)
    run.mkdir(parents=True, exist_ok=True)
    with open(run / "demo.log", "a", encoding="utf-8") as log_file:
        def log(*parts):
            print(*parts, file=log_file, flush=True)

        if not RunFolder(run).has_weights("final"):  # an evaluation added to a finished run does not retrain it
            train(cfg, progress=False, log=log)
        todo = missing_conditions(run / "eval-test", list(conditions)) if test else []
        if todo:
            evaluate(run, manifest, split="test", progress=False, log=log, conditions=todo)
    return str(run), time.perf_counter() - t0


def fine_tune_all(out: Path, manifest: Path, base: Path, plan: dict, seeds: int, jobs: int,
                  console: Console) -> list[Path]:
    """Every schedule × seed, ``jobs`` at a time; finished runs (evaluated) are reused."""
    plans = [(s, seed) for seed in range(seeds) for s in SCHEDULE_NAMES]
    runs = [out / "runs" / f"{s}-seed{seed}" for s, seed in plans]
    conditions = plan.get("conditions", [])
    todo = [(s, seed) for (s, seed), run in zip(plans, runs, strict=True)
            if missing_conditions(run / "eval-test", conditions)]
    if not todo:
        return runs
    jobs = max(1, min(jobs, len(todo)))
    packed = packing_overrides(plan, base)
    untrained = sum(not RunFolder(out / "runs" / f"{s}-seed{seed}").has_weights("final") for s, seed in todo)
    console.rule(f"[bold]fine-tune the base with LoRA: {untrained} run(s) of {plan['steps']} steps, {jobs} at a time"
                 if untrained else f"[bold]evaluate {len(todo)} finished run(s) under the condition(s) they lack")
    with progress_bar("runs", len(todo)) as advance, ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(train_and_evaluate, [*run_overrides(out, manifest, base, s, seed, plan["steps"]), *packed],
                               str(manifest), 1, True, conditions): (s, seed) for s, seed in todo}
        for future in as_completed(futures):
            s, seed = futures[future]
            try:
                run, seconds = future.result()
            except Exception as e:
                raise NabraError(f"fine-tuning {s} (seed {seed}) failed: {e} (see "
                                 f"{out / 'runs' / f'{s}-seed{seed}' / 'demo.log'})") from e
            console.print(f"  {s} seed {seed}: {'trained and ' if untrained else ''}evaluated in {seconds:.0f} s ({run})")
            advance()
    return runs


def evaluate_base(out: Path, base: Path, manifest: Path, console: Console, conditions: list[str] = ()) -> Path:
    """The base before fine-tuning, evaluated the same way: what each schedule keeps or loses."""
    folder = out / "runs" / "base"
    todo = missing_conditions(folder / "eval-test", list(conditions))
    if todo:
        console.rule("[bold]evaluate the base (before fine-tuning)")
        folder.mkdir(parents=True, exist_ok=True)
        cfg = load_config("demo", [f"data.manifest={manifest}", f"model.path={base}", "schedule.name=uniform"])
        text = dump_config(cfg).replace("name: uniform", "name: base", 1)
        write_text(folder / "config.yaml", text)
        with torch_threads(BASE_THREADS):
            evaluate(base, manifest, split="test", out_dir=folder / "eval-test", progress=True, log=console.print,
                     conditions=todo)
    return folder


def headline(runs: list[Path], console: Console) -> None:
    """Mean over seeds of the main test metrics, one row per schedule."""
    rows: dict[str, list[dict]] = {}
    shape: dict = {}
    for run in runs:
        folder = RunFolder.open(run)
        data = folder.final_metrics("test")
        if data is None:
            raise NabraError(f"{folder.eval_dir('test') / 'metrics.json'}: missing: the run was not evaluated")
        rows.setdefault(folder.schedule, []).append(data)
        shape = shape or (folder.train_data() or {}).get("labels", {})
    # What a skewed corpus changes first: the F1 of each label task's rare labels (mean over them).
    rare = {task: labels for task in ("did", "ser") if (labels := rare_labels(shape.get(task, {})))}
    cols = [(title, task, key) for task, key, title in HEADLINE]
    table = Table(title="test split (unseen voices, labels balanced), mean over seeds")
    table.add_column("schedule")
    for task in rare:
        table.add_column(f"{task.upper()} rare F1", justify="right")
    for title, _, _ in cols:
        table.add_column(title, justify="right")
    table.add_column("composite", justify="right")
    for name, results in rows.items():
        cells = [_mean([_mean_of([r["metrics"].get(task, {}).get("per_class", {}).get(label, {}).get("f1")
                                  for label in labels]) for r in results]) for task, labels in rare.items()]
        cells += [_mean([r["metrics"].get(task, {}).get(key) for r in results]) for _, task, key in cols]
        # The base is scored on the tasks it was pre-trained on (ASR, SER): its composite is not comparable.
        table.add_row(name, *cells, "-" if name == "base" else _mean([r.get("composite") for r in results]))
    console.print(table)
    lengths = [b for _, b in DURATION_BUCKETS if any(b in r["metrics"].get("asr", {}).get("by_duration", {})
                                                     for results in rows.values() for r in results)]
    if len(lengths) > 1:  # the sentences are learnt, the paragraphs not: the overall CER hides which
        by_length = Table(title="ASR CER by audio length (test split), mean over seeds")
        by_length.add_column("schedule")
        for bucket in lengths:
            by_length.add_column(bucket, justify="right")
        for name, results in rows.items():
            by_length.add_row(name, *[_mean([r["metrics"].get("asr", {}).get("by_duration", {}).get(b, {}).get("cer")
                                              for r in results]) for b in lengths])
        console.print(by_length)
    if rare:
        console.print("rare labels (fewer training examples than the average label, at most 80 % of the most frequent's): "
                      + "; ".join(f"{task.upper()} {', '.join(labels)}" for task, labels in rare.items()))


def _mean_of(values) -> float | None:
    values = [v for v in values if isinstance(v, int | float) and not math.isnan(v)]
    return sum(values) / len(values) if values else None


def _mean(values) -> str:
    mean = _mean_of(values)
    return "-" if mean is None else f"{mean:.3f}"


def default_jobs() -> int:
    """Runs at a time: one per CPU core this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def check_plan(out: Path, plan: dict, family: str) -> None:
    """Refuse to add to a demo folder made with another plan (``--quick`` vs the full demo, another
    family): it reuses the corpus, the base and every finished run it finds, so the two would mix. The
    plan (seeds and conditions aside: they add runs and evaluations) is kept in ``demo-plan.json``."""
    key = json.loads(json.dumps({"family": family, **{k: v for k, v in sorted(plan.items())
                                                      if k not in ("seeds", "conditions")}}))
    path = out / "demo-plan.json"
    if path.is_file():
        before = read_json(path)
        if before != key:
            diff = ", ".join(f"{k} {before.get(k)!r} there, {key.get(k)!r} now" for k in sorted({*before, *key})
                             if before.get(k) != key.get(k))
            raise NabraError(f"{out} holds a demo made with another plan ({diff}): its corpus, base and runs would "
                             f"mix with this one's. Give --out another folder, or move {out} away first")
        return
    out.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(key, indent=1) + "\n")


def demo_plan(quick: bool = False, balanced: bool = False, plan: dict | None = None) -> dict:
    """The sizes and shape of a demo: the skewed corpus of :data:`SHAPE` (with :data:`SHAPE_QUICK`'s sizes
    for ``quick``), or ``balanced``: the earlier balanced corpus and its character-level base; ``plan``
    overrides any of it (tests)."""
    shape = {} if balanced else {k: v for k, v in {**SHAPE, **(SHAPE_QUICK if quick else {})}.items()
                                 if not (quick and k in QUICK_LEAVES_OUT)}
    return {**(QUICK if quick else FULL), **shape, **(plan or {})}


def run_demo(out: Path | None = None, quick: bool = False, seeds: int | None = None, plan: dict | None = None,
             jobs: int | None = None, family: str = QWEN2_5_OMNI.name, balanced: bool = False) -> int:
    """The whole main job on the tiny model of ``family``; returns the exit code. ``plan`` overrides
    the sizes (tests). ``out`` defaults to ``demo`` (``demo-<family>`` for another family than the default),
    with ``-balanced`` (the balanced corpus) and ``-quick`` after it: a folder keeps one plan
    (:func:`check_plan`)."""
    console = Console()
    fam = family_named(family)
    plan = demo_plan(quick, balanced, plan)
    out = Path(out or ("demo" if fam is QWEN2_5_OMNI else f"demo-{fam.name}") + ("-balanced" if balanced else "")
               + ("-quick" if quick else ""))
    seeds = seeds or plan["seeds"]
    check_plan(out, plan, fam.name)
    t0 = time.perf_counter()
    console.rule(f"[bold]Nabra demo: synthetic Arabic corpus, tiny {fam.title}, {len(SCHEDULE_NAMES)} schedules")
    manifest = ensure_corpus(out / "corpus", plan, console)
    base = ensure_base(out, manifest, plan, console, fam)
    baseline = evaluate_base(out, base, manifest, console, plan.get("conditions", []))
    runs = fine_tune_all(out, manifest, base, plan, seeds, jobs or default_jobs(), console)
    report = make_report([*runs, baseline], out / "report")
    console.rule("[bold]Result")
    headline([baseline, *runs], console)
    console.print(f"report: {report} (and report.md and the PNGs beside it); {time.perf_counter() - t0:.0f} s")
    return 0
