"""``nabra export RUN --out DIR [--format peft|merged|vllm-lora] [--dtype bfloat16]``: a trained run as
a folder other tools load — transformers, PEFT, and vLLM (checked against the real engine:
``make check-vllm``, docs/serve-vllm.md).

- ``peft`` (the default for a LoRA run): the standard PEFT folder (``adapter_config.json`` +
  ``adapter_model.safetensors``, loadable with ``PeftModel.from_pretrained`` on the stock thinker class).
- ``merged`` (``--merge``; a full fine-tune always): the adapter merged into its base, in safetensors, in
  ``--dtype``. For a family with a release layout (Qwen2.5-Omni) that layout, whatever the base was: the
  merged thinker under ``thinker.*`` with a release ``config.json``; from a release base its talker and
  token2wav tensors are copied beside it shard by shard (never all in memory) with its ``spk_dict.pt``,
  from a thinker-only base the config says ``enable_audio_output: false``. vLLM's
  ``Qwen2_5OmniForConditionalGeneration`` and transformers' full class load it; a thinker-only
  config is in no serving engine's registry. Other families: what their model class saves.
- ``vllm-lora``: the adapter as vLLM's LoRA takes it — the release's module names
  (``thinker.model.layers.N…``: vLLM maps only those; under the trainable class's names it loads the
  adapter and changes nothing), LoRA matrices only. What vLLM cannot apply (a trained aligner or
  encoder, ``modules_to_save``; trained label rows, ``trainable_token_indices``; DoRA) is refused with
  the reason and the command that works (``--format merged``). A thinker-only base is written beside it
  in the release layout (``base/``), since vLLM cannot load the base otherwise.

Every kind ships the prompt: the chat template's default system prompt is the run's, and the model
card gives each task's messages and a client for vLLM's ``/v1/chat/completions``. Every config written
states ``tie_word_embeddings`` as its weights are (:mod:`nabra.model.ties`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from nabra.config import RunConfig
from nabra.corpus.manifest import Utterance
from nabra.corpus.stats import manifest_stats
from nabra.errors import NabraError
from nabra.evaluate.metrics import headline_columns
from nabra.files import atomic_path, check_output_folder, read_json, remove, write_text
from nabra.model import load
from nabra.model.families.qwen2_5_omni import RELEASE_IMAGE_KEYS
from nabra.model.load import inspect_checkpoint, inspect_family, save_folder, torch_dtype
from nabra.model.lora import load_adapter
from nabra.model.ties import set_tie_flags, tied_in
from nabra.progress import progress_bar
from nabra.run.folder import EXPORTED_CONFIG, RunFolder
from nabra.tasks import prompt_example

DTYPES = ("bfloat16", "float16", "float32")
FORMATS = ("peft", "merged", "vllm-lora")
_WEIGHT_FILES = ("adapter_config.json", "adapter_model.safetensors")
_TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json")


EXPORT_MARKER = "nabra_export.json"
"""What marks a folder as an export of Nabra's (which ``force`` may replace)."""


