"""``nabra model compose``: write a composed audio LLM (:mod:`nabra.model.composed`) from the audio
encoder of an audio-LLM checkpoint, a new projector and a local causal LM."""

from __future__ import annotations

import json
import os
from pathlib import Path

from transformers import AutoModelForCausalLM

from nabra.errors import NabraError
from nabra.files import check_output_folder, read_json, staged_folder
from nabra.model import tokens
from nabra.model.composed import PROJECTORS, ComposedAudioLMConfig, add_layout_tokens, from_parts
from nabra.model.families import FAMILIES
from nabra.model.families.base import loading
from nabra.model.load import load, save_folder, torch_dtype

COMPOSE_MARKER = "nabra_compose.json"


def compose(audio_from: str | os.PathLike, lm: str | os.PathLike, out: str | os.PathLike, *, projector: str = "mlp2",
            dtype: str = "float32", seed: int = 0, force: bool = False, log=print) -> Path:
    """Write a composed model to ``out``: the audio modules of the audio-LLM checkpoint ``audio_from``, a
    new projector, and the causal LM of the folder ``lm`` (its tokenizer gets the layout's tokens).
    ``out`` must be absent, empty or an earlier composed model, which only ``force`` replaces."""
    from transformers import AutoTokenizer

    if projector not in PROJECTORS:
        raise NabraError(f"unknown projector {projector!r}; choose one of {', '.join(PROJECTORS)}")
    dtype_ = torch_dtype(dtype)  # a clear error for an unknown name, before anything is read
    audio_from, lm = Path(audio_from), Path(lm)
    lm_config = lm / "config.json"
    if not lm_config.is_file():
        raise NabraError(f"{lm}: no config.json: not a causal LM folder")
    lm_json = read_json(lm_config)
    model_type = lm_json.get("model_type")
    if any(f.layout_of(lm_json) for f in FAMILIES.values()):
        raise NabraError(f"{lm}: is an audio LLM ({model_type}); --lm takes a text causal LM (Jais-2, Falcon-H1, Qwen3 ...)")
    out = check_output_folder(out, COMPOSE_MARKER, force=force, what="composed model",
                              protect=[("the audio checkpoint", audio_from), ("the LM", lm)])
    source = load(audio_from, dtype=dtype)
    parts = source.family.audio_parts(source.model)
    if not parts:
        raise NabraError(f"{audio_from}: the {source.family.title}'s audio encoder cannot be taken into a composed model")
    audio_config, width = source.family.audio_config(source.model.config)
    tower = getattr(source.family, "tower", source.family)  # a composed source: its own audio family

    with loading(lm, "causal LM"):
        language_model = AutoModelForCausalLM.from_pretrained(lm, dtype=dtype_, local_files_only=True,
                                                              use_safetensors=True)
    with loading(lm, "tokenizer"):
        tokenizer = AutoTokenizer.from_pretrained(lm, local_files_only=True)
    added = add_layout_tokens(tokenizer)
    if len(tokenizer) > language_model.get_input_embeddings().weight.shape[0]:
        language_model.resize_token_embeddings(len(tokenizer), mean_resizing=True)
    config = ComposedAudioLMConfig(audio_config=audio_config, text_config=language_model.config,
                                   audio_family=tower.name, audio_width=width, projector=projector,
                                   audio_token_id=tokenizer.convert_tokens_to_ids(tokens.AUDIO))
    model = from_parts(config, parts, language_model, seed)
    model.generation_config.eos_token_id = tokenizer.convert_tokens_to_ids(tokens.IM_END)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = None
    with staged_folder(out, replace=True) as tmp:
        save_folder(tmp, model, tokenizer, source.feature_extractor)
        (tmp / COMPOSE_MARKER).write_text(json.dumps({
            "audio_from": str(audio_from), "audio_family": tower.name, "lm": str(lm), "lm_model_type": model_type,
            "projector": projector, "tokens_added": added, "seed": seed}, indent=2, ensure_ascii=False) + "\n")
    n = sum(p.numel() for p in model.projector.parameters())
    log(f"composed {tower.title} audio encoder + {model_type} LM -> {out} (projector {projector}: {n:,} new "
        f"parameters; tokens added: {', '.join(added) or 'none'})")
    return out

