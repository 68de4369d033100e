"""LoRA (PEFT) on the thinker's language model only.

The audio encoder's attention also has ``q_proj``/``k_proj``/``v_proj``: matching bare module
names would put adapters into it. Targets are therefore a path regex anchored on the language
model's decoder layers. The audio projector ("aligner") or the whole audio encoder can be trained
in full on request (PEFT ``modules_to_save``), and the vision part is never touched.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from nabra.errors import NabraError

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
ALIGNER_MODULES = ("audio_tower.proj", "audio_tower.ln_post")


@dataclass
class LoraSettings:
    """LoRA hyper-parameters and what else is trained."""

    r: int = 8
    """Rank of the low-rank update."""
    alpha: int = 16
    """Scaling numerator (the update is scaled by alpha / r)."""
    dropout: float = 0.05
    """Dropout on the LoRA input."""
    targets: tuple[str, ...] = PROJECTIONS
    """Projection names inside the language model's attention and MLP blocks."""
    train_aligner: bool = False
    """Also train the audio projector (``audio_tower.proj`` and its layer norm) in full."""
    train_audio_encoder: bool = False
    """Also train the whole audio encoder in full (implies the aligner)."""

    def __post_init__(self):
        unknown = set(self.targets) - set(PROJECTIONS)
        if unknown:
            raise NabraError(f"unknown LoRA targets {sorted(unknown)}; choose from {', '.join(PROJECTIONS)}")
        if self.r <= 0 or self.alpha <= 0 or not 0 <= self.dropout < 1:
            raise NabraError(f"LoRA needs r > 0, alpha > 0 and 0 <= dropout < 1 (got r={self.r}, alpha={self.alpha}, dropout={self.dropout})")

    def target_regex(self) -> str:
        """PEFT ``target_modules`` as a full-match regex over module paths of the language model."""
        return rf"model\.language_model\.layers\.\d+\.(?:self_attn|mlp)\.(?:{'|'.join(self.targets)})"

    def peft_config(self):
        from peft import LoraConfig

        modules_to_save = ["audio_tower"] if self.train_audio_encoder else list(ALIGNER_MODULES) if self.train_aligner else None
        return LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                          target_modules=self.target_regex(), modules_to_save=modules_to_save,
                          bias="none", task_type="CAUSAL_LM")


def apply_lora(model, settings: LoraSettings | None = None):
    """Wrap ``model`` in a PEFT LoRA model; everything else is frozen."""
    from peft import get_peft_model

    return get_peft_model(model, (settings or LoraSettings()).peft_config())


def trainable_parameter_names(model) -> list[str]:
    """Names of every parameter that will receive gradients."""
    return [name for name, p in model.named_parameters() if p.requires_grad]


def save_adapter(peft_model, out_dir: str | os.PathLike) -> Path:
    """Save the adapter in standard PEFT format (``adapter_config.json`` + ``adapter_model.safetensors``)."""
    out_dir = Path(out_dir)
    peft_model.save_pretrained(out_dir, safe_serialization=True)
    return out_dir


def load_adapter(model, adapter_dir: str | os.PathLike, *, trainable: bool = False):
    """Attach a saved PEFT adapter to ``model`` (the thinker)."""
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise NabraError(f"{adapter_dir}: no adapter_config.json: not a PEFT adapter folder")
    return PeftModel.from_pretrained(model, adapter_dir, is_trainable=trainable)


def merge(bundle, adapter_dir: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Merge an adapter into the bundle's thinker and write a plain thinker checkpoint that
    :func:`nabra.model.load` reads (weights, tokenizer, feature extractor)."""
    out_dir = Path(out_dir)
    merged = load_adapter(bundle.model, adapter_dir).merge_and_unload()
    merged.save_pretrained(out_dir, safe_serialization=True)
    bundle.tokenizer.save_pretrained(out_dir)
    bundle.feature_extractor.save_pretrained(out_dir)
    return out_dir
