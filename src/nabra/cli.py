"""`nabra <verb>`: each verb is a thin layer over a library function a user can also import.

Errors the user caused (a missing file, a bad flag value) print one line and exit 2; invalid
manifests exit 1 with one line per problem; tracebacks are for bugs.
"""

from __future__ import annotations

import argparse
import errno
import json
import sys
from collections import Counter
from pathlib import Path

from nabra.corpus.labels import label_sets
from nabra.corpus.manifest import MAX_LINE_BYTES
from nabra.errors import NabraError, printable


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {value}")
    return value


def declared_exports(recipe: str, language: str):
    """A recipe's declared tasks for ``nabra data export swift --config`` (each with its first
    template of ``language``, or its first at all), and its DID and SER label sets."""
    from nabra.config import load_config
    from nabra.corpus.importers.swift import ExtraTask
    from nabra.corpus.manifest import Utterance
    from nabra.tasks import prompt_example

    task_set = load_config(recipe).task_set()
    extra = []
    for spec in task_set.declared():
        probe = Utterance("probe", audio="-")
        prompt = "<audio>" + prompt_example(probe, spec.name, language=language, task_set=task_set).instruction
        extra.append(ExtraTask(spec.name, {language: prompt}, spec.label_of))
    return extra, (task_set.labels("did"), task_set.labels("ser"))


def cmd_data_validate(args) -> int:
    from nabra.corpus.validate import ValidationConfig, ValidationReport, reason_key, validate_manifest

    dialects, emotions = label_sets(args.dialects, args.emotions)
    declared = ()
    if args.config:  # the recipe's label sets and declared tasks, unless --dialects/--emotions say otherwise
        from nabra.config import load_config

        task_set = load_config(args.config).task_set()
        dialects = dialects if args.dialects else task_set.labels("did")
        emotions = emotions if args.emotions else task_set.labels("ser")
        declared = task_set.declared()
    cfg = ValidationConfig(dialects=dialects, emotions=emotions, declared=declared, check_audio=args.check_audio,
                           min_duration=args.min_duration, workers=args.workers, max_line_bytes=args.max_line_bytes)
    report = ValidationReport()
    problems, shown = 0, Counter()
    for problem in validate_manifest(args.manifest, cfg, report):
        if problem.warning:  # a warning of one kind on a million lines: the first few and a count
            shown[kind := reason_key(problem.reason)] += 1
            if shown[kind] > args.warnings:
                continue
        else:
            problems += 1
        print(problem.format(args.manifest), flush=False)
    sys.stdout.flush()
    hidden = sum(max(0, n - args.warnings) for n in shown.values())
    warned = (f"; {report.warnings:,} warning(s)" + (f" ({hidden:,} not shown: --warnings N)" if hidden else "")
              if report.warnings else "")
    if problems:
        print(f"{args.manifest}: {problems:,} problem(s) on {report.invalid:,} of {report.lines:,} lines{warned}",
              file=sys.stderr)
        return 1
    audio = " (audio checked)" if args.check_audio else ""
    print(f"{args.manifest}: {report.lines:,} lines, all valid{audio}{warned}")
    return 0


def cmd_data_stats(args) -> int:
    from nabra.corpus.stats import manifest_stats, render_stats

    st = manifest_stats(args.manifest)
    if args.json:
        print(json.dumps(st.to_dict(), ensure_ascii=False, indent=2))
    else:
        render_stats(st, str(args.manifest))
    return 0


def _synth_config(args):
    from nabra.corpus.synth import SynthConfig

    return SynthConfig(utterances=args.utterances, seed=args.seed, summary_fraction=args.summary_fraction,
                       long_fraction=args.long_fraction, dialect_density=args.dialect_density,
                       imbalance=args.imbalance, workers=args.workers,
                       dialect_shares=_shares(args.dialect_shares, "--dialect-shares"),
                       emotion_shares=_shares(args.emotion_shares, "--emotion-shares"),
                       dialect_fraction=args.dialect_fraction, emotion_fraction=args.emotion_fraction,
                       balanced_splits=tuple(s for s in (args.balanced_splits or "").split(",") if s),
                       min_summaries=_counts(args.min_summaries, "--min-summaries"),
                       disjoint_sentences=args.disjoint_sentences,
                       **({"split_shares": _shares(args.split_shares, "--split-shares")} if args.split_shares else {}))


