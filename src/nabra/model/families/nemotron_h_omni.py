"""Nemotron-3-Nano-Omni: a hybrid Mamba-2 + attention mixture-of-experts LM (NemotronH) with a
Parakeet (FastConformer) audio encoder.

Layouts: transformers' own (``model_type: nemotron_h_omni``: what ``nabra model init-tiny --family
nemotron_h_omni`` writes) and NVIDIA's release (``model_type: NemotronH_Nano_Omni_Reasoning_V3``,
custom code, legacy key names that transformers' conversion mapping renames on load). transformers
5.24 cannot build the release's config as it is (its ``sound_config`` names ``model_type: parakeet``,
which the composite config refuses): it is read as a dict, that key dropped, then built — the
workaround checked in the research notes §2.5; the release itself has not been loaded here.

Audio: Parakeet log-mel (128 bins, 25-ms window, 10-ms hop, per-clip normalisation; time-major
``(clips, frames, mels)``, mask ``input_features_mask``), three stride-2 convolutions: ``ceil((frames
+ 1) / 8)`` ``<so_embedding>`` tokens between ``<so_start>`` and ``<so_end>``, ~12.5 a second. The
LM's blocks are each one ``mixer``: Mamba-2 (``in_proj``, ``out_proj``), attention (``q/k/v/o_proj``),
MoE (routed experts fused into 3-D parameters, a shared expert) or MLP (``up/down_proj``); LoRA
targets the Linear projections of every kind by default, by module path inside the LM. The audio
projector is ``embed_audio``. The chat layout is ChatML with the audio before the text and an empty
think block (NVIDIA's Audex layout; the Omni release's own template is not checked here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nabra.errors import NabraError
from nabra.model import tokens
from nabra.model.families.base import Family, loading

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "in_proj", "out_proj", "up_proj", "down_proj")
"""The LM's Linear projections: attention, Mamba-2, MLP (and the shared expert's up/down)."""
SUBSAMPLING = 8
"""The Parakeet encoder's time reduction (three stride-2 convolutions)."""
WINDOW_SECONDS = 300.0
"""Longest audio one encoder run takes: longer clips are cut into equal segments (Parakeet's
relative attention has no fixed window; this bounds its quadratic memory as Qwen's 300 s does)."""
MEL_BINS = 128
"""The release's ``sound_config.num_mel_bins`` (Parakeet's extractor defaults to 80)."""
RELEASE_TYPE = "NemotronH_Nano_Omni_Reasoning_V3"

SPECIAL_TOKENS = {
    "eos_token": "</s>",
    "im_start": "<|im_start|>",
    "im_end": "<|im_end|>",
    "audio_token": "<so_embedding>",
    "audio_bos_token": "<so_start>",
    "audio_eos_token": "<so_end>",
    "image_token": "<image>",
    "video_token": "<video>",
    "vision_bos_token": "<img>",
    "vision_eos_token": "</img>",
    "think_start": "<think>",
    "think_end": "</think>",
}
"""The tokens the processor and the chat layout use (``<so_start>``/``<so_end>`` are hard-coded there)."""

CHAT_TEMPLATE = tokens.chat_template("<so_start><so_embedding><so_end>\n", "<think></think>")
"""Nemotron-3-Nano-Omni's chat template reduced to text and audio (its generation prompt closes an empty thought)."""


def audio_token_count(frames):
    """``<so_embedding>`` tokens of ``frames`` valid feature frames (the mask's count, ``samples // 160``):
    ``ceil((frames + 1) / 8)`` — the processor's estimate and the encoder's subsampling (int, array or tensor)."""
    return (frames + SUBSAMPLING) // SUBSAMPLING


