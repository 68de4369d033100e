"""A config that agrees with its weights: ``tie_word_embeddings``.

A checkpoint's output layer is either its own tensor (``lm_head.weight``) or the input embedding
read twice ("tied"). Each consumer reads the flag from another level of a nested config:
transformers' thinker classes from the thinker's own config, vLLM from ``text_config`` (it builds the
language model from that block: Qwen2.5-Omni's ``Qwen2ForCausalLM``, Qwen3-Omni's MoE LM), and
transformers' ``Qwen3OmniMoeTextConfig`` (5.19) has no default for it at all, so a block without the
key fails there. A config whose levels disagree loads everywhere and answers wrongly somewhere: vLLM
tied ``lm_head`` to the embeddings and dropped the trained ``thinker.lm_head.weight`` of an export whose
``text_config`` said ``true`` (issue 29). So every config Nabra writes states the one truth of its
weights, explicitly, at every level a consumer may read.
"""

from __future__ import annotations

import json
from pathlib import Path

TIE_KEY = "tie_word_embeddings"
NESTED = ("thinker_config", "text_config", "llm_config")
"""The blocks of a config whose flag a consumer reads (the talker's is its own model's: not touched)."""


def tied_in(keys) -> bool:
    """Whether weights named ``keys`` tie their output layer: they do when no output-layer tensor of the
    language model is stored (a talker's or code predictor's own head does not count)."""
    return not any(_is_output_layer(k) for k in keys)


def _is_output_layer(key: str) -> bool:
    if not key.endswith("lm_head.weight"):
        return False
    return not key.startswith(("talker.", "code2wav.", "token2wav.", "code_predictor."))


def set_tie_flags(config: dict, tied: bool) -> dict:
    """``config`` (a ``config.json`` dict) with ``tie_word_embeddings`` = ``tied`` at its root and in every
    ``thinker_config``/``text_config``/``llm_config`` block under it; changed in place and returned."""
    config[TIE_KEY] = tied
    for key in NESTED:
        block = config.get(key)
        if isinstance(block, dict):
            set_tie_flags(block, tied)
    return config


def tie_flags(config: dict, path: str = "") -> dict[str, object]:
    """Every ``tie_word_embeddings`` the blocks a consumer reads hold, by dotted path (``""`` the root)."""
    found = {path or "(root)": config[TIE_KEY]} if TIE_KEY in config else {}
    for key in NESTED:
        block = config.get(key)
        if isinstance(block, dict):
            found.update(tie_flags(block, f"{path}{key}."))
    return found


def weight_keys(folder: str | Path) -> list[str]:
    """Every tensor name of the safetensors checkpoint in ``folder`` (read from headers, no tensor loaded)."""
    from safetensors import safe_open

    folder = Path(folder)
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        return list(json.loads(index.read_text(encoding="utf-8"))["weight_map"])
    keys: list[str] = []
    for part in sorted(folder.glob("*.safetensors")):
        if part.name.startswith("adapter_"):
            continue
        with safe_open(str(part), framework="pt") as f:
            keys.extend(f.keys())
    return keys


def tie_problems(folder: str | Path) -> list[str]:
    """What in ``folder``'s ``config.json`` disagrees with its weights (empty: nothing): a level whose flag
    contradicts them, or a block a consumer builds the language model from that does not say."""
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    tied = tied_in(weight_keys(folder))
    truth = "tied (no lm_head tensor)" if tied else "untied (an lm_head tensor of its own)"
    problems = [f"{path}tie_word_embeddings is {value}, but the weights are {truth}"
                for path, value in tie_flags(config).items() if value is not tied]
    for block in _lm_blocks(config):
        if TIE_KEY not in block[1]:
            problems.append(f"{block[0]} has no tie_word_embeddings (the weights are {truth})")
    return problems


def _lm_blocks(config: dict, path: str = "") -> list[tuple[str, dict]]:
    """The ``text_config`` blocks (vLLM builds the language model from them), by path."""
    found = []
    for key in NESTED:
        block = config.get(key)
        if isinstance(block, dict):
            if key == "text_config":
                found.append((f"{path}{key}", block))
            found.extend(_lm_blocks(block, f"{path}{key}."))
    return found


def fix_tie_flags(folder: str | Path) -> bool:
    """Make ``folder``'s ``config.json`` state what its weights are at every level; returns whether it changed."""
    folder = Path(folder)
    path = folder / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    before = json.dumps(config, sort_keys=True)
    set_tie_flags(config, tied_in(weight_keys(folder)))
    if json.dumps(config, sort_keys=True) == before:
        return False
    path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return True
