"""``nabra export RUN --out DIR [--merge] [--dtype bfloat16]``: a trained run as a folder other
tools load.

- Adapter only (the default for a LoRA run): the standard PEFT folder (``adapter_config.json`` +
  ``adapter_model.safetensors``, loadable with ``PeftModel.from_pretrained`` on the stock thinker
  class) plus a model card (``README.md``).
- ``--merge``: the adapter merged into its base, in safetensors, in ``--dtype`` (bfloat16 by
  default). A thinker-only base gives the thinker-only layout (``Qwen2_5OmniThinkerForConditionalGeneration``
  loads it); a Qwen2.5-Omni **release** base gives the release layout: the merged thinker under
  ``thinker.*`` beside the base's own talker and token2wav tensors (copied shard by shard, never all
  in memory), its configs and ``spk_dict.pt`` — what ``Qwen2_5OmniForConditionalGeneration`` and
  serving engines that read the release layout (vLLM) load.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from nabra.config import RunConfig
from nabra.corpus.stats import manifest_stats
from nabra.errors import NabraError
from nabra.evaluate.runner import run_config, run_folder
from nabra.files import atomic_path, check_output_folder, remove, write_text
from nabra.model import load
from nabra.model.load import inspect_checkpoint, inspect_family, read_json
from nabra.model.lora import load_adapter
from nabra.progress import progress_bar

DTYPES = ("bfloat16", "float16", "float32")
_WEIGHT_FILES = ("adapter_config.json", "adapter_model.safetensors")


EXPORT_MARKER = "nabra_export.json"
"""What marks a folder as an export of Nabra's (which ``force`` may replace)."""


def export(run: str | Path, out: str | Path, *, merge: bool = False, dtype: str = "bfloat16",
           weights: str | None = None, base: str | None = None, force: bool = False, log=print) -> Path:
    """Export the model of ``run`` (its ``best/`` when there is one, else ``final/``; or ``weights``)
    to ``out``; returns ``out``. ``base``: the base model folder when the run's is elsewhere now.

    ``out`` must be absent, empty, or an earlier export (``nabra_export.json``), which only ``force``
    replaces; never a folder that holds or lies inside the run or its base model."""
    if dtype not in DTYPES:
        raise NabraError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    run = Path(run)
    folder = run_folder(run)
    if folder is None:
        raise NabraError(f"{run}: not a run folder (no config.yaml): export needs the run that trained the model")
    cfg = run_config(folder)
    trained = _weights(folder, weights)
    adapter = (trained / "adapter_config.json").is_file()
    base_dir = Path(base or _base_of(trained, cfg))
    out = check_output_folder(out, EXPORT_MARKER, force=force, what="export",
                              protect=[("the run", folder), ("its base model", base_dir)])
    with atomic_path(out, folder=True) as tmp:
        if adapter and not merge:
            for name in _WEIGHT_FILES:
                shutil.copy(trained / name, tmp / name)
            layout = "PEFT adapter"
        elif adapter:
            layout = _merged(trained, base_dir, tmp, dtype, log)
        else:  # a full fine-tune: the thinker itself
            layout = _full(trained, tmp, dtype)
        write_text(tmp / "README.md", model_card(folder, cfg, trained, base_dir, layout, merge or not adapter, dtype))
        (tmp / EXPORT_MARKER).write_text(json.dumps(
            {"run": str(folder.resolve()), "weights": trained.name, "layout": layout, "base_model": str(base_dir),
             "dtype": dtype if (merge or not adapter) else None}, indent=2) + "\n")
    log(f"exported {trained} as {layout} -> {out}")
    return out


def _weights(run: Path, which: str | None) -> Path:
    if which not in (None, "best", "final"):
        raise NabraError(f"--weights must be best or final, got {which!r}")
    for name in ([which] if which else ["best", "final"]):
        if (run / name / "nabra_run.json").is_file():
            return run / name
    raise NabraError(f"{run}: no {which or 'best/ or final'}/ model: has its training finished?")


def _base_of(trained: Path, cfg: RunConfig) -> str:
    recorded = read_json(trained / "nabra_run.json").get("base_model") or cfg.model.path
    if not Path(recorded).is_dir():
        raise NabraError(f"{trained}: its base model {recorded} is not there: pass --base FOLDER")
    return recorded


def _torch_dtype(dtype: str):
    import torch

    return getattr(torch, dtype)


def _full(trained: Path, out: Path, dtype: str) -> str:
    bundle = load(trained, dtype=dtype)
    _save_thinker(bundle, bundle.model, out)
    return "thinker (full fine-tune)"


def _save_thinker(bundle, model, out: Path) -> None:
    model.save_pretrained(out, safe_serialization=True)
    bundle.tokenizer.save_pretrained(out)
    bundle.feature_extractor.save_pretrained(out)


