"""Composed audio LLMs: the audio encoder of an audio-LLM checkpoint, a new projector, and any causal LM.

``nabra model compose --audio-from CKPT --lm LM --out DIR`` builds one (:func:`nabra.model.compose.compose`). The audio
path is the source family's own modules (Qwen2.5-Omni's or Qwen3-Omni's ``audio_tower``, whose last
Linear already maps to the source LM's width; Nemotron-3-Nano-Omni's Parakeet encoder and its
``embed_audio``) run by the source family's own code; the projector Nabra adds maps that width to the
new LM's (``mlp2``: Linear-GELU-Linear as LLaVA-1.5's ``mlp2x_gelu``; ``linear``: one Linear, as
Qwen2-Audio's). The LM is whatever ``AutoModelForCausalLM`` builds from the LM folder's config (Jais-2,
Falcon-H1, Qwen3, Llama ...): the model is transformers' composite pattern (Voxtral, Nemotron-H-Omni):
the audio embeddings replace the ``<|AUDIO|>`` placeholders of the prompt's input embeddings, and the
LM runs on them, with its own cache (a hybrid LM's Mamba state included) and its own loss.

The prompt layout is Qwen2.5-Omni's ChatML with ``<|audio_bos|><|AUDIO|>…<|audio_eos|>``: the tokens
missing from the LM's tokenizer are added (their embedding rows start at the mean of the others) and
the tokenizer gets that chat template. The folder (``model_type: nabra_composed``) is one Nabra loads
— and so does ``transformers.AutoModelForCausalLM`` once :mod:`nabra.model.composed` is imported (it
registers the classes); it is not a format other tools know.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, GenerationMixin, PreTrainedConfig, PreTrainedModel
from transformers.configuration_utils import SubConfigSpec

from nabra.model import tokens
from nabra.model.families.towers import tower

MODEL_TYPE = "nabra_composed"
PROJECTORS = ("mlp2", "linear")
COMPOSE_TOKENS = (tokens.IM_START, tokens.IM_END, tokens.AUDIO_BOS, tokens.AUDIO, tokens.AUDIO_EOS)
"""The tokens the composed prompt layout needs (added to the LM's tokenizer when missing)."""
IDS_ONLY_EMBEDDING_SCALE = {"falcon_h1": "embedding_multiplier"}
"""LMs whose forward scales the embeddings of ``input_ids`` but not ``inputs_embeds`` given to it (the
attribute of the LM's base model holding the factor): Falcon-H1's µP ``embedding_multiplier`` (5.66 in
Falcon-H1-0.5B) — the only decoder-only LM of transformers 5.24 that does so. The composed model
embeds the ids itself, so it applies the factor — to the audio embeddings too, as the LM would to
anything it embedded."""
PAD_TOKEN = tokens.SPECIAL_TOKENS["eos_token"]
"""The pad token added when the LM's tokenizer has none (``<|endoftext|>``, as in Qwen)."""


class ComposedAudioLMConfig(PreTrainedConfig):
    """An audio encoder's config (``audio_config``, of family ``audio_family``), the LM's (``text_config``)
    and the projector between them (``audio_width`` -> the LM's ``hidden_size``)."""

    model_type = MODEL_TYPE
    sub_configs_defaults = {
        "audio_config": SubConfigSpec(config_class=AutoConfig, model_type="qwen2_5_omni_audio_encoder"),
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="qwen3"),
    }

    audio_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    audio_family: str = "qwen2_5_omni"
    audio_width: int | None = None
    projector: str = "mlp2"
    audio_token_id: int | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.projector not in PROJECTORS:
            raise ValueError(f"projector must be one of {', '.join(PROJECTORS)}, got {self.projector!r}")


class Projector(nn.Module):
    """Audio width -> LM width: ``mlp2`` (Linear, GELU, Linear) or ``linear``."""

    def __init__(self, kind: str, width: int, hidden: int):
        super().__init__()
        if kind == "linear":
            self.linear_1, self.act, self.linear_2 = nn.Linear(width, hidden), nn.Identity(), None
        else:
            self.linear_1, self.act, self.linear_2 = nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.linear_1(x))
        return x if self.linear_2 is None else self.linear_2(x)


class ComposedAudioLMPreTrainedModel(PreTrainedModel):
    config: ComposedAudioLMConfig
    config_class = ComposedAudioLMConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    input_modalities = ("audio", "text")
    supports_gradient_checkpointing = True
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_flex_attn = True
    _is_stateful = True  # a hybrid LM's Mamba state cannot be rolled back (no assisted decoding)

    @classmethod
    def is_custom_code(cls) -> bool:
        # transformers treats a class outside its package as remote code and then skips initialising
        # a loaded sub-model whose own parameters all loaded — also its non-persistent buffers, which
        # no checkpoint holds: Falcon-H1's `mup_vector` stayed uninitialised memory (NaN logits).
        # This class initialises nothing itself; the sub-models' own `_init_weights` must run.
        return False