def _counts(text: str | None, flag: str) -> dict[str, int]:
    """``test=40,dev=20`` as a mapping of whole numbers (empty for no flag)."""
    shares = _shares(text, flag) or {}
    if any(v != int(v) for v in shares.values()):
        raise NabraError(f"{flag} takes SPLIT=COUNT pairs of whole numbers, got {text!r}")
    return {k: int(v) for k, v in shares.items()}


def _shares(text: str | None, flag: str) -> dict[str, float] | None:
    """``EGY=40,GLF=25,...`` as a mapping (``None`` for no flag)."""
    if not text:
        return None
    out = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise NabraError(f"{flag} takes LABEL=NUMBER pairs separated by commas, got {part!r}") from None
    return out


def cmd_synth(args) -> int:
    from nabra.corpus.synth import synthesize

    result = synthesize(args.out_dir, _synth_config(args), progress=not args.quiet)
    print(f"wrote {result.manifest}: {result.utterances:,} clips ({result.short_clips:,} short, "
          f"{result.paragraphs:,} news paragraphs, {result.long_paragraphs:,} over 30 s), "
          f"{result.audio_seconds / 60:.1f} min of audio, {result.clips_per_s:.0f} clips/s")
    return 0


def cmd_model_init_tiny(args) -> int:
    from nabra.model.families import family
    from nabra.model.tiny import TinyConfig, init_tiny

    cfg = TinyConfig(vocab_size=args.vocab_size, hidden_size=args.hidden_size, text_layers=args.text_layers,
                     audio_layers=args.audio_layers, lm=args.lm, seed=args.seed)
    out = init_tiny(args.out_dir, args.corpus, cfg, family(args.family), force=args.force)
    return cmd_model_info(argparse.Namespace(path=out))


def cmd_model_compose(args) -> int:
    from nabra.model.compose import compose

    out = compose(args.audio_from, args.lm, args.out, projector=args.projector, dtype=args.dtype, seed=args.seed,
                  force=args.force)
    return cmd_model_info(argparse.Namespace(path=out))


def cmd_model_info(args) -> int:
    from nabra.model import load

    bundle = load(args.path)
    model = bundle.model
    family = bundle.family
    print(f"{bundle.path}: {family.title} (family {family.name}, {bundle.layout} layout), "
          f"{sum(p.numel() for p in model.parameters()):,} parameters, dtype {model.dtype}")
    for name, module in family.parts(model).items():
        print(f"  {name:15s} {sum(p.numel() for p in module.parameters()):>14,}")
    print(f"  tokenizer       {len(bundle.tokenizer):>14,} tokens")
    return 0


def _window_tokens(name: str) -> int | None:
    """Tokens of a 300-s clip (100 mel frames a second) in the family's prompts, with ~300 of prompt and answer."""
    from nabra.model.families import family

    try:
        fam = family(name)
        return int(fam.audio_token_count(30_000)) + fam.audio_run_overhead + 300
    except Exception:  # noqa: BLE001 - a composed model's rate is its tower's: not known from the name
        return None


def cmd_model_size(args) -> int:
    from nabra.model.config import LoraConfig
    from nabra.model.size import model_size, parse_gib, render, render_budget, token_budget

    lora = LoraConfig(r=args.lora_r, train_aligner=args.train_aligner)
    size = model_size(args.path, lora=lora, dtype=args.dtype)
    print(render(size))
    if args.gpu_memory:
        window = _window_tokens(size["family"])
        for ckpt in (True, False):
            print(render_budget(token_budget(size, size["shape"], parse_gib(args.gpu_memory), gradient_checkpointing=ckpt,
                                             answer_share=args.answer_share), window))
    return 0


def cmd_model_merge(args) -> int:
    from nabra.model import load
    from nabra.model.lora import merge

    out = merge(load(args.base, dtype=args.dtype), args.adapter, args.out_dir, force=args.force)
    print(f"wrote merged checkpoint {out}")
    return 0