def export(run: str | Path, out: str | Path, *, merge: bool = False, fmt: str | None = None,
           dtype: str = "bfloat16", weights: str | None = None, base: str | None = None, force: bool = False,
           log=print) -> Path:
    """Export the model of ``run`` (its ``best/`` when there is one, else ``final/``; or ``weights``)
    to ``out`` as ``fmt`` (:data:`FORMATS`; ``merge``: ``merged``); returns ``out``. ``base``: the base
    model folder when the run's is elsewhere now.

    ``out`` must be absent, empty, or an earlier export (``nabra_export.json``), which only ``force``
    replaces; never a folder that holds or lies inside the run or its base model."""
    if dtype not in DTYPES:
        raise NabraError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if fmt is not None and fmt not in FORMATS:
        raise NabraError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if merge and fmt not in (None, "merged"):
        raise NabraError(f"--merge is --format merged: it cannot go with --format {fmt}")
    run = Path(run)
    found = RunFolder.find(run)
    if found is None:
        raise NabraError(f"{run}: not a run folder (no config.yaml): export needs the run that trained the model")
    if weights not in (None, "best", "final"):
        raise NabraError(f"--weights must be best or final, got {weights!r}")
    folder, cfg = found.path, found.config()
    trained = found.weights(weights)
    adapter = (trained / "adapter_config.json").is_file()
    fmt = fmt or ("merged" if merge or not adapter else "peft")
    if not adapter and fmt != "merged":
        raise NabraError(f"{trained}: a full fine-tune has no adapter to export as {fmt}: "
                         f"export the whole model (nabra export {run} --out DIR)")
    base_dir = Path(base or _base_of(found, trained))
    family, base_layout, _ = inspect_family(base_dir)
    if fmt == "vllm-lora":
        _check_vllm_lora(trained, family, run)
    out = check_output_folder(out, EXPORT_MARKER, force=force, what="export",
                              protect=[("the run", folder), ("its base model", base_dir)])
    system = cfg.collate.system_prompt
    with atomic_path(out, folder=True) as tmp:
        if fmt == "peft":
            for name in _WEIGHT_FILES:
                shutil.copy(trained / name, tmp / name)
            layout = "PEFT adapter"
        elif fmt == "vllm-lora":
            layout = _vllm_lora(trained, base_dir, base_layout, tmp, dtype, system, log)
        elif adapter:
            layout = _merged(trained, base_dir, tmp, dtype, system, log)
        else:  # a full fine-tune: the thinker itself
            layout = _full(trained, base_dir, tmp, dtype, system, log)
        write_text(tmp / "README.md", model_card(found, trained, base_dir, layout, fmt, dtype))
        write_text(tmp / EXPORTED_CONFIG, found.config_file.read_text(encoding="utf-8"))
        (tmp / EXPORT_MARKER).write_text(json.dumps(
            {"run": str(folder.resolve()), "weights": trained.name, "format": fmt, "layout": layout,
             "base_model": str(base_dir), "dtype": dtype if fmt == "merged" else None,
             "system_prompt": system}, indent=2, ensure_ascii=False) + "\n")
    log(f"exported {trained} as {layout} -> {out}")
    return out


def _base_of(run: RunFolder, trained: Path) -> str:
    recorded = run.base_model(trained.name)
    if not Path(recorded).is_dir():
        raise NabraError(f"{trained}: its base model {recorded} is not there: pass --base FOLDER")
    return recorded


# ============================================================================================
# merged weights
# ============================================================================================

def _full(trained: Path, base: Path, out: Path, dtype: str, system: str, log) -> str:
    bundle = load(trained, dtype=dtype)
    if bundle.family.release_architecture:
        _release(base, bundle, bundle.model, out, system, log)
        return f"full fine-tune, release layout ({bundle.family.title} under thinker.*)"
    _save_thinker(bundle, bundle.model, out, system)
    return "thinker (full fine-tune)"


def _save_thinker(bundle, model, out: Path, system: str) -> None:
    save_folder(out, model, bundle.tokenizer, bundle.feature_extractor)
    write_chat_template(out, bundle.family, system)


def _merged(adapter: Path, base: Path, out: Path, dtype: str, system: str, log) -> str:
    layout, _ = inspect_checkpoint(base)
    log(f"merging {adapter} into {base} ({layout} layout) in {dtype}")
    bundle = load(base, dtype="float32")  # merge in float32, then cast once
    merged = load_adapter(bundle.model, adapter).merge_and_unload().to(torch_dtype(dtype))
    if not bundle.family.release_architecture:
        _save_thinker(bundle, merged, out, system)  # the model class's own layout (save_pretrained)
        return f"merged {bundle.family.title} (save_pretrained layout)"
    _release(base, bundle, merged, out, system, log)
    return f"merged release ({bundle.family.title} under thinker.*)"