class ComposedAudioLMForCausalLM(ComposedAudioLMPreTrainedModel, GenerationMixin):
    """The audio modules of ``config.audio_family`` (``audio_tower``, maybe ``embed_audio``), a
    :class:`Projector` (``projector``) and the causal LM (``language_model``)."""

    def __init__(self, config: ComposedAudioLMConfig):
        super().__init__(config)
        for name, module in tower_family(config).new_audio_parts(config.audio_config, config.audio_width).items():
            setattr(self, name, module)
        self.projector = Projector(config.projector, config.audio_width, config.text_config.hidden_size)
        self.language_model = AutoModelForCausalLM.from_config(config.text_config)
        self._no_split_modules = [*(getattr(self.language_model, "_no_split_modules", None) or [])]
        self.post_init()

    def get_input_embeddings(self):
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self):
        return self.language_model.get_output_embeddings()

    def get_audio_features(self, input_features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(total tokens, LM width)``: each segment's audio tokens through the projector, one segment after another."""
        audio = tower_family(self.config).audio_embeddings(self, input_features, mask)
        return self.projector(audio)

    def forward(self, input_ids=None, input_features=None, feature_attention_mask=None, input_features_mask=None,
                attention_mask=None, position_ids=None, cache=None, inputs_embeds=None, labels=None,
                use_cache=None, logits_to_keep=0, **kwargs):
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)
            scale = IDS_ONLY_EMBEDDING_SCALE.get(self.config.text_config.model_type)
            if scale is not None:  # what the LM does to the ids it embeds itself, to the whole sequence
                inputs_embeds = inputs_embeds * getattr(self.language_model.model, scale)
        if input_features is not None and input_ids is not None:
            mask = feature_attention_mask if feature_attention_mask is not None else input_features_mask
            audio = self.get_audio_features(input_features.to(self.projector.linear_1.weight.dtype), mask)
            placeholders = input_ids == self.config.audio_token_id
            if int(placeholders.sum()) != audio.shape[0]:
                raise ValueError(f"{int(placeholders.sum())} audio placeholder tokens but {audio.shape[0]} audio "
                                 "embeddings: the prompt's placeholder runs do not match the features")
            inputs_embeds = inputs_embeds.masked_scatter(placeholders[..., None].expand_as(inputs_embeds),
                                                         audio.to(inputs_embeds.device, inputs_embeds.dtype))
        return self.language_model(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                                   position_ids=position_ids, cache=cache, use_cache=use_cache, labels=labels,
                                   logits_to_keep=logits_to_keep, **kwargs)


def tower_family(config: ComposedAudioLMConfig):
    """The family whose audio modules ``config`` holds."""
    return tower(config.audio_family)


AutoConfig.register(MODEL_TYPE, ComposedAudioLMConfig, exist_ok=True)
AutoModelForCausalLM.register(ComposedAudioLMConfig, ComposedAudioLMForCausalLM, exist_ok=True)


def add_layout_tokens(tokenizer) -> list[str]:
    """Add to an LM's tokenizer the composed layout's tokens it lacks (and a pad token if it has none),
    give it the layout's chat template; returns the tokens added."""
    vocab = tokenizer.get_vocab()
    added = [t for t in COMPOSE_TOKENS if t not in vocab]
    if added:
        tokenizer.add_special_tokens({"additional_special_tokens": added}, replace_extra_special_tokens=False)
    if tokenizer.pad_token is None:
        if PAD_TOKEN not in vocab:
            added.append(PAD_TOKEN)
        tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})
    tokenizer.chat_template = tokens.CHAT_TEMPLATE
    tokenizer.padding_side = "right"
    return added


def from_parts(config: ComposedAudioLMConfig, audio_parts: dict[str, nn.Module], language_model: nn.Module,
               seed: int = 0) -> ComposedAudioLMForCausalLM:
    """A composed model holding these very modules, with a new random projector."""
    with torch.device("meta"):
        model = ComposedAudioLMForCausalLM(config)
    for name, module in audio_parts.items():
        setattr(model, name, module)
    model.language_model = language_model
    torch.manual_seed(seed)
    model.projector = Projector(config.projector, config.audio_width, config.text_config.hidden_size)
    return model.to(next(language_model.parameters()).dtype)
