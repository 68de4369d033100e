"""The interface every model family implements."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nabra.errors import NabraError


class Family:
    """What is specific to one audio-LLM family. Subclasses set the attributes and implement the methods."""

    name: str = ""
    """Registry name (``model.family``)."""
    title: str = ""
    """Human name, for messages and docs."""
    model_types: dict[str, str] = {}
    """``config.json`` model type -> on-disk layout name."""
    lm_layers: str = ""
    """Regex of the language model's decoder layers' module paths (``…\\.layers\\.\\d+``)."""
    projections: tuple[str, ...] = ()
    """The LM's Linear projections LoRA may target (``lora.targets``; all by default)."""
    lora_blocks: tuple[str, ...] = ()
    """Sub-modules of a decoder layer whose projections LoRA may target (``self_attn``, ``mlp``)."""
    aligner_modules: tuple[str, ...] = ()
    """The audio projector's module paths (trained in full with ``lora.train_aligner``)."""
    audio_encoder: str = ""
    """The whole audio encoder's module path (trained in full with ``lora.train_audio_encoder``)."""
    fsdp_layer_classes: tuple[str, ...] = ()
    """Layer classes FSDP wraps one by one (``fsdp_transformer_layer_cls_to_wrap``)."""
    audio_token: str = ""
    """The placeholder token one audio frame-group becomes in the prompt."""
    audio_run_overhead: int = 0
    """Tokens around each audio run besides its placeholders (begin/end markers)."""
    special_tokens: dict[str, str] = {}
    """The tokenizer's special tokens by role (``eos_token`` — also the pad —, ``im_start``, ``im_end``,
    ``audio_token``, ``audio_bos_token``, ...), in the order a tiny tokenizer gives them ids."""
    feature_mask_key: str = "feature_attention_mask"
    """The model's keyword for the audio features' frame mask."""
    window_seconds: float | None = None
    """Audio one encoder run takes; ``None``: the feature extractor's window (``n_samples``)."""
    release_export: bool = False
    """``nabra export --merge`` of a run on a release folder rebuilds the release's layout (the merged
    model beside the release's other tensors); otherwise it writes what the model class saves."""
    release_architecture: str | None = None
    """The architecture of the family's full release (``Qwen2_5OmniForConditionalGeneration``): what a merged
    export's ``config.json`` names, the class vLLM serves; ``None``: no release layout is written."""
    lm_release_prefix: tuple[str, str] | None = None
    """(the language model's module path in the trainable class, its tensor prefix in the release):
    what renames an adapter for vLLM's LoRA (``model.language_model.`` -> ``thinker.model.``)."""
    lora_targets_by_name: bool = False
    """Give PEFT the LoRA targets as full module names, not a regex. For MoE families whose experts
    transformers 5 fused: PEFT 0.21 resolves a regex target there to its leaf names (``q_proj``...),
    which also match the audio encoder's attention (``peft/utils/transformers_weight_conversion.py``,
    ``_resolve_string_target_modules``)."""
    tiny_lr: float | None = None
    """Learning rate of the demo's base (full fine-tuning of this family's tiny model from random
    weights) when the recipe's ``demo-base`` rate does not suit the family; ``None``: the recipe's."""
    chat_template: str = ""
    """The family's chat template reduced to text and audio (a tiny tokenizer ships it)."""

    def layout_of(self, config: dict) -> str | None:
        """The layout of a checkpoint with this ``config.json``, or ``None`` if it is not this family's."""
        return self.model_types.get(config.get("model_type"))

    def specialize(self, config: Any) -> Family:
        """The family object for a checkpoint of this family with this config (a dict or a config
        object): itself, but for composed models (one per audio encoder family)."""
        return self

    def expected(self) -> str:
        """What a checkpoint of this family looks like, for an error message."""
        return " or ".join(repr(t) for t in self.model_types)

    def prompt_text(self, system: str, instruction: str, audio_runs: list[int]) -> str:
        """The prompt up to the assistant's turn, each audio segment an expanded placeholder run of the given length."""
        raise NotImplementedError

    def processor_prompt_text(self, system: str, instruction: str) -> str:
        """The prompt as transformers' processor of the family takes it, before it expands the audio
        placeholder (the collator's equivalence test builds its reference batch from it)."""
        return self.prompt_text(system, instruction, [1])

    def new_feature_extractor(self) -> Any:
        """The family's feature extractor with the release's settings (a tiny model saves it)."""
        raise NotImplementedError

    def answer_text(self, target: str) -> str:
        """The learned part: the answer and the family's end-of-turn token."""
        raise NotImplementedError

    def parts(self, model: Any) -> dict[str, Any]:
        """The model's main sub-modules by a human name (``audio encoder``, ``language model``, ...)."""
        raise NotImplementedError

    def aligner_output(self, model: Any, features: Any, mask: Any) -> Any:
        """The audio projector's output for a batch of segments' features: ``(total tokens, LM width)``,
        the segments' tokens one after another (what ADS embeds)."""
        raise NotImplementedError

    def audio_parts(self, model: Any) -> dict[str, Any]:
        """The modules a composed model takes from a model of this family, by the attribute name they
        get there: the audio encoder (``audio_tower``) and any projector of its own (``embed_audio``).
        Empty: this family's audio path cannot be taken out."""
        return {}

    def audio_config(self, model_config: Any) -> tuple[Any, int]:
        """``(the audio encoder's config, width of what :meth:`audio_parts` output)`` of a model config."""
        raise NabraError(f"the {self.title}'s audio encoder cannot be taken into a composed model")

    def new_audio_parts(self, audio_config: Any, width: int) -> dict[str, Any]:
        """:meth:`audio_parts` with random weights, from what :meth:`audio_config` returned."""
        raise NabraError(f"the {self.title}'s audio encoder cannot be taken into a composed model")

    def audio_embeddings(self, holder: Any, features: Any, mask: Any) -> Any:
        """``(total tokens, width)``: the output of the :meth:`audio_parts` held as attributes of ``holder``
        (a composed model), the segments' tokens one after another — the model's own code, called on them."""
        raise NabraError(f"the {self.title}'s audio encoder cannot be taken into a composed model")

    def features(self, collator: Any, segments: list) -> tuple[Any, Any]:
        """``(features, frame mask)`` of waveform segments, batched as the model takes them. Default:
        Whisper log-mel through the collator's fast batched path."""
        return collator.log_mel(segments)

    def input_embeddings(self, model: Any) -> Any:
        """The LM's token embedding."""
        return model.get_input_embeddings()

    def output_embeddings(self, model: Any) -> Any:
        """The LM head (``None`` when it is the input embedding, tied)."""
        return model.get_output_embeddings()

    def answer_logits(self, model: Any, inputs: dict, keep: Any) -> Any:
        """Logits ``(n, vocab)`` at the ``True`` positions of ``keep`` ``(batch, length)``, row by row —
        without projecting every other position onto the vocabulary. Default: the thinker's body
        (``model.model``), then its ``lm_head`` on those positions alone."""
        hidden = model.model(**inputs, use_cache=False).last_hidden_state
        return model.lm_head(hidden[keep])

    def positions(self, model: Any, input_ids: Any, attention_mask: Any, inputs: dict) -> Any:
        """Position ids of a whole sequence (prompt + continuation), for a continuation fed after a
        cached prompt; ``None`` when the model derives them itself. Default: the Qwen-Omni thinkers'
        M-RoPE index (audio positions from the features' frame mask)."""
        mask = inputs.get(self.feature_mask_key)
        seqlens = mask.sum(-1) if mask is not None else None
        positions, _ = model.model.get_rope_index(input_ids, None, None, attention_mask, False, seqlens, None)
        return positions

    def packing_refusal(self, model: Any) -> str | None:
        """Why ``collate.packing`` cannot run on ``model`` (one line), or ``None`` when it can."""
        return f"packed sequences are not supported for the {self.title}"

    def packed_positions(self, model: Any, inputs: dict, seq_lens: Any) -> Any:
        """Position ids of one packed row of sequences of ``seq_lens`` (``inputs``: the row's model inputs):
        each sequence's own positions, as :meth:`positions` gives them for it alone (the M-RoPE index of
        the Qwen-Omni thinkers, computed per sequence on the unpacked rows), after a first row of text
        positions restarting at every sequence — from which transformers confines attention to each
        sequence (a block-diagonal mask for SDPA/eager, varlen kernels for flash-attention). ``(4, 1, T)``
        for M-RoPE, ``(1, T)`` for a model with 1-D positions."""
        import torch

        lens = seq_lens.tolist()
        ids = inputs["input_ids"]
        text = torch.cat([torch.arange(n, device=ids.device) for n in lens])[None]
        rows = torch.zeros(len(lens), max(lens), dtype=ids.dtype, device=ids.device)
        mask = torch.zeros_like(rows)
        for i, piece in enumerate(torch.split(ids[0], lens)):
            rows[i, : len(piece)], mask[i, : len(piece)] = piece, 1
        positions = self.positions(model, rows, mask, inputs)
        if positions is None:
            return text
        mrope = torch.cat([positions[:, i, :n] for i, n in enumerate(lens)], dim=-1)[:, None]
        return torch.cat([text[None], mrope.to(text.dtype)])

    def audio_token_count(self, frames):
        """Placeholder tokens the model makes of ``frames`` valid feature frames (int, array or tensor)."""
        raise NotImplementedError

    def frozen_in_full(self, model: Any) -> list[Any]:
        """Modules full fine-tuning leaves frozen: the vision part, and weights the audio path never
        uses (every trainable weight must get a gradient: DDP needs it)."""
        raise NotImplementedError

    def release_config(self, thinker_config: Any) -> dict:
        """The ``config.json`` of a thinker-only release holding ``thinker_config`` (no talker: no audio output)."""
        raise NabraError(f"the {self.title} has no release layout")

    def tiny_config(self, cfg: Any, token_ids: dict[str, int]) -> Any:
        """The model config of a tiny random model of this family (``cfg``: a :class:`~nabra.model.tiny.TinyConfig`),
        wired to the tiny tokenizer's ``token_ids`` (by token)."""
        raise NotImplementedError

    def model_class(self) -> Any:
        """The transformers class of the model Nabra trains (the thinker, for the Qwen-Omni families)."""
        raise NotImplementedError

    def feature_extractor_class(self) -> Any:
        """The transformers class of the family's audio feature extractor."""
        raise NotImplementedError

    def check(self, path: Path, config: Any, feature_extractor: Any | None = None) -> None:
        """Refuse what Nabra's handling of the family assumes otherwise (called before the weights
        are read, then with the feature extractor)."""

    def new_model(self, config: Any) -> Any:
        """A model of this family with random weights from ``config``."""
        return self.model_class()(config)

    def load_config(self, path: Path, layout: str) -> Any:
        """The model config of a local folder (the thinker's, in a release)."""
        raise NotImplementedError

    def load(self, path: Path, layout: str, dtype: Any) -> tuple[Any, Any, Any]:
        """``(model, tokenizer, feature extractor)`` from a local folder (never a hub)."""
        from transformers import AutoTokenizer

        config = self.load_config(path, layout)
        self.check(path, config)
        with loading(path, "weights"):
            model = self.model_class().from_pretrained(path, config=config, dtype=dtype, local_files_only=True,
                                                       use_safetensors=True)
        with loading(path, "tokenizer"):
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        with loading(path, "feature extractor"):
            feature_extractor = self.feature_extractor_class().from_pretrained(path, local_files_only=True)
        self.check(path, config, feature_extractor)
        return model, tokenizer, feature_extractor


@contextmanager
def loading(path: Path, what: str):
    """Turn what transformers raises while loading ``what`` from ``path`` into one NabraError line."""
    try:
        yield
    except NabraError:
        raise
    except Exception as e:  # noqa: BLE001 - transformers raises many kinds for a bad folder
        lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
        first = lines[0] if lines else ""
        if first.endswith(":") and len(lines) > 1:  # a validator's header: the reason is on the next line
            first = f"{first} {lines[1]}"
        first = first[:300]
        if "ignore_mismatched_sizes" in first:
            first = "tensor sizes differ from config.json; transformers' load report above lists them"
        raise NabraError(f"{path}: cannot load the {what} ({type(e).__name__}: {first})") from e
