"""Attention over packed sequences without a length² mask: SDPA run one sequence at a time.

transformers confines attention to each packed sequence in two ways: flash-attention's varlen kernels
(CUDA, from the restarting ``position_ids``), or a block-diagonal mask of length² for SDPA and eager
attention — exact, but a packed micro-batch of 16k tokens then computes 16k × 16k scores where its
sequences need the sum of their squares, and is slower than padding. This module registers
``nabra_packed_sdpa`` in transformers' attention and mask interfaces: for a packed row (no
``attention_mask``, one row, positions that restart) it cuts query, key and value at the sequence
starts and runs causal SDPA on each piece; everything else (padded batches, generation with a cache,
bidirectional encoders) goes to transformers' own SDPA with its own mask. Nabra sets it on the
language model when ``collate.packing`` runs with ``model.attn_implementation: auto``; on CUDA each
piece takes SDPA's flash or memory-efficient kernel (``is_causal``, no mask).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

NAME = "nabra_packed_sdpa"


def sequence_starts(position_ids: torch.Tensor | None, length: int) -> list[int]:
    """Where each packed sequence starts: positions that do not follow their predecessor by 1."""
    if position_ids is None:
        return [0]
    pos = position_ids.reshape(-1, position_ids.shape[-1])[0]
    if pos.shape[0] != length:
        return [0]
    breaks = torch.nonzero(pos[1:] - pos[:-1] != 1).flatten() + 1
    return [0, *breaks.tolist()]


def packed_sdpa(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, **kwargs):
    """transformers' attention-function signature: ``(batch, heads, length, dim)`` in, ``(batch, length,
    heads, dim)`` out."""
    from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward

    length = query.shape[2]
    causal = getattr(module, "is_causal", False)
    if attention_mask is not None or not causal or query.shape[0] != 1 or key.shape[2] != length or length < 2:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    groups = getattr(module, "num_key_value_groups", 1)
    if groups > 1:
        key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    starts = sequence_starts(kwargs.get("position_ids"), length)
    ends = [*starts[1:], length]
    p = dropout if module.training else 0.0
    out = torch.cat([F.scaled_dot_product_attention(query[:, :, a:b], key[:, :, a:b], value[:, :, a:b], is_causal=True,
                                                    dropout_p=p, scale=scaling)
                     for a, b in zip(starts, ends, strict=True)], dim=2)
    return out.transpose(1, 2).contiguous(), None


def packed_mask(*args, attention_mask=None, **kwargs):
    """No mask for a row without one (the attention cuts it into its sequences); SDPA's mask otherwise."""
    from transformers.masking_utils import sdpa_mask

    if attention_mask is None:
        return None
    return sdpa_mask(*args, attention_mask=attention_mask, **kwargs)


def register() -> str:
    """Register the attention and its mask with transformers (idempotent); returns its name."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(NAME, packed_sdpa)
    AttentionMaskInterface.register(NAME, packed_mask)
    return NAME


def use_packed_sdpa(language_model) -> None:
    """Give ``language_model`` (the LM inside the thinker: its attention alone, not the audio encoder's)
    the per-sequence SDPA."""
    language_model.set_attn_implementation(register())
