"""LoRA (PEFT) on the thinker's language model only.

The audio encoder's attention also has ``q_proj``/``k_proj``/``v_proj``: matching bare module
names would put adapters into it. Targets are therefore a path regex anchored on the language
model's decoder layers. The audio projector ("aligner") or the whole audio encoder can be trained
in full on request (PEFT ``modules_to_save``), and the vision part is never touched.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from nabra.errors import NabraError
from nabra.files import check_output_folder, staged_folder
from nabra.model.config import LoraConfig
from nabra.model.families import family_of_model
from nabra.model.load import save_folder


def trainable(model, finetune: str = "lora", settings: LoraConfig | None = None, *,
              gradient_checkpointing: bool = False, label_token_ids: list[int] | None = None):
    """The thinker ready to train: LoRA adapters on the language model (everything else frozen), or
    with ``finetune="full"`` every weight but what its family leaves frozen (the vision part, weights
    the audio path never uses: every trainable weight must get a gradient, DDP needs it).
    ``label_token_ids``: the tokens of the label names, trained when ``settings.train_label_tokens``."""
    if finetune == "lora":
        model = apply_lora(model, settings, label_token_ids=label_token_ids)
    else:
        for module in family_of_model(model).frozen_in_full(model):
            module.requires_grad_(False)
    frozen_batch_norms_stay_in_eval(model)
    if gradient_checkpointing:
        model.gradient_checkpointing_enable()
        if hasattr(model, "enable_input_require_grads"):
            model.enable_input_require_grads()
    model.train()
    return model


def frozen_batch_norms_stay_in_eval(model) -> int:
    """Keep every BatchNorm whose weights are frozen in eval mode, whatever ``model.train()`` says;
    returns how many. In train mode a BatchNorm normalises with the batch's statistics and moves its
    running ones — a frozen audio encoder (Parakeet's convolution modules) would drift under LoRA, and
    its new statistics are in no adapter: the model evaluated or exported would not be the one trained."""
    import torch

    kept = 0
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and not any(
                p.requires_grad for p in module.parameters()):
            module.eval()
            module.train = lambda mode=True, module=module: module  # noqa: ARG005 - stays in eval
            kept += 1
    return kept


def apply_lora(model, settings: LoraConfig | None = None, *, label_token_ids: list[int] | None = None):
    """Wrap ``model`` in a PEFT LoRA model; everything else is frozen (but the output rows of
    ``label_token_ids`` with ``settings.train_label_tokens``)."""
    from peft import get_peft_model

    settings = settings or LoraConfig()
    tokens = None
    if settings.train_label_tokens:
        if not label_token_ids:
            raise NabraError("lora.train_label_tokens is set but no label token ids were given")
        tokens = {output_module_name(model): sorted(set(label_token_ids))}
    fam = family_of_model(model)
    names = [n for n, _ in model.named_modules()] if fam.lora_targets_by_name else None
    return get_peft_model(model, settings.peft_config(tokens, fam, names))


def output_module_name(model) -> str:
    """Path of the module whose rows score the tokens: the LM head, or the input embedding when the
    two share their weight (PEFT then applies the same rows to both). A full path: a bare
    ``embeddings`` would also name the vision tower's patch embedding (Nemotron)."""
    fam = family_of_model(model)
    embed, head = fam.input_embeddings(model), fam.output_embeddings(model)
    target = embed if head is None or head.weight is embed.weight else head
    return next(n for n, m in model.named_modules() if m is target)


def label_token_ids(tokenizer, label_sets) -> list[int]:
    """Every token id that spells a canonical label name of ``label_sets`` (the answers of did, ser, declared tasks)."""
    ids: set[int] = set()
    for labels in label_sets:
        for name in labels.names:
            ids.update(tokenizer(name, add_special_tokens=False)["input_ids"])
    return sorted(ids)


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


MERGE_MARKER = "nabra_merge.json"


def merge(bundle, adapter_dir: str | os.PathLike, out_dir: str | os.PathLike, *, force: bool = False) -> Path:
    """Merge an adapter into the bundle's thinker and write a plain thinker checkpoint that
    :func:`nabra.model.load` reads (weights, tokenizer, feature extractor). ``out_dir`` must be absent,
    empty or an earlier merge (``nabra_merge.json``), which only ``force`` replaces."""

    out_dir = check_output_folder(out_dir, MERGE_MARKER, force=force, what="merged model",
                                  protect=[("the base model", bundle.path), ("the adapter", adapter_dir)])
    merged = load_adapter(bundle.model, adapter_dir).merge_and_unload()
    with staged_folder(out_dir, replace=True) as tmp:
        save_folder(tmp, merged, bundle.tokenizer, bundle.feature_extractor)
        (tmp / MERGE_MARKER).write_text(json.dumps({"base": str(bundle.path), "adapter": str(adapter_dir)},
                                                   indent=2, ensure_ascii=False) + "\n")
    return out_dir