def _merged(adapter: Path, base: Path, out: Path, dtype: str, log) -> str:
    layout, _ = inspect_checkpoint(base)
    log(f"merging {adapter} into {base} ({layout} layout) in {dtype}")
    bundle = load(base, dtype="float32")  # merge in float32, then cast once
    merged = load_adapter(bundle.model, adapter).merge_and_unload().to(_torch_dtype(dtype))
    if layout != "release" or not bundle.family.release_export:
        _save_thinker(bundle, merged, out)  # the model class's own layout (save_pretrained)
        return "merged thinker" if layout == "thinker" else f"merged {bundle.family.title} (save_pretrained layout)"
    _release(base, merged, out, log)
    return f"merged release ({bundle.family.title} under thinker.*)"


def _release(base: Path, thinker, out: Path, log) -> None:
    """The release layout: the merged thinker as ``thinker.*`` shards, the base's other tensors
    copied shard by shard, every other file of the base as it is."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    staged = out / ".thinker"
    thinker.save_pretrained(staged, safe_serialization=True)  # the release's own names (audio_tower, model, lm_head)
    weight_map: dict[str, str] = {}
    total = 0
    thinker_files = sorted(staged.glob("*.safetensors"))
    base_index = base / "model.safetensors.index.json"
    base_files = (sorted(set(read_json(base_index)["weight_map"].values())) if base_index.is_file()
                  else [p.name for p in sorted(base.glob("*.safetensors"))])
    n_files = len(thinker_files) + len(base_files)
    names = iter(f"model-{i:05d}-of-{n_files:05d}.safetensors" for i in range(1, n_files + 1))
    with progress_bar("export", n_files, unit="shards", transient=True) as advance:
        for part in thinker_files:
            # A thinker read from a release saves under "thinker.*" already; one from a thinker folder does not.
            state = {k if k.startswith("thinker.") else f"thinker.{k}": v for k, v in load_file(str(part)).items()}
            total += _write_shard(out, next(names), state, weight_map, save_file)
            advance(1)
        for shard in base_files:
            with safe_open(str(base / shard), framework="pt") as f:
                keys = f.keys()  # a safe_open handle is not iterable
                state = {k: f.get_tensor(k) for k in keys if not k.startswith("thinker.")}
            total += _write_shard(out, next(names), state, weight_map, save_file)
            advance(1)
    remove(staged)
    (out / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, indent=2) + "\n")
    for path in sorted(base.iterdir()):
        if path.is_file() and not path.name.endswith(".safetensors") and path.name != "model.safetensors.index.json":
            shutil.copy(path, out / path.name)
    config = read_json(base / "config.json")
    config["thinker_config"]["dtype"] = str(thinker.dtype).removeprefix("torch.")
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    log(f"release layout: {len(weight_map):,} tensors in {n_files} shards")


def _write_shard(out: Path, name: str, state: dict, weight_map: dict, save_file) -> int:
    if not state:
        return 0
    save_file({k: v.contiguous() for k, v in state.items()}, str(out / name), metadata={"format": "pt"})
    weight_map.update((k, name) for k in state)
    return sum(v.numel() * v.element_size() for v in state.values())


# ============================================================================================
# the model card
# ============================================================================================

def _load_hint(base: Path, layout: str, merged: bool) -> str:
    """How a user loads the export, by the base's family."""
    fam = inspect_family(base)[0]
    cls = fam.model_class().__name__
    if fam.name == "composed":
        loader = ("`nabra.model.load(\"<this folder>\")`, or transformers' `AutoModelForCausalLM.from_pretrained` "
                  "once `nabra.model.composed` is imported (it registers the `nabra_composed` classes; no other tool "
                  "knows this layout)")
        return f"A Nabra composed audio LLM: load with {loader}." if merged else (
            f"Load with PEFT on the base: `PeftModel.from_pretrained({cls}.from_pretrained(\"{base}\"), \"<this folder>\")` "
            "after `import nabra.model.composed`.")
    if merged:
        return (f"Load with transformers' `{cls}`" + (" (thinker layout) or `Qwen2_5OmniForConditionalGeneration` "
                                                     "(release layout)." if fam.name == "qwen2_5_omni" else "."))
    return f"Load with PEFT: `PeftModel.from_pretrained({cls}.from_pretrained(\"{base}\"), \"<this folder>\")`."