def _release(base: Path, bundle, thinker, out: Path, system: str, log) -> None:
    """The release layout in ``out``: ``thinker``'s tensors as ``thinker.*`` shards; from a release base
    its other tensors copied shard by shard and every other file of it as it is; from a thinker-only
    base a release config without a talker and the processor files a release has."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from_release = bundle.layout == "release"
    staged = out / ".thinker"
    thinker.save_pretrained(staged, safe_serialization=True)  # the release's own names (audio_tower, model, lm_head)
    thinker_files = sorted(staged.glob("*.safetensors"))
    others: list[tuple[str, list[str]]] = []  # base shards holding tensors other than the thinker's
    if from_release:
        base_index = base / "model.safetensors.index.json"
        base_files = (sorted(set(read_json(base_index)["weight_map"].values())) if base_index.is_file()
                      else [p.name for p in sorted(base.glob("*.safetensors"))])
        for shard in base_files:
            with safe_open(str(base / shard), framework="pt") as f:
                keys = [k for k in f.keys() if not k.startswith("thinker.")]  # noqa: SIM118 - a safe_open handle is not iterable
            if keys:
                others.append((shard, keys))
    n_files = len(thinker_files) + len(others)
    names = iter(f"model-{i:05d}-of-{n_files:05d}.safetensors" for i in range(1, n_files + 1))
    weight_map: dict[str, str] = {}
    total = 0
    with progress_bar("export", n_files, unit="shards", transient=True) as advance:
        for part in thinker_files:
            # A thinker read from a release saves under "thinker.*" already; one from a thinker folder does not.
            state = {k if k.startswith("thinker.") else f"thinker.{k}": v for k, v in load_file(str(part)).items()}
            total += _write_shard(out, next(names), state, weight_map, save_file)
            advance(1)
        for shard, keys in others:
            with safe_open(str(base / shard), framework="pt") as f:
                state = {k: f.get_tensor(k) for k in keys}
            total += _write_shard(out, next(names), state, weight_map, save_file)
            advance(1)
    remove(staged)
    (out / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, indent=2) + "\n")
    if from_release:
        for path in sorted(base.iterdir()):
            if path.is_file() and not path.name.endswith(".safetensors") and path.name != "model.safetensors.index.json":
                shutil.copy(path, out / path.name)
        config = read_json(base / "config.json")
    else:
        bundle.tokenizer.save_pretrained(out)
        (out / "generation_config.json").write_text(thinker.generation_config.to_json_string())
        config = bundle.family.release_config(thinker.config)
        # transformers' full class reads spk_dict.pt whatever the config says: no talker, no speakers
        import torch

        torch.save({}, out / "spk_dict.pt")
    _release_preprocessor(bundle, out)
    config["thinker_config"]["dtype"] = str(thinker.dtype).removeprefix("torch.")
    set_tie_flags(config, tied_in(weight_map))
    (out / "config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    write_chat_template(out, bundle.family, system)
    log(f"release layout: {len(weight_map):,} tensors in {n_files} shards")


def _release_preprocessor(bundle, out: Path) -> None:
    """``preprocessor_config.json`` as the release has it: the audio keys and the Qwen2-VL image keys
    (the processor a serving engine builds wants them even for audio only)."""

    path = out / "preprocessor_config.json"
    have = read_json(path) if path.is_file() else {}
    audio = bundle.feature_extractor.to_dict()
    merged = {**audio, **RELEASE_IMAGE_KEYS, **{k: v for k, v in have.items() if k not in audio}}
    path.write_text(json.dumps(merged, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def _write_shard(out: Path, name: str, state: dict, weight_map: dict, save_file) -> int:
    save_file({k: v.contiguous() for k, v in state.items()}, str(out / name), metadata={"format": "pt"})
    weight_map.update((k, name) for k in state)
    return sum(v.numel() * v.element_size() for v in state.values())


# ============================================================================================
# the prompt
# ============================================================================================

def chat_template(family, system: str) -> str:
    """The family's chat template with ``system`` as the system message when a conversation has none:
    an OpenAI-style client that sends only the user's turn gets the prompt the model was trained on."""
    literal = json.dumps(system)  # a Jinja string literal: its escapes are Python's (\\n, \\uXXXX)
    default = ("{%- if messages[0]['role'] != 'system' -%}{{ '<|im_start|>system\\n' + " + literal
               + " + '<|im_end|>\\n' }}{%- endif -%}")
    return default + family.chat_template