class NemotronHOmni(Family):
    name = "nemotron_h_omni"
    title = "Nemotron-3-Nano-Omni"
    model_types = {"nemotron_h_omni": "native", RELEASE_TYPE: "release"}
    lm_layers = r"language_model\.model\.layers\.\d+"
    projections = PROJECTIONS
    lora_blocks = ("mixer", r"mixer\.shared_experts")
    aligner_modules = ("embed_audio",)
    audio_encoder = "audio_tower"
    fsdp_layer_classes = ("NemotronHBlock", "ParakeetEncoderBlock")
    audio_token = SPECIAL_TOKENS["audio_token"]
    audio_run_overhead = 3  # <so_start>, <so_end> and the newline after it
    special_tokens = SPECIAL_TOKENS
    chat_template = CHAT_TEMPLATE
    feature_mask_key = "input_features_mask"
    window_seconds = WINDOW_SECONDS
    lora_targets_by_name = True  # transformers maps this model's experts too: no regex through PEFT

    def prompt_text(self, system: str, instruction: str, audio_runs: list[int]) -> str:
        t = SPECIAL_TOKENS
        audio = "".join(f"{t['audio_bos_token']}{t['audio_token'] * n}{t['audio_eos_token']}\n" for n in audio_runs)
        return (f"{t['im_start']}system\n{system}{t['im_end']}\n{t['im_start']}user\n{audio}{instruction}"
                f"{t['im_end']}\n{t['im_start']}assistant\n{t['think_start']}{t['think_end']}")

    def processor_prompt_text(self, system: str, instruction: str) -> str:
        # transformers' processor wraps each bare <so_embedding> in <so_start>…<so_end> itself
        t = SPECIAL_TOKENS
        return (f"{t['im_start']}system\n{system}{t['im_end']}\n{t['im_start']}user\n{t['audio_token']}\n{instruction}"
                f"{t['im_end']}\n{t['im_start']}assistant\n{t['think_start']}{t['think_end']}")

    def answer_text(self, target: str) -> str:
        return f"{target}{SPECIAL_TOKENS['im_end']}"

    def audio_token_count(self, frames):
        return audio_token_count(frames)

    def packing_refusal(self, model: Any) -> str | None:
        return (f"the {self.title}'s Mamba-2 layers would carry their state from one packed sequence into the next "
                "(transformers' NemotronH mixer takes no seq_idx/cu_seqlens): set collate.packing false")

    def features(self, collator: Any, segments: list) -> tuple[Any, Any]:
        out = collator.feature_extractor(segments, sampling_rate=collator.sampling_rate, return_tensors="pt",
                                         padding="longest", return_attention_mask=True)
        return out["input_features"], out["attention_mask"]

    def input_embeddings(self, model: Any) -> Any:
        return model.language_model.get_input_embeddings()

    def output_embeddings(self, model: Any) -> Any:
        return model.language_model.lm_head  # the top-level model answers None

    def answer_logits(self, model: Any, inputs: dict, keep: Any) -> Any:
        # No separate body to call: the audio is merged in the top-level forward. Its LM slices the
        # hidden states to a boolean (batch, length) logits_to_keep, flattened row by row.
        return model(**inputs, use_cache=False, logits_to_keep=keep).logits

    def positions(self, model: Any, input_ids: Any, attention_mask: Any, inputs: dict) -> Any:
        return None  # Mamba carries the order; the attention layers take the cache's positions

    def aligner_output(self, model: Any, features: Any, mask: Any) -> Any:
        return model.get_audio_features(features, mask).pooler_output

    def audio_parts(self, model: Any) -> dict[str, Any]:
        return {"audio_tower": model.audio_tower, "embed_audio": model.embed_audio}

    def audio_config(self, model_config: Any) -> tuple[Any, int]:
        return model_config.audio_config, model_config.text_config.hidden_size

    def new_audio_parts(self, audio_config: Any, width: int) -> dict[str, Any]:
        from transformers import AutoModel
        from transformers.models.nemotron_h_omni.modeling_nemotron_h_omni import (
            NemotronH_Omni_Reasoning_V3MultiModalProjector as Projector,
        )

        return {"audio_tower": AutoModel.from_config(audio_config),
                "embed_audio": Projector(audio_config.hidden_size, audio_config.projection_hidden_size, width,
                                         bias=audio_config.projection_bias)}

    def audio_embeddings(self, holder: Any, features: Any, mask: Any) -> Any:
        from transformers.models.nemotron_h_omni import NemotronH_Omni_Reasoning_V3

        return NemotronH_Omni_Reasoning_V3.get_audio_features(holder, features, mask).pooler_output

    def parts(self, model: Any) -> dict[str, Any]:
        return {"audio encoder": model.audio_tower, "audio projector": model.embed_audio,
                "vision": model.vision_model, "language model": model.language_model}

    def frozen_in_full(self, model: Any) -> list[Any]:
        return [model.vision_model, model.multi_modal_projector]

    def new_feature_extractor(self):
        from transformers.models.parakeet import ParakeetFeatureExtractor

        return ParakeetFeatureExtractor(feature_size=MEL_BINS)

    def tiny_config(self, cfg: Any, token_ids: dict[str, int]) -> Any:
        from transformers.models.nemotron_h_omni import NemotronH_Omni_Reasoning_V3_Config

        t = SPECIAL_TOKENS
        head_dim = cfg.hidden_size // cfg.text_heads
        blocks = ["linear_attention", "moe", "full_attention", "mlp"] * max(1, cfg.text_layers // 2)
        return NemotronH_Omni_Reasoning_V3_Config(
            text_config={"vocab_size": cfg.vocab_size, "hidden_size": cfg.hidden_size, "layers_block_type": blocks,
                         "num_attention_heads": cfg.text_heads, "num_key_value_heads": cfg.kv_heads,
                         "head_dim": head_dim, "intermediate_size": cfg.intermediate_size,
                         "mamba_num_heads": cfg.hidden_size // 16, "mamba_head_dim": 16, "ssm_state_size": 16,
                         "n_groups": 2, "chunk_size": 16, "conv_kernel": 4, "n_routed_experts": cfg.experts,
                         "num_experts_per_tok": cfg.experts_per_token, "moe_intermediate_size": cfg.moe_intermediate_size,
                         "moe_shared_expert_intermediate_size": cfg.moe_intermediate_size,
                         "max_position_embeddings": 8192, "pad_token_id": token_ids[t["eos_token"]],
                         "eos_token_id": token_ids[t["im_end"]], "bos_token_id": token_ids[t["im_start"]]},
            vision_config={"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "patch_size": 16,
                           "image_size": 32, "max_img_size": 64, "num_registers": 1, "num_cls_tokens": 1,
                           "video_temporal_patch_size": 2},
            audio_config={"hidden_size": cfg.audio_d_model, "num_hidden_layers": cfg.audio_layers,
                          "num_attention_heads": cfg.audio_heads, "intermediate_size": 4 * cfg.audio_d_model,
                          "subsampling_conv_channels": 16, "num_mel_bins": MEL_BINS, "conv_kernel_size": 9,
                          "projection_hidden_size": cfg.hidden_size, "projection_bias": False},
            vision_hidden_size=32, projector_hidden_size=64, audio_token_id=token_ids[t["audio_token"]],
            image_token_id=token_ids[t["image_token"]], video_token_id=token_ids[t["video_token"]],
            pad_token_id=token_ids[t["eos_token"]], eos_token_id=token_ids[t["im_end"]],
        )

    def model_class(self) -> Any:
        from transformers.models.nemotron_h_omni import NemotronH_Omni_Reasoning_V3

        return NemotronH_Omni_Reasoning_V3

    def feature_extractor_class(self) -> Any:
        from transformers.models.parakeet import ParakeetFeatureExtractor

        return ParakeetFeatureExtractor

    def check(self, path: Path, config: Any, feature_extractor: Any | None = None) -> None:
        mels = getattr(config.audio_config, "num_mel_bins", MEL_BINS)
        if feature_extractor is not None and feature_extractor.feature_size != mels:
            raise NabraError(f"{path}/preprocessor_config.json: feature_size {feature_extractor.feature_size}, but the "
                             f"audio encoder takes {mels} mel bins (config.json)")

    def load_config(self, path: Path, layout: str) -> Any:
        from transformers.models.nemotron_h_omni import NemotronH_Omni_Reasoning_V3_Config

        with loading(path, "config"):
            if layout == "native":
                return NemotronH_Omni_Reasoning_V3_Config.from_pretrained(path, local_files_only=True)
            # transformers 5.24 refuses the release's sound_config (model_type "parakeet"): drop that key
            # from the decoded dict ({"__float__": "Infinity"} kept), and the custom-code auto_map.
            data, _ = NemotronH_Omni_Reasoning_V3_Config.get_config_dict(str(path), local_files_only=True)
            for key in ("sound_config", "audio_config"):
                if isinstance(data.get(key), dict):
                    data[key].pop("model_type", None)
            data.pop("auto_map", None)
            return NemotronH_Omni_Reasoning_V3_Config.from_dict(data)


NEMOTRON_H_OMNI = NemotronHOmni()
