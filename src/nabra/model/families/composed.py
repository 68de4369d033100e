"""Composed audio LLMs (``nabra model compose``): the audio encoder of another family, a new projector,
and any causal LM (:mod:`nabra.model.composed` builds and documents the model).

One :class:`Composed` per audio family: features, placeholder counts and the audio window are the
tower's family's; the prompt is Qwen2.5-Omni's ChatML layout with ``<|audio_bos|><|AUDIO|>…<|audio_eos|>``.
The LM is whatever the folder holds, so LoRA's targets are found by name: every Linear projection of
the LM's decoder layers with a name of :data:`PROJECTIONS` (Falcon-H1: ``mamba.in_proj``/``out_proj``,
``self_attn.q/k/v/o_proj``, ``feed_forward.gate/up/down_proj``; Jais-2: attention and ``mlp.up/down_proj``).
``lora.train_aligner`` trains the new projector (``projector``), as the first TPC stage should.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nabra.errors import NabraError
from nabra.model import tokens
from nabra.model.families.base import Family, loading
from nabra.model.families.towers import tower

PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "in_proj", "out_proj")
"""Projection names LoRA may target in a composed model's LM (those it has)."""
LM_TYPES = ("falcon_h1", "jais2", "qwen3")
"""The LMs of a tiny composed model (``TinyConfig.lm``); the sizes are tiny, the rest is the release's
(Jais-2: transformers' jais2-7b defaults, relu² MLP with biases; Falcon-H1: the multipliers below)."""
FALCON_H1_MULTIPLIERS = {
    "embedding_multiplier": 5.656854249492381, "lm_head_multiplier": 0.0390625, "key_multiplier": 0.39062499999999994,
    "attention_in_multiplier": 1.0, "attention_out_multiplier": 0.9375, "ssm_in_multiplier": 1.25,
    "ssm_out_multiplier": 0.23570226039551587, "mlp_multipliers": [0.8838834764831844, 0.5859375],
    "ssm_multipliers": [0.3535533905932738, 0.25, 0.3535533905932738, 0.5, 0.3535533905932738],
    "mamba_rms_norm": False, "mamba_norm_before_gate": False, "projectors_bias": False,
}
"""Falcon-H1-0.5B's µP multipliers (its ``config.json``, as Megatron-Bridge's tests quote it): the tiny
Falcon-H1 scales as the release does — and its ``mup_vector`` (a buffer no checkpoint holds) is not all ones."""