def write_chat_template(out: Path, family, system: str) -> None:
    """Nabra's chat template (its default system prompt the run's) in every place a consumer reads one:
    ``chat_template.jinja`` (transformers 5), ``chat_template.json`` (a release's processor), and not in
    ``tokenizer_config.json`` (a stale copy there would win in older readers)."""
    template = chat_template(family, system)
    (out / "chat_template.jinja").write_text(template, encoding="utf-8")
    (out / "chat_template.json").write_text(json.dumps({"chat_template": template}, indent=2, ensure_ascii=False) + "\n",
                                            encoding="utf-8")
    tokenizer_config = out / "tokenizer_config.json"
    if tokenizer_config.is_file():
        data = read_json(tokenizer_config)
        if data.pop("chat_template", None) is not None:
            tokenizer_config.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# ============================================================================================
# an adapter for vLLM's LoRA
# ============================================================================================

def vllm_lora_refusals(adapter_config: dict) -> list[str]:
    """Why vLLM's LoRA cannot apply an adapter of this config (empty: it can)."""
    why = []
    if adapter_config.get("modules_to_save"):
        why.append(f"it trains {', '.join(adapter_config['modules_to_save'])} in full (modules_to_save: "
                   "lora.train_aligner / train_audio_encoder), and vLLM takes modules_to_save only for a "
                   "classifier or score head")
    if adapter_config.get("trainable_token_indices"):
        why.append("it trains output rows of the label tokens (trainable_token_indices: lora.train_label_tokens), "
                   "which vLLM's LoRA has no place for")
    if adapter_config.get("use_dora"):
        why.append("it is a DoRA adapter, which vLLM does not support")
    if adapter_config.get("bias", "none") != "none":
        why.append("it trains biases, which vLLM's LoRA does not support")
    return why


def _check_vllm_lora(trained: Path, family, run: Path) -> None:
    if family.lm_release_prefix is None:
        raise NabraError(f"--format vllm-lora: vLLM has no LoRA path for the {family.title} that Nabra can name "
                         f"(no release layout): export the merged model instead (nabra export {run} --out DIR --merge)")
    why = vllm_lora_refusals(read_json(trained / "adapter_config.json"))
    if why:
        raise NabraError(f"--format vllm-lora: vLLM cannot apply this adapter: {'; '.join(why)}. Export the merged "
                         f"model instead, which holds all of it: nabra export {run} --out DIR --merge")


def vllm_lora_name(key: str, prefix: tuple[str, str]) -> str:
    """A PEFT tensor name under the trainable class's module path, as the release names the module:
    ``base_model.model.model.language_model.layers.0.self_attn.q_proj.lora_A.weight`` ->
    ``base_model.model.thinker.model.layers.0.self_attn.q_proj.lora_A.weight``."""
    head = "base_model.model."
    inner = key.removeprefix(head)
    if not inner.startswith(prefix[0]):
        raise NabraError(f"adapter tensor {key} is not in the language model ({prefix[0]}…): vLLM would not apply it")
    return head + prefix[1] + inner[len(prefix[0]):]


