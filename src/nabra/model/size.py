"""What a checkpoint will take before it is downloaded in full: parameters per part, the weights'
memory in a dtype, and what LoRA trains — from ``config.json`` alone.

The model is built on PyTorch's ``meta`` device (shapes, no storage), so a 30-B thinker is counted
in a second on a laptop, and the LoRA count is PEFT's own (the same targets as training). Activations
are not estimated: they depend on sequence length, the attention kernel and checkpointing, and
belong to a measured GPU bench.
"""

from __future__ import annotations

import os
from pathlib import Path

from nabra.errors import NabraError
from nabra.model.config import LoraSettings
from nabra.model.families import detect
from nabra.model.load import read_json

BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}


def model_size(path: str | os.PathLike, *, lora: LoraSettings | None = None, dtype: str = "bfloat16") -> dict:
    """``{"family", "layout", "parameters", "parts": {name: n}, "weights_gib", "lora_trainable"}`` of the
    checkpoint folder ``path`` (only its ``config.json`` is read); ``lora``: the settings to count
    (default r 8 on every projection); ``dtype``: of the weights."""
    import torch
    from peft import get_peft_model

    if dtype not in BYTES:
        raise NabraError(f"dtype must be one of {', '.join(BYTES)}, got {dtype!r}")
    path = Path(path)
    config_file = path / "config.json"
    if not config_file.is_file():
        raise NabraError(f"{path}: no config.json: not a model checkpoint folder")
    fam, layout = detect(read_json(config_file), str(config_file))
    config = fam.load_config(path, layout)
    with torch.device("meta"):
        model = fam.new_model(config)
        total = sum(p.numel() for p in model.parameters())
        parts = {name: sum(p.numel() for p in module.parameters()) for name, module in fam.parts(model).items()}
        settings = lora or LoraSettings()
        names = [n for n, _ in model.named_modules()] if fam.lora_targets_by_name else None
        peft = get_peft_model(model, settings.peft_config(None, fam, names))
        trainable = sum(p.numel() for p in peft.parameters() if p.requires_grad)
    return {"family": fam.name, "title": fam.title, "layout": layout, "parameters": total, "parts": parts,
            "dtype": dtype, "weights_gib": total * BYTES[dtype] / 2**30, "lora_trainable": trainable,
            "lora": {"r": settings.r, "targets": list(settings.resolved_targets(fam)), "train_aligner": settings.train_aligner}}


def render(size: dict) -> str:
    """The size as a few lines of text."""
    lines = [f"{size['title']} (family {size['family']}, {size['layout']} layout): {size['parameters']:,} parameters"]
    lines += [f"  {name:15s} {n:>16,}" for name, n in size["parts"].items()]
    lines.append(f"  weights in {size['dtype']}: {size['weights_gib']:.1f} GiB")
    lora = size["lora"]
    lines.append(f"  LoRA r {lora['r']} on the LM's {'/'.join(lora['targets'])} (those it has as Linear layers)"
                 + (" + the audio projector" if lora["train_aligner"] else "")
                 + f": {size['lora_trainable']:,} trainable parameters "
                 f"({100 * size['lora_trainable'] / size['parameters']:.3f} %)")
    lines.append("  activations: not estimated (sequence length, attention kernel and checkpointing decide them)")
    return "\n".join(lines)