class Composed(Family):
    name = "composed"
    model_types = {"nabra_composed": "composed"}
    lm_layers = r"language_model\.model\.layers\.\d+"
    projections = PROJECTIONS
    lora_blocks = ("self_attn", "mlp", "mamba", "feed_forward", "mixer")
    aligner_modules = ("projector",)
    audio_encoder = "audio_tower"
    audio_token = tokens.AUDIO
    audio_run_overhead = 2
    special_tokens = tokens.SPECIAL_TOKENS
    chat_template = tokens.CHAT_TEMPLATE
    lora_targets_by_name = True  # only the projections this LM has
    tiny_lr = 2e-2  # the default tiny LM, Falcon-H1 with the release's µP multipliers (logits x 0.039): at the
    # demo base's 2e-3 it learnt nothing in 240 steps (train loss 3.67, every answer empty); at 2e-2, 0.72

    def __init__(self, tower: Family):
        self.tower = tower
        self.title = f"composed audio LLM ({tower.title.removesuffix(' thinker')} audio encoder)"
        self.feature_mask_key = tower.feature_mask_key
        self.window_seconds = tower.window_seconds
        # The new projector, and the tower's own one where it has one outside the encoder (Nemotron's
        # embed_audio): trained with lora.train_aligner, and part of ADS's embedding fingerprint.
        self.aligner_modules = (*(m for m in tower.aligner_modules if m == "embed_audio"), "projector")
        self.fsdp_layer_classes = tower.fsdp_layer_classes[-1:]  # the encoder layer; the LM's are the model's own

    def layout_of(self, config: dict) -> str | None:
        return "composed" if config.get("model_type") == "nabra_composed" else None

    def specialize(self, config: Any) -> Family:
        name = config.get("audio_family") if isinstance(config, dict) else getattr(config, "audio_family", None)
        return composed(tower(name))

    def expected(self) -> str:
        return "'nabra_composed' (nabra model compose)"

    def prompt_text(self, system: str, instruction: str, audio_runs: list[int]) -> str:
        return tokens.prompt_text(system, instruction, audio_runs)

    def answer_text(self, target: str) -> str:
        return tokens.answer_text(target)

    def audio_token_count(self, frames):
        return self.tower.audio_token_count(frames)

    def packing_refusal(self, model: Any) -> str | None:
        lm = model.language_model
        if any("mamba" in name.rsplit(".", 1)[-1] for name, _ in lm.named_modules()):
            return (f"this composed model's LM ({lm.config.model_type}) has Mamba layers, whose state would run from "
                    "one packed sequence into the next (transformers' mixer takes no seq_idx): set collate.packing false")
        return None  # an attention LM: 1-D positions restarting per sequence confine its causal mask

    def features(self, collator: Any, segments: list) -> tuple[Any, Any]:
        return self.tower.features(collator, segments)

    def new_feature_extractor(self) -> Any:
        return self.tower.new_feature_extractor()

    def feature_extractor_class(self) -> Any:
        return self.tower.feature_extractor_class()

    def model_class(self) -> Any:
        # Here, not at the top: the families' registry is read with the config, before torch is imported.
        from nabra.model.composed import ComposedAudioLMForCausalLM

        return ComposedAudioLMForCausalLM

    def load_config(self, path: Path, layout: str) -> Any:
        from nabra.model.composed import ComposedAudioLMConfig

        with loading(path, "config"):
            return ComposedAudioLMConfig.from_pretrained(path, local_files_only=True)

    def check(self, path: Path, config: Any, feature_extractor: Any | None = None) -> None:
        if config.audio_family != self.tower.name:
            raise NabraError(f"{path}/config.json: audio_family {config.audio_family!r}, not {self.tower.name!r}")
        expected = self.tower.feature_extractor_class()
        if feature_extractor is not None and not isinstance(feature_extractor, expected):
            raise NabraError(f"{path}/preprocessor_config.json: a {type(feature_extractor).__name__}, but the "
                             f"{self.tower.title} audio encoder takes {expected.__name__} features")

    def input_embeddings(self, model: Any) -> Any:
        return model.language_model.get_input_embeddings()

    def output_embeddings(self, model: Any) -> Any:
        return model.language_model.get_output_embeddings()

    def answer_logits(self, model: Any, inputs: dict, keep: Any) -> Any:
        # Any LM: its forward projects only the positions of `logits_to_keep` (an index tensor, the
        # same for every row: the union of the rows' answer positions) — and applies what its head
        # does beyond the Linear (Falcon-H1's multiplier). Then each row's own positions, row by row.
        columns = keep.any(0).nonzero().squeeze(-1)
        logits = model(**inputs, use_cache=False, logits_to_keep=columns).logits
        return logits[keep[:, columns]]

    def positions(self, model: Any, input_ids: Any, attention_mask: Any, inputs: dict) -> Any:
        return None  # 1-D positions from the cache (RoPE is relative: a row's left padding shifts them all alike)

    def aligner_output(self, model: Any, features: Any, mask: Any) -> Any:
        return model.get_audio_features(features, mask)

    def audio_parts(self, model: Any) -> dict[str, Any]:
        return {n: m for n, m in model.named_children() if n in ("audio_tower", "embed_audio")}

    def audio_config(self, model_config: Any) -> tuple[Any, int]:
        return model_config.audio_config, model_config.audio_width

    def parts(self, model: Any) -> dict[str, Any]:
        named = {"audio encoder": model.audio_tower}
        if hasattr(model, "embed_audio"):
            named["audio encoder's projector"] = model.embed_audio
        return {**named, "projector": model.projector, "language model": model.language_model}

    def frozen_in_full(self, model: Any) -> list[Any]:
        unused = getattr(model.audio_tower, "audio_bos_eos_token", None)  # Qwen2.5-Omni's: never used
        return [unused] if unused is not None else []

    def tiny_config(self, cfg: Any, token_ids: dict[str, int]) -> Any:
        """A composed config: the tiny audio encoder of :attr:`tower` and a tiny LM of type ``cfg.lm``."""
        from nabra.model.composed import ComposedAudioLMConfig

        t = self.special_tokens
        audio_config, width = self.tower.audio_config(self.tower.tiny_config(cfg, token_ids))
        text_config = tiny_lm_config(cfg, pad_token_id=token_ids[t["eos_token"]], eos_token_id=token_ids[t["im_end"]])
        return ComposedAudioLMConfig(audio_config=audio_config, text_config=text_config, audio_family=self.tower.name,
                                     audio_width=width, projector="mlp2", audio_token_id=token_ids[t["audio_token"]])


def tiny_lm_config(cfg: Any, *, pad_token_id: int | None, eos_token_id: int) -> Any:
    """The config of a tiny causal LM of type ``cfg.lm`` (a :class:`~nabra.model.tiny.TinyConfig`), in
    transformers' own classes (Falcon-H1: Mamba-2 heads of 16 beside the attention in every layer)."""
    from transformers import AutoConfig

    if cfg.lm not in LM_TYPES:
        raise NabraError(f"unknown tiny LM {cfg.lm!r}; choose one of {', '.join(LM_TYPES)}")
    sizes = {"vocab_size": cfg.vocab_size, "hidden_size": cfg.hidden_size, "intermediate_size": cfg.intermediate_size,
             "num_hidden_layers": cfg.text_layers, "num_attention_heads": cfg.text_heads,
             "num_key_value_heads": cfg.kv_heads, "max_position_embeddings": 8192, "pad_token_id": pad_token_id,
             "eos_token_id": eos_token_id, "bos_token_id": None, "tie_word_embeddings": cfg.lm == "qwen3"}
    if cfg.lm == "falcon_h1":
        sizes.update(mamba_d_ssm=cfg.hidden_size, mamba_n_heads=cfg.hidden_size // 16, mamba_d_head=16,
                     mamba_d_state=16, mamba_n_groups=1, mamba_chunk_size=16, mamba_d_conv=4,
                     head_dim=cfg.hidden_size // cfg.text_heads, **FALCON_H1_MULTIPLIERS)
    return AutoConfig.for_model(cfg.lm, **sizes)


_BY_TOWER: dict[str, Composed] = {}


def composed(tower: Family) -> Composed:
    """The composed family of audio encoders of ``tower``'s family (one instance each)."""
    if tower.name not in _BY_TOWER:
        _BY_TOWER[tower.name] = Composed(tower)
    return _BY_TOWER[tower.name]