def _vllm_lora(trained: Path, base: Path, base_layout: str, out: Path, dtype: str, system: str, log) -> str:
    from safetensors.torch import load_file, save_file

    family = inspect_family(base)[0]
    state = load_file(str(trained / "adapter_model.safetensors"))
    save_file({vllm_lora_name(k, family.lm_release_prefix): v.contiguous() for k, v in state.items()},
              str(out / "adapter_model.safetensors"), metadata={"format": "pt"})
    config = read_json(trained / "adapter_config.json")
    config["target_modules"] = sorted({k.split(".lora_")[0].rsplit(".", 1)[-1] for k in state})
    config["base_model_name_or_path"] = str(base) if base_layout == "release" else "base"
    (out / "adapter_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    if base_layout != "release":
        log(f"{base} is thinker-only, which vLLM cannot load: writing it in the release layout to {out.name}/base")
        bundle = load(base, dtype=dtype)
        (out / "base").mkdir()
        _release(base, bundle, bundle.model, out / "base", system, log)
    return "vLLM LoRA adapter (release module names)"


# ============================================================================================
# the model card
# ============================================================================================

def _load_hint(base: Path, layout: str, fmt: str) -> str:
    """How a user loads the export with transformers or PEFT, by the base's family."""
    fam = inspect_family(base)[0]
    cls = fam.model_class().__name__
    merged = fmt == "merged"
    if fam.name == "composed":
        loader = ("`nabra.model.load(\"<this folder>\")`, or transformers' `AutoModelForCausalLM.from_pretrained` "
                  "once `nabra.model.composed` is imported (it registers the `nabra_composed` classes; no other tool "
                  "knows this layout)")
        return f"A Nabra composed audio LLM: load with {loader}." if merged else (
            f"Load with PEFT on the base: `PeftModel.from_pretrained({cls}.from_pretrained(\"{base}\"), \"<this folder>\")` "
            "after `import nabra.model.composed`.")
    if merged and fam.release_architecture:
        return (f"Load with transformers' `{fam.release_architecture}` (the thinker is its `.thinker`), or "
                "`nabra.model.load(\"<this folder>\")`.")
    if merged:
        return f"Load with transformers' `{cls}`."
    if fmt == "vllm-lora":
        return ("This adapter names modules as the release does (`thinker.model.layers.N…`), for vLLM; for PEFT on "
                "transformers export the run with `--format peft`.")
    return f"Load with PEFT: `PeftModel.from_pretrained({cls}.from_pretrained(\"{base}\"), \"<this folder>\")`."


def task_messages(cfg: RunConfig, task: str, *, language: str = "ar", audio_part: dict | None = None,
                  transcript: str = "<the text to summarize>") -> list[dict]:
    """The OpenAI-style messages of ``task`` as Nabra prompts it (``nabra analyze``'s prompt: the first
    template of ``language``): the run's system prompt, then the user's turn with the audio first."""
    task_set = cfg.task_set()
    spec = task_set[task]
    utt = Utterance(id="call", audio="call.wav" if spec.audio else None, language="ar",
                    transcript=transcript if task == "tsum" else None)
    instruction = prompt_example(utt, task, language=language, task_set=task_set).instruction
    audio = audio_part or {"type": "input_audio", "input_audio": {"data": "<base64 of call.wav>", "format": "wav"}}
    user = [audio, {"type": "text", "text": instruction}] if spec.audio else instruction
    return [{"role": "system", "content": cfg.collate.system_prompt}, {"role": "user", "content": user}]


def _serve_command(out_hint: str, base: Path, fmt: str, cfg: RunConfig) -> list[str]:
    head = "python -m vllm.entrypoints.openai.api_server"  # the CPU build's `vllm` script does not start
    if fmt == "vllm-lora":
        model = str(base) if inspect_checkpoint(base)[0] == "release" else f"{out_hint}/base"
        return [f"{head} --model {model} --served-model-name base --host 127.0.0.1 --port 8000 \\",
                f"    --enable-lora --lora-modules nabra={out_hint} --max-lora-rank {max(8, cfg.model.lora.r)}"]
    return [f"{head} --model {out_hint} --served-model-name nabra --host 127.0.0.1 --port 8000"]


def client_snippet(cfg: RunConfig) -> str:
    """A client for vLLM's ``/v1/chat/completions`` that sends Nabra's prompt (valid Python; the tests run it)."""
    task_set = cfg.task_set()
    instructions = {t: task_messages(cfg, t)[1]["content"] for t in task_set}
    instructions = {t: (m[1]["text"] if isinstance(m, list) else m) for t, m in instructions.items()}
    audio = sorted(t for t in task_set if task_set[t].audio)
    lines = [
        "import base64",
        "import sys",
        "",
        "from openai import OpenAI",
        "",
        f"SYSTEM = {cfg.collate.system_prompt!r}",
        "INSTRUCTIONS = {  # the prompt nabra analyze sends, task by task",
        *[f"    {t!r}: {i!r}," for t, i in instructions.items()],
        "}",
        f"AUDIO_TASKS = {audio!r}",
        "",
        "",
        "def messages(task, source):",
        "    \"\"\"source: the WAV file of an audio task, the text itself for tsum.\"\"\"",
        "    if task not in AUDIO_TASKS:  # tsum: the text to summarize is in the instruction",
        "        return [{'role': 'system', 'content': SYSTEM},",
        "                {'role': 'user', 'content': INSTRUCTIONS[task].replace('<the text to summarize>', source)}]",
        "    with open(source, 'rb') as f:",
        "        data = base64.b64encode(f.read()).decode()",
        "    return [{'role': 'system', 'content': SYSTEM},",
        "            {'role': 'user', 'content': [{'type': 'input_audio', 'input_audio': {'data': data, 'format': 'wav'}},",
        "                                         {'type': 'text', 'text': INSTRUCTIONS[task]}]}]",
        "",
        "",
        "client = OpenAI(base_url='http://127.0.0.1:8000/v1', api_key='EMPTY')",
        "task, source = sys.argv[1], sys.argv[2]  # asr call.wav, or tsum \"the text\"",
        "reply = client.chat.completions.create(model='nabra', messages=messages(task, source), temperature=0, max_tokens=256)",
        "print(reply.choices[0].message.content)",
    ]
    return "\n".join(lines)


def _prompt_section(cfg: RunConfig, base: Path, fmt: str) -> list[str]:
    task_set = cfg.task_set()
    rows = []
    for task in task_set:
        ar, en = (task_messages(cfg, task, language=lang)[1]["content"] for lang in ("ar", "en"))
        ar, en = ((m[1]["text"] if isinstance(m, list) else m).replace("\n", " ") for m in (ar, en))
        rows.append(f"| `{task}` | {'audio, then the instruction' if task_set[task].audio else 'text only'} | {ar} | {en} |")
    family = inspect_family(base)[0]
    served = fmt == "vllm-lora" or (fmt == "merged" and family.release_architecture)
    lines = ["## Prompt", "",
             f"Every prompt is a system message, `{cfg.collate.system_prompt}` (the chat template's default, so a "
             "client that sends only the user's turn gets it too), then the user's turn: the audio first, then the "
             "instruction. `nabra analyze` sends the first instruction of each task:", "",
             "| task | user turn | Arabic | English |", "|---|---|---|---|", *rows, ""]
    if not served:
        why = ("this is the PEFT adapter under the trainable class's module names: export with `--format vllm-lora` "
               "(an adapter vLLM applies) or `--merge`" if fmt == "peft" and family.release_architecture else
               f"Nabra does not write the {family.title} in a layout checked against vLLM (only Qwen2.5-Omni's "
               "release layout is): serve it with `nabra serve`")
        return [*lines, f"Serving with vLLM: {why}.", ""]
    return [*lines, "## Serve with vLLM", "",
            "```bash", *_serve_command("<this folder>", base, fmt, cfg), "```", "",
            "Then ask it with the OpenAI client (`python ask.py asr call.wav`):", "",
            "```python", client_snippet(cfg), "```", ""]


def model_card(folder: RunFolder, trained: Path, base: Path, layout: str, fmt: str, dtype: str) -> str:
    """``README.md`` of an export: what it is, how it was trained, how it scored, how to prompt and serve
    it, what it is not for."""
    run, cfg, info = folder.path, folder.config(), folder.info(trained.name)
    merged = fmt == "merged"
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
    lines += ["## Evaluation", "", *_metrics_table(folder), ""]
    lines += ["## Use", "",
              "```bash", f"nabra analyze call.wav --model {run}",
              *(["nabra analyze call.wav --model <this folder>   # a merged export reads as a checkpoint"] if merged else []),
              "```", "",
              _load_hint(base, layout, fmt), "", *_prompt_section(cfg, base, fmt),
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


def _metrics_table(run: RunFolder) -> list[str]:
    for split in ("test", "dev"):
        result = run.final_metrics(split)
        if result is not None:
            metrics = result.get("metrics", {})
            cells = [(label, metrics.get(task, {}).get(key)) for task, key, label in headline_columns(metrics)]
            cells = [(label, v) for label, v in cells if isinstance(v, int | float)]
            if not cells:
                break
            return [f"`nabra evaluate` on the {split} split of `{result.get('manifest')}`:", "",
                    "| " + " | ".join(label for label, _ in cells) + " | composite |",
                    "|" + "---|" * (len(cells) + 1),
                    "| " + " | ".join(f"{v:.3f}" for _, v in cells) + f" | {result.get('composite', float('nan')):.3f} |"]
    return [f"No evaluation in the run folder yet: run `nabra evaluate {run} --manifest M --split test` first."]
