"""The optimisation of a run: how many steps and micro-batches, AdamW with warm-up + cosine decay, seeding."""

from __future__ import annotations

import math
import random

import numpy as np
import torch

from nabra.config import RunConfig
from nabra.errors import NabraError


def total_steps(cfg: RunConfig, n_examples: int) -> int:
    """Optimizer steps of the run: ``train.max_steps``, or ``train.epochs`` passes over the examples."""
    if cfg.train.epochs:
        return max(1, math.ceil(cfg.train.epochs * n_examples / cfg.train.batch_size))
    return cfg.train.max_steps


def micro_batches(cfg: RunConfig, acc) -> int | None:
    """Micro-batches per process and step (gradient accumulation), checked against the world size;
    ``None`` with ``train.micro_batch_tokens`` (each step plans its own)."""
    world = acc.num_processes
    if cfg.train.micro_batch_tokens:
        if acc.distributed_type.value == "DEEPSPEED":
            raise NabraError("train.micro_batch_tokens gives each step its own number of micro-batches, which "
                             "DeepSpeed's engine cannot accumulate (a fixed gradient_accumulation_steps): use FSDP "
                             "(configs/accelerate/fsdp.yaml) or DDP, or train.micro_batch_size")
        if cfg.train.batch_size < world:
            raise NabraError(f"train.batch_size {cfg.train.batch_size} is smaller than the {world} processes")
        return None
    per_process, rest = divmod(cfg.train.batch_size, world)
    micro = cfg.train.micro_batch_size or per_process
    if rest or micro <= 0 or per_process % micro:
        raise NabraError(f"train.batch_size {cfg.train.batch_size} must be a multiple of processes ({world}) x "
                         f"train.micro_batch_size ({cfg.train.micro_batch_size})")
    if per_process // micro > 1 and acc.distributed_type.value == "DEEPSPEED":
        raise NabraError("with DeepSpeed, set train.micro_batch_size = batch_size / processes (DeepSpeed "
                         "accumulates itself: put gradient_accumulation_steps in its config instead)")
    return per_process // micro


def build_optimizer(model, cfg: RunConfig, total_steps: int):
    """AdamW over the trainable parameters; linear warm-up, then cosine down to ``min_lr_ratio``."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    warmup, floor = cfg.train.warmup_steps, cfg.train.min_lr_ratio

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
