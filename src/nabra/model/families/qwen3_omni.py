"""Qwen3-Omni (30B-A3B Instruct, Thinking, Captioner): its thinker, trained alone; the talker and
code2wav of the Instruct release are never loaded.

Layouts: the release (``model_type: qwen3_omni_moe`` with a ``thinker_config``; keys ``thinker.*``,
and in the Instruct release also ``talker.*`` and ``code2wav.*``, which the thinker class should
leave unread — checked on tiny releases of both kinds) and a
thinker-only folder (``qwen3_omni_moe_thinker``: what ``nabra model init-tiny --family qwen3_omni``
and ``nabra model merge`` write). Audio: Whisper log-mel as Qwen2.5-Omni (128 bins, 16 kHz, a 300-s
window), but the encoder works in 100-frame chunks (``n_window`` 50) and makes 13 tokens of each:
``<|audio_pad|>`` × n between ``<|audio_start|>`` and ``<|audio_end|>``, before the text of the
user turn. The language model is a Qwen3 mixture of experts whose routed experts are fused 3-D
parameters, not Linear modules: LoRA targets the attention projections (and the MLP of any dense
layer); the experts and the router stay frozen. The audio projector (``proj1``, ``proj2``) lives
inside the audio tower. Sources: transformers 5.24 ``models/qwen3_omni_moe`` and the release's
``config.json`` (docs/notes/model-families-research.md §1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nabra.errors import NabraError
from nabra.model import tokens
from nabra.model.families.base import Family, loading
from nabra.model.families.qwen2_5_omni import PROJECTIONS, whisper_feature_extractor

N_WINDOW = 50
"""The audio encoder's ``n_window`` of every Qwen3-Omni release: chunks of 100 mel frames (1 s)."""
TOKENS_PER_CHUNK = 13
"""Audio tokens of one full 100-frame chunk (three stride-2 convolutions)."""

SPECIAL_TOKENS = {
    "eos_token": "<|endoftext|>",
    "im_start": "<|im_start|>",
    "im_end": "<|im_end|>",
    "audio_token": "<|audio_pad|>",
    "audio_bos_token": "<|audio_start|>",
    "audio_eos_token": "<|audio_end|>",
    "image_token": "<|image_pad|>",
    "video_token": "<|video_pad|>",
    "vision_bos_token": "<|vision_start|>",
    "vision_eos_token": "<|vision_end|>",
}
"""The release tokenizer's special tokens (``tokenizer_config.json``; the ids are the config's)."""

CHAT_TEMPLATE = tokens.chat_template("<|audio_start|><|audio_pad|><|audio_end|>")
"""Qwen3-Omni's chat template reduced to text and audio (what Nabra sends)."""


