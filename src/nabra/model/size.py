"""What a checkpoint will take before it is downloaded in full: parameters per part, the weights'
memory in a dtype, and what LoRA trains — from ``config.json`` alone — and, given a GPU's memory,
the ``train.micro_batch_tokens`` that fits it.

The model is built on PyTorch's ``meta`` device (shapes, no storage), so a 30-B thinker is counted
in a second on a laptop, and the LoRA count is PEFT's own (the same targets as training).

The token budget (:func:`token_budget`) is an estimate from a stated memory model, per token of a
micro-batch (bf16 activations, 2 bytes an element, of a Llama-style decoder layer of width h,
key/value width k and MLP width i — routed experts count their active ``top-k x i``):

- what a layer keeps for its backward: its input and norm (2h), q, k, v and the attention output
  (h + 2k + h), the o-projection's input (h), the MLP's norm and input (2h), gate, up, SiLU and product
  (4i), and LoRA's dropped copies of each target's input (6h + i): ``2 (13h + 2k + 5i)`` bytes — the
  attention by SDPA/flash, with no length² term (Korthikanti et al. 2022 count 34h for a GPT layer of
  a 4h MLP; Qwen's SwiGLU is wider);
- with gradient checkpointing only each layer's input (2h bytes) is kept, plus one layer's
  activations while it is recomputed;
- the loss: logits at the answer positions only (:mod:`nabra.model.loss`), ~14 bytes a vocabulary
  entry (bf16 logits, their fp32 copy, log-softmax, its gradient), for the share of tokens that are
  answers (``answer_share``, default 0.15: a transcript of 10 tokens a second beside 25 audio tokens
  a second, plus labels);
- fixed: the weights, LoRA's trainable parameters in fp32 with gradients and AdamW's two moments
  (16 bytes each), and a reserve of 10 % of the GPU + 1.5 GiB (CUDA context, allocator fragmentation,
  the frozen audio encoder's transient activations — it keeps none for the backward).

``bench/bench_gpu.py`` measures the peak on a real GPU; the estimate says what it assumed.
"""

from __future__ import annotations

import os
from pathlib import Path

from nabra.errors import NabraError
from nabra.files import read_json
from nabra.model.config import LoraConfig
from nabra.model.families import detect

BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}


def model_size(path: str | os.PathLike, *, lora: LoraConfig | None = None, dtype: str = "bfloat16") -> dict:
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
        settings = lora or LoraConfig()
        names = [n for n, _ in model.named_modules()] if fam.lora_targets_by_name else None
        peft = get_peft_model(model, settings.peft_config(None, fam, names))
        trainable = sum(p.numel() for p in peft.parameters() if p.requires_grad)
    return {"family": fam.name, "title": fam.title, "layout": layout, "parameters": total, "parts": parts,
            "shape": lm_shape(config),
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
    lines.append("  activations: `--gpu-memory 80GiB` estimates the token budget that fits a GPU")
    return "\n".join(lines)


def lm_shape(config) -> dict:
    """``{"hidden", "kv", "mlp", "layers", "vocab"}`` of a model config's language model (the thinker's
    ``text_config``, a composed model's LM config, or the config itself)."""
    text = getattr(config, "text_config", None) or getattr(config, "llm_config", None) or config
    h = int(text.hidden_size)
    heads = int(getattr(text, "num_attention_heads", 1) or 1)
    head_dim = int(getattr(text, "head_dim", None) or h // heads)
    kv = int(getattr(text, "num_key_value_heads", None) or heads) * head_dim
    experts = getattr(text, "num_experts_per_tok", None)
    moe = getattr(text, "moe_intermediate_size", None)
    mlp = int(experts * moe) if experts and moe else int(getattr(text, "intermediate_size", 4 * h) or 4 * h)
    shared = getattr(text, "shared_expert_intermediate_size", None)
    return {"hidden": h, "kv": kv, "mlp": mlp + int(shared or 0), "layers": int(text.num_hidden_layers),
            "vocab": int(text.vocab_size)}


def token_budget(size: dict, shape: dict, gpu_gib: float, *, gradient_checkpointing: bool = True,
                 answer_share: float = 0.15) -> dict:
    """The micro-batch token budget that fits ``gpu_gib`` GiB, from :func:`model_size`'s ``size`` and the
    LM's :func:`lm_shape` (see the module docstring for the memory model); returns the budget with each
    term, in bytes."""
    h, k, i, layers, vocab = shape["hidden"], shape["kv"], shape["mlp"], shape["layers"], shape["vocab"]
    layer = 2 * (13 * h + 2 * k + 5 * i)
    activations = (2 * h * layers + layer) if gradient_checkpointing else layer * layers
    loss = answer_share * vocab * 14
    per_token = activations + loss
    gib = 2**30
    weights = size["weights_gib"] * gib
    lora = size["lora_trainable"] * 16
    reserve = 0.10 * gpu_gib * gib + 1.5 * gib
    free = gpu_gib * gib - weights - lora - reserve
    budget = int(free // per_token) // 256 * 256 if free > 0 else 0
    return {"gpu_gib": gpu_gib, "budget": budget, "per_token": per_token, "activations_per_token": activations,
            "loss_per_token": loss, "weights": weights, "lora_state": lora, "reserve": reserve, "free": free,
            "gradient_checkpointing": gradient_checkpointing, "answer_share": answer_share}


def render_budget(plan: dict, window_tokens: int | None = None) -> str:
    """The token budget as a few lines: the figure, its terms and what it assumed."""
    gib, kb = 2**30, 1024
    ckpt = "with" if plan["gradient_checkpointing"] else "without"
    lines = [f"  on a {plan['gpu_gib']:g}-GiB GPU, {ckpt} gradient checkpointing: "
             + (f"train.micro_batch_tokens ≈ {plan['budget']:,}" if plan["budget"] else "nothing fits")]
    lines.append(f"    weights {plan['weights'] / gib:.1f} GiB + LoRA state {plan['lora_state'] / gib:.2f} GiB + reserve "
                 f"{plan['reserve'] / gib:.1f} GiB; {plan['per_token'] / kb:,.0f} KiB a token (activations "
                 f"{plan['activations_per_token'] / kb:,.0f}, loss {plan['loss_per_token'] / kb:,.0f} at "
                 f"{plan['answer_share']:.0%} answer tokens)")
    if window_tokens and plan["budget"]:
        fits = plan["budget"] // window_tokens
        lines.append(f"    a full 300-s window is ~{window_tokens:,} tokens: {fits} of them per micro-batch"
                     + ("" if fits else " — NOT ONE: turn on gradient checkpointing, or use a larger GPU"))
    lines.append("    an estimate (bf16, SDPA/flash attention, no length² term); bench/bench_gpu.py measures the peak")
    return "\n".join(lines)


def parse_gib(text: str) -> float:
    """``80GiB``, ``80G``, ``80 GB`` (read as GiB, as GPU memory is sold) or ``80`` -> 80.0."""
    import re

    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(?:gib|gb|g)?\s*", text.lower())
    if not m or float(m.group(1)) <= 0:
        raise NabraError(f"--gpu-memory {text!r}: give the GPU's memory in GiB, e.g. 80GiB")
    return float(m.group(1))