def cmd_model_embed(args) -> int:
    from nabra.model import load
    from nabra.model.embeddings import compute_embeddings

    table = compute_embeddings(load(args.model, dtype=args.dtype, device=args.device), args.manifest, args.cache,
                               batch_size=args.batch_size)
    print(f"{len(table.keys):,} aligner embeddings of size {table.vectors.shape[1]} in {args.cache}")
    return 0


def cmd_export(args) -> int:
    from nabra.use.export import export

    export(args.run, args.out, merge=args.merge, fmt=args.fmt, dtype=args.dtype, weights=args.weights, base=args.base,
           force=args.force)
    return 0


def cmd_analyze(args) -> int:
    from nabra.files import atomic_path
    from nabra.use.analyze import analyze, render

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    if args.out:  # checked before the work, not after it
        from nabra.use.analyze import check_results_file

        check_results_file(args.out, force=args.force)
    results, skipped = analyze(args.inputs, args.model, tasks=tasks, language=args.language,
                               batch_size=args.batch_size, segment_seconds=args.segment_seconds, device=args.device,
                               progress=not args.quiet)
    for line in skipped:
        print(f"skipped {line}", file=sys.stderr)
    if args.out:
        with atomic_path(args.out) as tmp, open(tmp, "w", encoding="utf-8") as f:
            for r in results:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(f"wrote {len(results):,} result(s) to {args.out}", file=sys.stderr)
    elif args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
    else:
        print(render(results))
    return 0


def cmd_serve(args) -> int:
    from nabra.use.serve import Limits, serve

    limits = Limits(max_upload_mb=args.max_upload_mb, max_seconds=args.max_seconds, body_timeout_s=args.body_timeout,
                    batch_window_ms=args.batch_window_ms, max_batch=args.max_batch)
    serve(args.model, host=args.host, port=args.port, limits=limits, language=args.language, device=args.device,
          allowed_hosts=args.allowed_host, allowed_origins=args.allow_origin, engine=args.engine,
          vllm_url=args.vllm_url, vllm_python=args.vllm_python)
    return 0