def model_card(run: Path, cfg: RunConfig, trained: Path, base: Path, layout: str, merged: bool, dtype: str) -> str:
    """``README.md`` of an export: what it is, how it was trained, how it scored, what it is not for."""
    info = read_json(trained / "nabra_run.json")
    lines = ["---", "library_name: " + ("transformers" if merged else "peft"), f"base_model: {base}",
             "language: [ar, en]", "tags: [nabra, qwen2.5-omni, audio, speech, arabic, asr, summarization,"
             " dialect-identification, emotion-recognition]", "---", "",
             f"# {run.name}: a Nabra multi-task audio model ({layout})", "",
             f"Trained with Nabra from `{base}` ({cfg.model.finetune}"
             + (f", LoRA r={cfg.model.lora.r}, alpha={cfg.model.lora.alpha}" if cfg.model.finetune == "lora" else "")
             + f"); weights: `{trained.name}/` at step {info.get('step', '?')}"
             + (f" (best dev composite {info['composite']:.3f})" if "composite" in info else "")
             + (f", exported in {dtype}." if merged else "."), "",
             "## Training", "",
             f"- schedule: **{cfg.schedule.name}**; tasks: {', '.join(cfg.data.tasks)}; "
             f"{cfg.train.max_steps or '?'} steps of global batch {cfg.train.batch_size}, lr {cfg.train.lr}, "
             f"loss reduction {cfg.train.loss_reduction}, seed {cfg.train.seed}",
             f"- prompts: {cfg.data.language or 'Arabic and English'}; dialect labels: "
             f"{', '.join(cfg.data.dialects or ['EGY', 'GLF', 'LAV', 'NOR', 'MSA'])}; emotion labels: "
             f"{', '.join(cfg.data.emotions or ['neutral', 'happy', 'sad', 'angry', 'surprised'])}",
             *[f"- declared task `{s.name}` (field `{s.field}`): {', '.join(s.labels.names)}"
               for s in cfg.task_set().declared()], ""]
    lines += ["## Data", "", *_data_summary(cfg), ""]
    lines += ["## Evaluation", "", *_metrics_table(run), ""]
    lines += ["## Use", "",
              "```bash", f"nabra analyze call.wav --model {run}", "```", "",
              _load_hint(base, layout, merged), "",
              "## Intended use and limits", "",
              "For transcribing Arabic (and English) speech, summarizing speech and text, and identifying "
              "dialect and emotion, on audio like the training data. Not evaluated outside it: scores on other "
              "domains, dialects, recording conditions or label sets are unknown. Dialect and emotion outputs are "
              "one of the fixed label sets above, with probabilities that are the model's, not calibrated ones. "
              "Do not use its outputs for decisions about people (hiring, policing, credit, health) without human "
              "review. A model trained on synthetic (eSpeak) speech, as Nabra's demo is, is a pipeline check, not "
              "a usable model.", ""]
    return "\n".join(lines)


def _data_summary(cfg: RunConfig) -> list[str]:
    try:
        st = manifest_stats(cfg.data.manifest).to_dict()
    except (NabraError, OSError) as e:
        return [f"`{cfg.data.manifest}`: no summary ({e})"]
    tasks = ", ".join(f"{t} {n:,}" for t, n in st["tasks"].items() if n)
    splits = ", ".join(f"{s} {n:,}" for s, n in st["splits"].items())
    return [f"`{cfg.data.manifest}`: {st['utterances']:,} utterances, {st['hours']:.2f} h, {st['speakers']:,} "
            f"speakers; per task: {tasks}; per split: {splits}",
            *([f"- dialects: {st['dialects']}"] if st["dialects"] else []),
            *([f"- emotions: {st['emotions']}"] if st["emotions"] else [])]


_COLUMNS = (("asr", "wer", "WER"), ("asr", "cer", "CER"), ("ssum", "rougeL", "SSUM R-L"), ("tsum", "rougeL", "TSUM R-L"),
            ("did", "macro_f1", "DID F1"), ("ser", "macro_f1", "SER F1"))


def _metrics_table(run: Path) -> list[str]:
    for split in ("test", "dev"):
        path = run / f"eval-{split}" / "metrics.json"
        if path.is_file():
            result = read_json(path)
            metrics = result.get("metrics", {})
            columns = [*_COLUMNS, *((t, "macro_f1", f"{t.upper()} F1") for t, m in metrics.items()
                                    if t not in ("did", "ser") and isinstance(m, dict) and "macro_f1" in m)]
            cells = [(label, metrics.get(task, {}).get(key)) for task, key, label in columns]
            cells = [(label, v) for label, v in cells if isinstance(v, int | float)]
            if not cells:
                break
            return [f"`nabra evaluate` on the {split} split of `{result.get('manifest')}`:", "",
                    "| " + " | ".join(label for label, _ in cells) + " | composite |",
                    "|" + "---|" * (len(cells) + 1),
                    "| " + " | ".join(f"{v:.3f}" for _, v in cells) + f" | {result.get('composite', float('nan')):.3f} |"]
    return [f"No evaluation in the run folder yet: run `nabra evaluate {run} --manifest M --split test` first."]
