"""Qwen2.5-Omni (3B, 7B): its thinker, trained alone; the talker and token2wav are never loaded.

Layouts: the official release (``model_type: qwen2_5_omni`` with a ``thinker_config``: only the
thinker's tensors are read; transformers reads safetensors lazily) and a thinker-only folder
(``qwen2_5_omni_thinker``: what ``nabra model init-tiny`` and ``nabra model merge`` write). Audio:
Whisper log-mel (128 bins, 16 kHz, the window its ``preprocessor_config.json`` says: 300 s), two
stride-2 stages, one ``<|AUDIO|>`` per 40 ms between ``<|audio_bos|>`` and ``<|audio_eos|>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nabra.model import tokens
from nabra.model.families.base import Family, loading

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
"""The LM projections LoRA may target (``lora.targets``; all by default)."""


# The real Qwen2.5-Omni-7B preprocessor_config.json (Qwen3-Omni's has the same audio values): a
# 300-s window. WhisperFeatureExtractor's own defaults are 30 s: a tiny model built with them
# would take another path than the real one.
QWEN_OMNI_PREPROCESSOR = {"feature_size": 128, "sampling_rate": 16000, "hop_length": 160, "n_fft": 400,
                          "chunk_length": 300, "n_samples": 4_800_000, "nb_max_frames": 30_000, "dither": 0.0,
                          "padding_side": "right", "padding_value": 0.0, "return_attention_mask": True}

RELEASE_IMAGE_KEYS = {
    "image_processor_type": "Qwen2VLImageProcessor", "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711], "min_pixels": 3136, "max_pixels": 12845056,
    "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2, "processor_class": "Qwen2_5OmniProcessor",
}
"""The Qwen2-VL image keys the release's ``preprocessor_config.json`` carries beside the audio ones: the
processor vLLM (and transformers' ``Qwen2_5OmniProcessor``) builds needs them, even for audio only."""


def whisper_feature_extractor(**overrides):
    """The Qwen-Omni feature extractor (300-s window)."""
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor(**{**QWEN_OMNI_PREPROCESSOR, **overrides})


def audio_token_count(frames):
    """Audio tokens the thinker produces from ``frames`` valid mel frames (two stride-2 stages)."""
    after_conv = (frames - 1) // 2 + 1
    return (after_conv - 2) // 2 + 1


class Qwen25Omni(Family):
    name = "qwen2_5_omni"
    title = "Qwen2.5-Omni thinker"
    model_types = {"qwen2_5_omni": "release", "qwen2_5_omni_thinker": "thinker"}
    lm_layers = r"model\.language_model\.layers\.\d+"
    projections = PROJECTIONS
    lora_blocks = ("self_attn", "mlp")
    aligner_modules = ("audio_tower.proj", "audio_tower.ln_post")
    audio_encoder = "audio_tower"
    fsdp_layer_classes = ("Qwen2_5OmniDecoderLayer", "Qwen2_5OmniAudioEncoderLayer")
    audio_token = tokens.AUDIO
    audio_run_overhead = 2  # <|audio_bos|>, <|audio_eos|>
    release_export = True  # the talker and token2wav copied beside the merged thinker
    release_architecture = "Qwen2_5OmniForConditionalGeneration"
    lm_release_prefix = ("model.language_model.", "thinker.model.")
    special_tokens = tokens.SPECIAL_TOKENS
    chat_template = tokens.CHAT_TEMPLATE

    def prompt_text(self, system: str, instruction: str, audio_runs: list[int]) -> str:
        return tokens.prompt_text(system, instruction, audio_runs)

    def answer_text(self, target: str) -> str:
        return tokens.answer_text(target)

    def layout_of(self, config: dict) -> str | None:
        model_type = config.get("model_type")
        if model_type == "qwen2_5_omni":
            return "release" if "thinker_config" in config else None
        return self.model_types.get(model_type)

    def expected(self) -> str:
        return "'qwen2_5_omni' (with a thinker_config) or 'qwen2_5_omni_thinker'"

    def audio_token_count(self, frames):
        return audio_token_count(frames)

    def packing_refusal(self, model: Any) -> str | None:
        return None  # its text model takes packed 4-row position ids (text + M-RoPE) and builds the per-sequence mask

    def aligner_output(self, model: Any, features: Any, mask: Any) -> Any:
        return model.get_audio_features(features, mask).last_hidden_state

    def audio_parts(self, model: Any) -> dict[str, Any]:
        return {"audio_tower": model.model.audio_tower}

    def audio_config(self, model_config: Any) -> tuple[Any, int]:
        return model_config.audio_config, model_config.audio_config.output_dim

    def new_audio_parts(self, audio_config: Any, width: int) -> dict[str, Any]:
        from transformers.models.qwen2_5_omni.modeling_qwen2_5_omni import Qwen2_5OmniAudioEncoder

        return {"audio_tower": Qwen2_5OmniAudioEncoder._from_config(audio_config)}

    def audio_embeddings(self, holder: Any, features: Any, mask: Any) -> Any:
        from transformers.models.qwen2_5_omni.modeling_qwen2_5_omni import Qwen2_5OmniThinkerModel

        return Qwen2_5OmniThinkerModel.get_audio_features(holder, features, mask).last_hidden_state

    def parts(self, model: Any) -> dict[str, Any]:
        return {"audio encoder": model.model.audio_tower, "vision": model.model.visual,
                "language model": model.model.language_model}

    def frozen_in_full(self, model: Any) -> list[Any]:
        return [model.model.visual, model.model.audio_tower.audio_bos_eos_token]  # the latter: never used

    def new_feature_extractor(self) -> Any:
        return whisper_feature_extractor()

    def tiny_config(self, cfg: Any, token_ids: dict[str, int]) -> Any:
        """A ``Qwen2_5OmniThinkerConfig`` of the tiny sizes, wired to ``token_ids``."""
        from transformers import Qwen2_5OmniThinkerConfig

        head_dim = cfg.hidden_size // cfg.text_heads
        half = head_dim // 2
        mrope = [half - 2 * (half // 4), half // 4, half // 4]  # sums to head_dim / 2, as the rope needs
        config = Qwen2_5OmniThinkerConfig(
            audio_config={"num_mel_bins": 128, "encoder_layers": cfg.audio_layers,
                          "encoder_attention_heads": cfg.audio_heads, "encoder_ffn_dim": 4 * cfg.audio_d_model,
                          "d_model": cfg.audio_d_model, "output_dim": cfg.hidden_size, "n_window": 100,
                          "max_source_positions": 1500},
            vision_config={"depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
                           "out_hidden_size": cfg.hidden_size, "fullatt_block_indexes": [0], "in_channels": 3,
                           "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2},
            text_config={"vocab_size": cfg.vocab_size, "hidden_size": cfg.hidden_size,
                         "intermediate_size": cfg.intermediate_size, "num_hidden_layers": cfg.text_layers,
                         "num_attention_heads": cfg.text_heads, "num_key_value_heads": cfg.kv_heads,
                         "max_position_embeddings": 8192,
                         "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope},
                         "tie_word_embeddings": False, "eos_token_id": token_ids["<|im_end|>"],
                         "pad_token_id": token_ids["<|endoftext|>"]},
            audio_token_index=token_ids["<|AUDIO|>"], image_token_index=token_ids["<|IMAGE|>"],
            video_token_index=token_ids["<|VIDEO|>"], audio_start_token_id=token_ids["<|audio_bos|>"],
            audio_end_token_id=token_ids["<|audio_eos|>"], user_token_id=token_ids["<|im_start|>"],
            pad_token_id=token_ids["<|endoftext|>"], eos_token_id=token_ids["<|im_end|>"],
        )
        # Not a declared field, but the forward pass reads it (FACTS.md).
        config.vision_start_token_id = token_ids["<|vision_bos|>"]
        return config

    def release_config(self, thinker_config: Any) -> dict:
        """A release config around ``thinker_config`` without a talker (``enable_audio_output: false``):
        what vLLM's ``Qwen2_5OmniForConditionalGeneration`` (the thinker) and transformers' full class load."""
        from transformers import Qwen2_5OmniConfig

        config = Qwen2_5OmniConfig(thinker_config=thinker_config.to_dict(), enable_audio_output=False).to_dict()
        config["architectures"] = [self.release_architecture]
        return config

    def model_class(self) -> Any:
        from transformers import Qwen2_5OmniThinkerForConditionalGeneration

        return Qwen2_5OmniThinkerForConditionalGeneration

    def feature_extractor_class(self) -> Any:
        from transformers import WhisperFeatureExtractor

        return WhisperFeatureExtractor

    def load_config(self, path: Path, layout: str) -> Any:
        from transformers import Qwen2_5OmniConfig, Qwen2_5OmniThinkerConfig

        with loading(path, "config"):
            if layout == "release":
                return Qwen2_5OmniConfig.from_pretrained(path, local_files_only=True).thinker_config
            return Qwen2_5OmniThinkerConfig.from_pretrained(path, local_files_only=True)


QWEN2_5_OMNI = Qwen25Omni()