def _add_use_verbs(sub) -> None:
    srv = sub.add_parser("serve", help="the analysis over HTTP (POST /v1/analyze) and a page at /",
                         description="Binds to loopback unless --host says otherwise; no authentication.")
    srv.add_argument("--model", required=True, help="run folder, its final/ or best/, a checkpoint or an adapter")
    srv.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    srv.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    srv.add_argument("--max-upload-mb", type=float, default=50.0, help="largest upload (default 50 MB)")
    srv.add_argument("--max-seconds", type=float, default=600.0, help="longest recording (default 600 s)")
    srv.add_argument("--body-timeout", type=float, default=15.0,
                     help="a request body that sends nothing for this long is refused (default 15 s)")
    srv.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                     help="a host name requests may use besides IP addresses and localhost (repeatable; * for any)")
    srv.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                     help="a web origin (https://app.example) whose pages may call the API (repeatable)")
    srv.add_argument("--batch-window-ms", type=float, default=20.0,
                     help="wait this long for requests to batch together (default 20; 0: one at a time)")
    srv.add_argument("--max-batch", type=int, default=8, help="most recordings per batch (default 8)")
    srv.add_argument("--language", choices=("ar", "en"), help="prompt language (default: the run's, else ar)")
    srv.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda if there is one)")
    srv.add_argument("--engine", choices=("nabra", "vllm"), default="nabra",
                     help="nabra: the model in this process (default); vllm: --model is a merged or vllm-lora "
                          "export, answered by vLLM (docs/serve-vllm.md)")
    srv.add_argument("--vllm-url", help="with --engine vllm: a vLLM server already serving the export "
                                        "(default: start one on a free loopback port)")
    srv.add_argument("--vllm-python", help="with --engine vllm: the Python of vLLM's virtualenv "
                                           "(default .venv-vllm/bin/python)")
    srv.set_defaults(func=cmd_serve)
    ana = sub.add_parser("analyze", help="transcript, summary, dialect and emotion (with probabilities) of new recordings",
                         description="Inputs: audio files, folders (walked), manifests (.jsonl; labels not needed).")
    ana.add_argument("inputs", nargs="+", help="audio files, folders or manifests")
    ana.add_argument("--model", required=True, help="run folder, its final/ or best/, a checkpoint or an adapter")
    ana.add_argument("--tasks", help="comma-separated (default: asr, ssum and every label task of the model's run: did, ser, declared ones)")
    out = ana.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the results as JSON")
    out.add_argument("--out", type=Path, help="write one JSON line per recording to this file")
    ana.add_argument("--language", choices=("ar", "en"), help="prompt language (default: the run's, else ar)")
    ana.add_argument("--batch-size", type=int, default=8, help="examples per generation batch (default 8)")
    ana.add_argument("--segment-seconds", type=float, help="cut long recordings into windows of this length "
                     "(default and at most: the model's audio window)")
    ana.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda if there is one)")
    ana.add_argument("--quiet", action="store_true", help="no progress bars")
    ana.add_argument("--force", action="store_true", help="replace the results of an earlier analyze in --out")
    ana.set_defaults(func=cmd_analyze)

    exp = sub.add_parser("export", help="a trained run as a PEFT adapter, merged weights (the release layout where the family has one) or a vLLM LoRA",
                         description="Writes a model card (README.md) beside the weights.")
    exp.add_argument("run", type=Path, help="run folder")
    exp.add_argument("--out", type=Path, required=True,
                     help="folder to write: absent, empty, or an earlier export (with --force)")
    exp.add_argument("--force", action="store_true", help="replace an earlier export in --out (never other files)")
    exp.add_argument("--format", dest="fmt", choices=("peft", "merged", "vllm-lora"),
                     help="peft: the PEFT adapter (default of a LoRA run); merged: the adapter merged into its base "
                          "(the release layout vLLM serves); vllm-lora: an adapter vLLM's LoRA applies")
    exp.add_argument("--merge", action="store_true", help="the same as --format merged")
    exp.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float16", "float32"),
                     help="dtype of merged weights (default bfloat16)")
    exp.add_argument("--weights", choices=("best", "final"), help="which model of the run (default best/, else final/)")
    exp.add_argument("--base", help="the base model folder, when the run's is elsewhere now")
    exp.set_defaults(func=cmd_export)


