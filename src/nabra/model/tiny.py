"""Tiny models of every family (default: the Qwen2.5-Omni thinker): random weights from config and a
byte-level BPE tokenizer trained on the corpus with the family's special tokens, saved in the same
on-disk layout as a real checkpoint so that `load` reads it through exactly the code path a real
one takes."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from nabra.corpus.labels import DIALECTS, EMOTIONS
from nabra.corpus.manifest import Utterance, iter_manifest
from nabra.files import check_output_folder, staged_folder
from nabra.model.families import Family
from nabra.model.families.qwen2_5_omni import QWEN2_5_OMNI, whisper_feature_extractor
from nabra.model.load import save_folder
from nabra.tasks import SYSTEM_PROMPT, TEMPLATES


@dataclass
class TinyConfig:
    """Sizes of the tiny thinker (defaults: ~1 M parameters)."""

    vocab_size: int = 1024
    """Tokenizer vocabulary (byte-level BPE; special tokens included)."""
    whole_words: tuple[str, ...] = ()
    """Arabic words the tokenizer keeps whole (one token each once merged, as a real LLM's BPE has its
    frequent words), where every other Arabic word is spelled letter by letter; give ``vocab_size`` room
    for their merges (about five a word)."""
    hidden_size: int = 128
    """Language model width; the audio projector's output and the vision output match it."""
    text_layers: int = 2
    """Language model decoder layers."""
    text_heads: int = 4
    """Attention heads (head dim = hidden_size / heads; its half must equal sum(mrope_section))."""
    kv_heads: int = 2
    """Key/value heads (grouped-query attention)."""
    intermediate_size: int = 256
    """Language model MLP width."""
    audio_d_model: int = 64
    """Audio encoder width."""
    audio_layers: int = 2
    """Audio encoder layers."""
    audio_heads: int = 4
    """Audio encoder attention heads."""
    experts: int = 4
    """Routed experts per MoE layer (mixture-of-experts families: Qwen3-Omni)."""
    experts_per_token: int = 2
    """Experts each token is routed to."""
    moe_intermediate_size: int = 64
    """Width of one expert's MLP."""
    lm: str = "falcon_h1"
    """The LM of a tiny composed model: ``falcon_h1`` (hybrid Mamba-2 + attention), ``jais2`` or ``qwen3``."""
    seed: int = 0
    """Seed of the random initialisation."""


def corpus_texts(manifest: str | Path | Iterable[Utterance] | None) -> Iterable[str]:
    """Text the tokenizer should know: transcripts and summaries (of a manifest file, or of
    utterances already read and validated), templates, label names — and each utterance's labels
    once more, as often as the model will answer them: a small vocabulary then spends its merges on
    whole label words (``surprised`` one token, not nine letters to spell) before rarer pieces."""
    yield SYSTEM_PROMPT
    for templates in TEMPLATES.values():
        yield from templates
    for labels in (DIALECTS, EMOTIONS):
        yield ", ".join(labels.names)
        for name in labels.names:
            yield name
            yield from labels.aliases.get(name, ())
    if manifest is not None:
        utts = iter_manifest(manifest, resolve=False) if isinstance(manifest, str | Path) else manifest
        for utt in utts:
            for text in (utt.transcript, utt.summary, utt.dialect, utt.emotion):
                if text:
                    yield text


ARABIC_CHAR = "[\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF\uFB50-\uFDFF\uFE70-\uFEFF]"
"""One character of the Arabic blocks (letters, diacritics, Arabic punctuation and digits, presentation forms)."""


def train_tokenizer(texts: Iterable[str], vocab_size: int, family: Family = QWEN2_5_OMNI,
                    whole_words: Iterable[str] = ()):
    """A byte-level BPE (round-trips any text, Arabic included) with the family's special tokens
    (they take the first ids, in the family's order).

    Character-level for Arabic: each Arabic letter (two bytes) is split off as its own piece before
    the byte-level step, so its only merge is its own two bytes — a letter is one token and no
    token is half a letter glued to the next. Latin text (templates, label names) is merged as
    usual, so ``surprised`` is one token. A tiny model learns ASR from this vocabulary (the demo's
    base); with whole-word pieces it spreads a few examples over thousands of rare tokens. ``whole_words``
    are split off whole instead (a word of them followed by no Arabic letter), so their letters can merge
    into one token: a templated summary is then a few tokens a word, not one a letter."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    words = sorted(set(whole_words), key=len, reverse=True)  # the longest first: no word cut at a shorter one
    pieces = (f"(?:{'|'.join(map(re.escape, words))})(?!{ARABIC_CHAR})|" if words else "") + ARABIC_CHAR
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pieces), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    tok.decoder = decoders.ByteLevel()
    special = family.special_tokens
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(special.values()),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    extra = {k: v for k, v in special.items() if k not in ("eos_token", "im_start", "im_end")}
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=special["im_end"], pad_token=special["eos_token"],
        additional_special_tokens=[special["im_start"], special["im_end"]], extra_special_tokens=extra,
        chat_template=family.chat_template, padding_side="right", model_max_length=32768,
    )


def feature_extractor(out_dir: str | Path | None = None, **overrides):
    """The Qwen-Omni feature extractor (300-s window), saved to ``out_dir`` when given."""
    fe = whisper_feature_extractor(**overrides)
    if out_dir is not None:
        fe.save_pretrained(out_dir)
    return fe


TINY_MARKER = "nabra_tiny.json"


def init_tiny(out_dir: str | Path, manifest: str | Path | Iterable[Utterance] | None = None,
              cfg: TinyConfig | None = None, family: Family = QWEN2_5_OMNI, *, force: bool = False) -> Path:
    """Write a tiny checkpoint of ``family`` (config, safetensors weights, tokenizer, feature
    extractor); its tokenizer learns the texts of ``manifest`` (a file, or utterances). ``out_dir``
    must be absent, empty or an earlier tiny model (``nabra_tiny.json``), which only ``force`` replaces."""
    import torch

    cfg = cfg or TinyConfig()
    out_dir = check_output_folder(out_dir, TINY_MARKER, force=force, what="tiny model")
    tokenizer = train_tokenizer(corpus_texts(manifest), cfg.vocab_size, family, cfg.whole_words)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in family.special_tokens.values()}
    torch.manual_seed(cfg.seed)
    model = family.new_model(family.tiny_config(cfg, ids))
    model.generation_config.eos_token_id = ids[family.special_tokens["im_end"]]
    model.generation_config.pad_token_id = ids[family.special_tokens["eos_token"]]
    with staged_folder(out_dir, replace=True) as tmp:  # config.json moved in last: a kill leaves no half model
        save_folder(tmp, model, tokenizer, family.new_feature_extractor())  # tie flags: vLLM reads text_config's
        (tmp / TINY_MARKER).write_text(json.dumps({"family": family.name, **vars(cfg)}, indent=2) + "\n")
    return out_dir
