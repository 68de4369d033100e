"""Typed settings of the model room: the collator and LoRA.

Torch-free, so that the run config (``nabra.config``) is read and checked before torch loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from nabra.errors import NabraError, check_choices
from nabra.model.families import FAMILIES, Family, lm_path_regex
from nabra.model.families.qwen2_5_omni import QWEN2_5_OMNI
from nabra.tasks import SYSTEM_PROMPT

WINDOW = "window"
"""``collate.max_length: window``: the limit computed from the model's audio window at set-up."""


@dataclass
class CollatorConfig:
    """How examples become batches."""

    max_length: int | str | None = 2048
    """Longest token sequence (prompt with audio placeholders + answer). ``window``: computed at set-up from
    the model's audio window — its placeholders for a clip of the full window (300 s: 7,502 for
    Qwen2.5-Omni) + the longest prompt + the longest answer of the run —, so no clip the model can take
    whole is dropped; ``null``: no limit."""
    overlong: Literal["skip", "error"] = "skip"
    """What to do with an example longer than ``max_length``: ``skip`` (counted) or ``error``."""
    max_segment_seconds: float | None = None
    """Audio longer than this is cut into equal segments, each its own audio run. Default: the
    checkpoint's own window (its feature extractor's ``n_samples / sampling_rate``: 300 s for
    Qwen2.5-Omni and Qwen3-Omni, 30 s for Whisper-style extractors); it cannot exceed that window."""
    min_audio_seconds: float = 0.1
    """Shorter clips are zero-padded to this length (the encoder needs a few frames)."""
    system_prompt: str = SYSTEM_PROMPT
    """System message of every prompt."""
    packing: bool = False
    """Lay a training micro-batch's sequences end to end in one row, without padding (positions restart
    and attention stays within each sequence: SDPA one sequence at a time, or with
    ``model.attn_implementation: flash_attention_2`` its varlen kernels). With ``train.micro_batch_tokens``.
    The hybrid Mamba families refuse it (their recurrent state would run across sequences)."""

    def __post_init__(self):
        if isinstance(self.max_length, str) and self.max_length != WINDOW:
            raise NabraError(f"collate.max_length must be a number of tokens, {WINDOW!r} or null, got {self.max_length!r}")
        if isinstance(self.max_length, int) and self.max_length < 1:
            raise NabraError(f"collate.max_length must be positive, got {self.max_length}")
        if self.max_segment_seconds is not None and not self.max_segment_seconds > 0:
            raise NabraError(f"collate.max_segment_seconds must be > 0, got {self.max_segment_seconds}")
        check_choices(self, "collate")





@dataclass
class LoraConfig:
    """LoRA hyper-parameters and what else is trained."""

    r: int = 8
    """Rank of the low-rank update."""
    alpha: int = 16
    """Scaling numerator (the update is scaled by alpha / r)."""
    dropout: float = 0.05
    """Dropout on the LoRA input."""
    targets: tuple[str, ...] | None = None
    """Projection names inside the language model's blocks; ``None``: every one the family's LM has
    (Qwen: q/k/v/o_proj, gate/up/down_proj; Nemotron-H: also the Mamba in_proj/out_proj)."""
    train_aligner: bool = False
    """Also train the audio projector (``audio_tower.proj`` and its layer norm) in full."""
    train_audio_encoder: bool = False
    """Also train the whole audio encoder in full (implies the aligner)."""
    train_label_tokens: bool = False
    """Also train the output rows (``lm_head``) of the tokens that spell the run's label names (dialect,
    emotion and every declared label task) (PEFT ``trainable_token_indices``: a few hundred weights per token). For a base whose
    output layer never produced those tokens: its rows for them moved together in pre-training, and no
    hidden state can give any one of them more than a few percent (measured on the demo's base: 7.7 %),
    so adapters alone cannot learn to answer with a label."""

    def __post_init__(self):
        if self.targets is not None:
            self.targets = tuple(self.targets)
            known = sorted({p for fam in FAMILIES.values() for p in fam.projections})
            unknown = set(self.targets) - set(known)
            if unknown:
                raise NabraError(f"unknown LoRA targets {sorted(unknown)}; choose from {', '.join(known)}")
        if self.r <= 0 or self.alpha <= 0 or not 0 <= self.dropout < 1:
            raise NabraError(f"LoRA needs r > 0, alpha > 0 and 0 <= dropout < 1 (got r={self.r}, alpha={self.alpha}, dropout={self.dropout})")

    def resolved_targets(self, family: Family = QWEN2_5_OMNI) -> tuple[str, ...]:
        """The projections LoRA targets in a model of ``family``: :attr:`targets`, or all of the family's."""
        if self.targets is None:
            return family.projections
        foreign = [t for t in self.targets if t not in family.projections]
        if foreign:
            raise NabraError(f"LoRA targets {', '.join(foreign)} are not projections of the {family.title}'s "
                             f"language model; it has {', '.join(family.projections)}")
        return self.targets

    def target_regex(self, family: Family = QWEN2_5_OMNI) -> str:
        """PEFT ``target_modules`` as a full-match regex over module paths of the family's language model."""
        return lm_path_regex(family, self.resolved_targets(family))

    def peft_config(self, trainable_tokens: dict[str, list[int]] | None = None, family: Family = QWEN2_5_OMNI,
                    module_names: list[str] | None = None):
        """The PEFT config for a model of ``family``; ``trainable_tokens`` maps an embedding or output
        module's name to the token ids whose rows are trained too (see :attr:`train_label_tokens`).
        ``module_names``: every module path of the model, to target by name (``family.lora_targets_by_name``)."""
        import re

        from peft import LoraConfig as PeftLoraConfig

        targets: str | list[str] = self.target_regex(family)
        if family.lora_targets_by_name:
            if module_names is None:
                raise NabraError(f"LoRA on a {family.title} targets modules by name: pass the model's module names")
            targets = sorted(n for n in module_names if re.fullmatch(targets, n))
            if not targets:
                raise NabraError(f"no module of the {family.title} matches the LoRA targets "
                                 f"{', '.join(self.resolved_targets(family))}")

        modules_to_save = ([family.audio_encoder] if self.train_audio_encoder else
                           list(family.aligner_modules) if self.train_aligner else None)
        return PeftLoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                          target_modules=targets, modules_to_save=modules_to_save,
                          trainable_token_indices=trainable_tokens or None, bias="none", task_type="CAUSAL_LM")