def _add_model_verbs(sub) -> None:
    model = sub.add_parser("model", help="model tools").add_subparsers(dest="model_verb", required=True, metavar="VERB")
    tiny = model.add_parser("init-tiny", help="write a tiny random model of a family (+ tokenizer trained on a corpus)")
    tiny.add_argument("out_dir", type=Path, help="folder to write the tiny model to")
    tiny.add_argument("--family", default="qwen2_5_omni",
                      help="model family (qwen2_5_omni, qwen3_omni, nemotron_h_omni, composed)")
    tiny.add_argument("--lm", default="falcon_h1", help="LM of a tiny composed model: falcon_h1, jais2 or qwen3")
    tiny.add_argument("--corpus", type=Path, help="manifest whose transcripts/summaries train the tokenizer")
    tiny.add_argument("--vocab-size", type=int, default=1024, help="tokenizer vocabulary (learned from --corpus)")
    tiny.add_argument("--hidden-size", type=int, default=128, help="width of the language model")
    tiny.add_argument("--text-layers", type=int, default=2, help="decoder layers of the language model")
    tiny.add_argument("--audio-layers", type=int, default=2, help="layers of the audio encoder")
    tiny.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    tiny.add_argument("--force", action="store_true", help="replace an earlier tiny model in OUT_DIR (never other files)")
    tiny.set_defaults(func=cmd_model_init_tiny)
    comp = model.add_parser("compose", help="an audio LLM from the audio encoder of a checkpoint, a new projector and "
                                            "any local causal LM (Jais-2, Falcon-H1, Qwen3 ...)")
    comp.add_argument("--audio-from", type=Path, required=True,
                      help="audio-LLM checkpoint folder whose audio encoder is taken (Qwen2.5-Omni, Qwen3-Omni, Nemotron-Omni)")
    comp.add_argument("--lm", type=Path, required=True, help="causal LM folder (config.json, safetensors, tokenizer)")
    comp.add_argument("--out", type=Path, required=True, help="new folder for the composed model")
    comp.add_argument("--projector", default="mlp2", choices=("mlp2", "linear"),
                      help="the new audio projector: two layers with a GELU (default) or one linear layer")
    comp.add_argument("--dtype", default="float32", help="float32, bfloat16 or float16")
    comp.add_argument("--seed", type=int, default=0, help="seed of the projector's random initialisation")
    comp.add_argument("--force", action="store_true", help="replace an earlier composed model in --out (never other files)")
    comp.set_defaults(func=cmd_model_compose)
    info = model.add_parser("info", help="load a checkpoint folder and print what it holds")
    info.add_argument("path", type=Path, help="a checkpoint folder")
    info.set_defaults(func=cmd_model_info)
    size = model.add_parser("size", help="parameters, weight memory and LoRA's trainable count from config.json "
                                         "alone (no weights are read)")
    size.add_argument("path", type=Path, help="a checkpoint folder; only its config.json is needed")
    size.add_argument("--lora-r", type=int, default=16, help="LoRA rank to count (default 16)")
    size.add_argument("--train-aligner", action="store_true", help="count the audio projector as trained too")
    size.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float16", "float32"),
                      help="dtype of the weights (default bfloat16)")
    size.add_argument("--gpu-memory", metavar="GIB", help="a GPU's memory (80GiB): estimate the train.micro_batch_tokens "
                      "that fits it, with and without gradient checkpointing")
    size.add_argument("--answer-share", type=float, default=0.15,
                      help="share of a micro-batch's tokens that are answers (their logits are computed; default 0.15)")
    size.set_defaults(func=cmd_model_size)
    merge = model.add_parser("merge", help="merge a LoRA adapter into its base; writes a plain thinker checkpoint")
    merge.add_argument("base", type=Path, help="the base model folder the adapter was trained on")
    merge.add_argument("adapter", type=Path, help="a PEFT adapter folder (a run's final/ or best/)")
    merge.add_argument("out_dir", type=Path, help="folder to write the merged thinker to")
    merge.add_argument("--dtype", default="float32", help="float32, bfloat16 or float16")
    merge.add_argument("--force", action="store_true", help="replace an earlier merge in OUT_DIR (never other files)")
    merge.set_defaults(func=cmd_model_merge)
    embed = model.add_parser("embed", help="aligner embeddings of a manifest (cached, resumable)")
    embed.add_argument("model", type=Path, help="the model whose aligner embeds the audio")
    embed.add_argument("manifest", type=Path, help="manifest of the utterances to embed")
    embed.add_argument("--cache", type=Path, default=Path("cache/embeddings"), help="cache folder of the embeddings")
    embed.add_argument("--batch-size", type=int, default=16, help="clips per audio-encoder forward")
    embed.add_argument("--dtype", default="float32", help="dtype the model is loaded in")
    embed.add_argument("--device", default=None, help="e.g. cuda (default: cpu)")
    embed.set_defaults(func=cmd_model_embed)


def cmd_train(args) -> int:
    from nabra.config import load_config
    from nabra.train import train

    overrides = list(args.overrides)
    if args.skip_invalid:
        overrides.append("data.skip_invalid=true")
    run = train(load_config(args.config, overrides), progress=not args.quiet)
    print(f"run folder: {run} (metrics.jsonl, checkpoints/, final/)")
    return 0


def cmd_recipe(args) -> int:
    from nabra.config import copy_recipe, shipped_recipe, shipped_recipes

    if args.recipe_verb == "list":
        for name, path in shipped_recipes().items():
            first = next((line[1:].strip() for line in path.read_text(encoding="utf-8").splitlines()
                          if line.startswith("#") and line[1:].strip()), "")
            print(f"{name:32} {first}")
    elif args.recipe_verb == "show":
        sys.stdout.write(shipped_recipe(args.name).read_text(encoding="utf-8"))
    else:
        out = copy_recipe(args.name, args.dest)
        then = (f"accelerate launch --config_file {out} -m nabra train RECIPE" if args.name.startswith("accelerate/")
                else f"nabra train {out}")
        print(f"wrote {out} (edit it, then: {then})")
    return 0