def audio_token_count(frames):
    """Audio tokens of ``frames`` valid mel frames: 13 per full 100-frame chunk, and for the rest
    three stride-2 convolutions — transformers' ``_get_feat_extract_output_lengths`` (int, array or tensor)."""
    chunk = 2 * N_WINDOW
    rest = frames % chunk
    after = (rest - 1) // 2 + 1
    return ((after - 1) // 2 + 1 - 1) // 2 + 1 + (frames // chunk) * TOKENS_PER_CHUNK


class Qwen3Omni(Family):
    name = "qwen3_omni"
    title = "Qwen3-Omni thinker"
    model_types = {"qwen3_omni_moe": "release", "qwen3_omni_moe_thinker": "thinker"}
    lm_layers = r"model\.language_model\.layers\.\d+"
    projections = PROJECTIONS
    lora_blocks = ("self_attn", "mlp")  # mlp: only dense layers have Linear projections there
    aligner_modules = ("audio_tower.proj1", "audio_tower.proj2", "audio_tower.ln_post")
    audio_encoder = "audio_tower"
    fsdp_layer_classes = ("Qwen3OmniMoeThinkerTextDecoderLayer", "Qwen3OmniMoeAudioEncoderLayer")
    audio_token = SPECIAL_TOKENS["audio_token"]
    audio_run_overhead = 2  # <|audio_start|>, <|audio_end|>
    special_tokens = SPECIAL_TOKENS
    chat_template = CHAT_TEMPLATE
    lora_targets_by_name = True  # PEFT's MoE conversion turns a regex into leaf names (see Family)

    def prompt_text(self, system: str, instruction: str, audio_runs: list[int]) -> str:
        t = SPECIAL_TOKENS
        audio = "".join(t["audio_bos_token"] + t["audio_token"] * n + t["audio_eos_token"] for n in audio_runs)
        return (f"{t['im_start']}system\n{system}{t['im_end']}\n{t['im_start']}user\n{audio}{instruction}"
                f"{t['im_end']}\n{t['im_start']}assistant\n")

    def answer_text(self, target: str) -> str:
        return f"{target}{SPECIAL_TOKENS['im_end']}"

    def layout_of(self, config: dict) -> str | None:
        model_type = config.get("model_type")
        if model_type == "qwen3_omni_moe":
            return "release" if "thinker_config" in config else None
        return self.model_types.get(model_type)

    def expected(self) -> str:
        return "'qwen3_omni_moe' (with a thinker_config) or 'qwen3_omni_moe_thinker'"

    def audio_token_count(self, frames):
        return audio_token_count(frames)

    def packing_refusal(self, model: Any) -> str | None:
        return None  # its text model takes packed 4-row position ids (text + M-RoPE) and builds the per-sequence mask

    def aligner_output(self, model: Any, features: Any, mask: Any) -> Any:
        return model.get_audio_features(features, feature_attention_mask=mask).last_hidden_state

    def audio_parts(self, model: Any) -> dict[str, Any]:
        return {"audio_tower": model.model.audio_tower}

    def audio_config(self, model_config: Any) -> tuple[Any, int]:
        return model_config.audio_config, model_config.audio_config.output_dim

    def new_audio_parts(self, audio_config: Any, width: int) -> dict[str, Any]:
        from transformers.models.qwen3_omni_moe.modeling_qwen3_omni_moe import Qwen3OmniMoeAudioEncoder

        return {"audio_tower": Qwen3OmniMoeAudioEncoder._from_config(audio_config)}

    def audio_embeddings(self, holder: Any, features: Any, mask: Any) -> Any:
        from transformers.models.qwen3_omni_moe.modeling_qwen3_omni_moe import Qwen3OmniMoeThinkerModel

        return Qwen3OmniMoeThinkerModel.get_audio_features(holder, features, mask).last_hidden_state

    def parts(self, model: Any) -> dict[str, Any]:
        return {"audio encoder": model.model.audio_tower, "vision": model.model.visual,
                "language model": model.model.language_model}

    def frozen_in_full(self, model: Any) -> list[Any]:
        return [model.model.visual]

    def new_feature_extractor(self) -> Any:
        return whisper_feature_extractor()  # the release's preprocessor has the same audio values

    def tiny_config(self, cfg, token_ids: dict[str, int]):
        from transformers import Qwen3OmniMoeThinkerConfig

        head_dim = cfg.hidden_size // cfg.text_heads
        half = head_dim // 2
        mrope = [half - 2 * (half // 3), half // 3, half // 3]  # sums to head_dim / 2
        t = SPECIAL_TOKENS
        config = Qwen3OmniMoeThinkerConfig(
            audio_config={"num_mel_bins": 128, "encoder_layers": cfg.audio_layers,
                          "encoder_attention_heads": cfg.audio_heads, "encoder_ffn_dim": 4 * cfg.audio_d_model,
                          "d_model": cfg.audio_d_model, "output_dim": cfg.hidden_size,
                          "downsample_hidden_size": max(8, cfg.audio_d_model // 2), "n_window": N_WINDOW,
                          "n_window_infer": 800, "max_source_positions": 1500},
            vision_config={"depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
                           "out_hidden_size": cfg.hidden_size, "patch_size": 16, "spatial_merge_size": 2,
                           "temporal_patch_size": 2, "num_position_embeddings": 64, "deepstack_visual_indexes": [0]},
            text_config={"vocab_size": cfg.vocab_size, "hidden_size": cfg.hidden_size,
                         "intermediate_size": cfg.intermediate_size, "num_hidden_layers": cfg.text_layers,
                         "num_attention_heads": cfg.text_heads, "num_key_value_heads": cfg.kv_heads,
                         "head_dim": head_dim, "moe_intermediate_size": cfg.moe_intermediate_size,
                         "num_experts": cfg.experts, "num_experts_per_tok": cfg.experts_per_token,
                         "max_position_embeddings": 8192,
                         "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": mrope,
                                             "interleaved": True},
                         "eos_token_id": token_ids[t["im_end"]], "pad_token_id": token_ids[t["eos_token"]]},
            audio_token_id=token_ids[t["audio_token"]], image_token_id=token_ids[t["image_token"]],
            video_token_id=token_ids[t["video_token"]], audio_start_token_id=token_ids[t["audio_bos_token"]],
            audio_end_token_id=token_ids[t["audio_eos_token"]], user_token_id=token_ids[t["im_start"]],
            position_id_per_seconds=13, seconds_per_chunk=2,
        )
        # Not a declared field, but the forward pass reads it (research notes §1.2).
        config.vision_start_token_id = token_ids[t["vision_bos_token"]]
        config.pad_token_id, config.eos_token_id = token_ids[t["eos_token"]], token_ids[t["im_end"]]
        return config

    def model_class(self) -> Any:
        from transformers import Qwen3OmniMoeThinkerForConditionalGeneration

        return Qwen3OmniMoeThinkerForConditionalGeneration

    def feature_extractor_class(self) -> Any:
        from transformers import WhisperFeatureExtractor

        return WhisperFeatureExtractor

    def check(self, path: Path, config: Any, feature_extractor: Any | None = None) -> None:
        n_window = getattr(config.audio_config, "n_window", None)
        if n_window != N_WINDOW:
            raise NabraError(f"{path}/config.json: audio_config.n_window is {n_window}; every Qwen3-Omni release "
                             f"has {N_WINDOW} (13 audio tokens a second), which Nabra's placeholder count assumes")

    def load_config(self, path: Path, layout: str) -> Any:
        from transformers import Qwen3OmniMoeConfig, Qwen3OmniMoeThinkerConfig

        with loading(path, "config"):
            if layout == "release":
                return Qwen3OmniMoeConfig.from_pretrained(path, local_files_only=True).thinker_config
            return Qwen3OmniMoeThinkerConfig.from_pretrained(path, local_files_only=True)


QWEN3_OMNI = Qwen3Omni()