def cmd_demo(args) -> int:
    from nabra.demo import run_demo

    return run_demo(out=args.out, quick=args.quick, seeds=args.seeds, jobs=args.jobs, family=args.family,
                    balanced=args.balanced)


def build_parser() -> argparse.ArgumentParser:
    from nabra.corpus.importers.cli import register as register_data_io
    from nabra.evaluate.cli import register as register_evaluate

    p = argparse.ArgumentParser(prog="nabra", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    synth = sub.add_parser("synth", help="generate the synthetic Arabic speech corpus (eSpeak NG)")
    synth.add_argument("out_dir", type=Path, help="folder to write the corpus (manifest.jsonl, audio/) to")
    synth.add_argument("--utterances", type=int, default=1000, help="number of clips (default 1000)")
    synth.add_argument("--seed", type=int, default=0, help="seed of sentences, voices and splits")
    synth.add_argument("--summary-fraction", type=float, default=0.1, help="share of news paragraphs with summaries")
    synth.add_argument("--long-fraction", type=float, default=0.3, help="share of paragraphs longer than 30 s")
    synth.add_argument("--dialect-density", type=float, default=0.75, help="share of words from the dialect lexicon")
    synth.add_argument("--imbalance", type=float, default=1.0, help="most/least frequent label ratio (1 = balanced)")
    synth.add_argument("--dialect-shares", metavar="EGY=40,GLF=25,...",
                       help="relative frequency of each dialect label (instead of --imbalance)")
    synth.add_argument("--emotion-shares", metavar="neutral=50,happy=20,...",
                       help="relative frequency of each emotion label (instead of --imbalance)")
    synth.add_argument("--dialect-fraction", type=float, default=1.0,
                       help="share of the short clips with a dialect label (the rest ASR-only; default 1)")
    synth.add_argument("--emotion-fraction", type=float, default=1.0,
                       help="share of the short clips with an emotion label (default 1)")
    synth.add_argument("--split-shares", metavar="train=0.8,dev=0.1,test=0.1",
                       help="share of the clips in each split (default 0.8, 0.1, 0.1)")
    synth.add_argument("--balanced-splits", metavar="test",
                       help="comma-separated splits kept label-balanced and fully labelled (e.g. test)")
    synth.add_argument("--min-summaries", metavar="test=40",
                       help="at least this many news paragraphs with summaries in a split (added after the other "
                            "clips, which stay the same): summary scores over more than a handful")
    synth.add_argument("--disjoint-sentences", action="store_true",
                       help="dev and test clips never say what a train clip says (those that would are given another "
                            "sentence; every other clip stays the same)")
    synth.add_argument("--workers", type=int, default=0, help="parallel eSpeak workers (0 = all cores)")
    synth.add_argument("--quiet", action="store_true", help="no progress bar")
    synth.set_defaults(func=cmd_synth)

    data = sub.add_parser("data", help="manifest tools").add_subparsers(dest="data_verb", required=True, metavar="VERB")
    val = data.add_parser("validate", help="check a manifest; one line per problem, exit 1 if any")
    val.add_argument("manifest", type=Path, help="the manifest (JSONL) to check")
    val.add_argument("--check-audio", action="store_true", help="open and decode every audio file")
    val.add_argument("--min-duration", type=float, default=0.1, help="shortest acceptable audio in s (default 0.1)")
    val.add_argument("--dialects", help="comma-separated dialect label set (default EGY,GLF,LAV,NOR,MSA)")
    val.add_argument("--emotions", help="comma-separated emotion label set (default neutral,happy,sad,angry,surprised)")
    val.add_argument("--config", help="a recipe (file or shipped name): check its label sets and its declared "
                     "tasks' fields (tasks: section)")
    val.add_argument("--workers", type=int, default=4, help="threads reading audio (default 4)")
    val.add_argument("--max-line-bytes", type=_positive_int, default=MAX_LINE_BYTES,
                     help=f"longest line accepted (default {MAX_LINE_BYTES:,})")
    val.add_argument("--warnings", type=int, default=10, metavar="N", help="warnings shown per kind (default 10)")
    val.set_defaults(func=cmd_data_validate)
    stats = data.add_parser("stats", help="utterances, hours, per-task and per-label counts, durations")
    stats.add_argument("manifest", type=Path, help="the manifest (JSONL) to describe")
    stats.add_argument("--json", action="store_true", help="machine-readable output")
    stats.set_defaults(func=cmd_data_stats)
    # Verbs of other areas register themselves here (one line each).
    register_data_io(data, sub, declared_exports)
    register_evaluate(sub)
    _add_use_verbs(sub)

    _add_model_verbs(sub)

    train = sub.add_parser("train", help="train (or resume) a run from a YAML recipe",
                           description="Rerunning the same command on the same run folder resumes it.")
    train.add_argument("config", help="YAML file, or a shipped recipe: "
                       + ", ".join(sorted(p.stem for p in (Path(__file__).parent / "configs").glob("*.yaml"))))
    train.add_argument("overrides", nargs="*", metavar="key.sub=value", help="config overrides")
    train.add_argument("--skip-invalid", action="store_true", help="quarantine invalid manifest lines instead of stopping")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)

    recipe = sub.add_parser("recipe", help="the shipped recipes and accelerate configs: list, show, copy one to edit")
    recipe_verbs = recipe.add_subparsers(dest="recipe_verb", required=True, metavar="VERB")
    recipe_verbs.add_parser("list", help="every shipped recipe and accelerate config, with its first header line")
    show = recipe_verbs.add_parser("show", help="print a shipped recipe")
    show.add_argument("name", help="a recipe (omni7b-lora-ads) or an accelerate config (accelerate/fsdp)")
    copy = recipe_verbs.add_parser("copy", help="copy a shipped recipe to edit (never over an existing file)")
    copy.add_argument("name", help="a recipe (omni7b-lora-ads) or an accelerate config (accelerate/fsdp)")
    copy.add_argument("dest", nargs="?", help="file or folder (ending in /) to write (default: ./NAME.yaml)")
    for parser in (recipe, *recipe_verbs.choices.values()):
        parser.set_defaults(func=cmd_recipe)

    demo = sub.add_parser("demo", help="the main job on the embedded default (synthetic corpus, tiny model, CPU)")
    demo.add_argument("--out", type=Path, default=None,
                      help="output folder (default ./demo, ./demo-FAMILY for another family; -balanced, -quick added)")
    demo.add_argument("--family", default="qwen2_5_omni",
                      help="model family of the tiny model: qwen2_5_omni (default), qwen3_omni, nemotron_h_omni, composed")
    demo.add_argument("--quick", action="store_true", help="one seed, short")
    demo.add_argument("--balanced", action="store_true",
                      help="the earlier balanced corpus (every label and task alike) and its character-level base, "
                           "not the real corpora's skews (docs/demo.md)")
    demo.add_argument("--seeds", type=int, default=None, help="seeds per schedule (default 3, 1 with --quick)")
    demo.add_argument("--jobs", type=int, default=None,
                      help="fine-tuning runs at a time, one CPU thread each (default: one per core); the "
                           "results do not depend on it")
    demo.set_defaults(func=cmd_demo)
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The parsed command line; ``train``'s ``key=value`` overrides may come before or after its flags
    (argparse alone takes none after ``--quiet``)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.verb == "train" and all("=" in x and not x.startswith("-") for x in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


# The errors of the environment a user can fix (permissions, a full or read-only disk, a path that is a
# file where a folder must be): one line, like a NabraError. Others OSErrors are bugs and keep their traceback.
_USER_OS_ERRORS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EISDIR, errno.ENOTDIR,
                   errno.ELOOP, errno.ENAMETOOLONG, errno.EEXIST, errno.ENOENT}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return args.func(args)
    except NabraError as e:
        print(f"nabra: error: {printable(str(e))}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `nabra data validate big.jsonl | head`
        sys.stderr.close()
        return 1
    except OSError as e:
        if e.errno not in _USER_OS_ERRORS or not e.filename:
            raise
        print(f"nabra: error: {printable(str(e.filename))}: {e.strerror}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nabra: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
