"""Test dummies shared by the test suite and the benchmarks: tiny clips and manifests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from nabra.corpus.audio import SAMPLE_RATE
from nabra.corpus.manifest import Utterance, write_manifest
from nabra.files import remove
from nabra.model.families.qwen2_5_omni import RELEASE_IMAGE_KEYS


def tone(seconds: float, sample_rate: int = SAMPLE_RATE, freq: float = 220.0, channels: int = 1) -> np.ndarray:
    """A sine tone with a little noise: ``(frames,)`` or ``(frames, channels)`` float32."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    rng = np.random.default_rng(int(freq))
    x = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)
    x = x.astype(np.float32)
    if channels > 1:
        x = np.stack([x * (0.5 + 0.5 * c / channels) for c in range(channels)], axis=1)
    return x


def write_clip(path: str | Path, seconds: float = 1.0, sample_rate: int = SAMPLE_RATE, channels: int = 1,
               fmt: str | None = None, subtype: str | None = None, freq: float = 220.0) -> Path:
    """Write a tone clip to ``path`` in the format its suffix (or ``fmt``) names."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), tone(seconds, sample_rate, freq, channels), sample_rate, format=fmt, subtype=subtype)
    return path


def tiny_manifest(folder: str | Path, n: int = 10, with_audio: bool = True) -> Path:
    """A small valid manifest under ``folder`` covering all five tasks, with 16 kHz clips."""
    folder = Path(folder)
    dialects = ("EGY", "GLF", "LAV", "NOR", "MSA")
    emotions = ("neutral", "happy", "sad", "angry", "surprised")
    utts = []
    for i in range(n):
        audio = None
        if with_audio:
            audio = str(write_clip(folder / "audio" / f"u{i:03d}.wav", 0.5 + 0.1 * i, freq=200 + 20 * i))
        utts.append(Utterance(
            id=f"u{i:03d}", audio=audio, duration=round(0.5 + 0.1 * i, 3) if with_audio else None,
            language="ar", transcript="مرحبا بكم في نبرة", summary="ترحيب" if i % 3 == 0 else None,
            dialect=dialects[i % 5], emotion=emotions[i % 5], speaker=f"spk{i % 3}",
            source="test", split=("train", "dev", "test")[i % 3],
        ))
    path = folder / "manifest.jsonl"
    write_manifest(path, utts)
    return path


def write_lines(path: str | Path, records: list) -> Path:
    """Write raw manifest lines: dicts become JSON, strings are written as they are."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n")
    return path


def write_run(folder: str | Path, schedule: str, seed: int = 0, *, records=(), test: dict | None = None,
              config: dict | None = None, train_data: dict | None = None) -> Path:
    """The one fake run folder of the tests, in the layout training and ``nabra evaluate`` write (what
    :class:`~nabra.run.folder.RunFolder` reads): ``config.yaml`` (the schedule — or a baseline's name —,
    the seed and any other ``config`` sections), ``metrics.jsonl`` (``records``, one a line), with
    ``test`` (``{"metrics": {...}, "composite": x}``) ``eval-test/metrics.json``, and with ``train_data``
    (``{"examples": {...}, "labels": {task: {label: n}}}``) ``train-data.json``."""
    import yaml

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = {"schedule": {"name": schedule}, "train": {"seed": seed}, **(config or {})}
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    if records:
        (folder / "metrics.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                                              encoding="utf-8")
    if test is not None:
        (folder / "eval-test").mkdir(exist_ok=True)
        (folder / "eval-test" / "metrics.json").write_text(json.dumps(test, ensure_ascii=False), encoding="utf-8")
    if train_data is not None:
        (folder / "train-data.json").write_text(json.dumps(train_data, ensure_ascii=False), encoding="utf-8")
    return folder


def write_eval_run(folder: str | Path, schedule: str, seed: int, asr: dict, composite: float = 0.5) -> Path:
    """:func:`write_run` with one training step and only an ASR test result."""
    return write_run(folder, schedule, seed, records=[{"step": 1, "loss": 1.0, "task_loss": {"asr": 1.0}}],
                     test={"metrics": {"asr": asr}, "composite": composite})


# -- tiny models ---------------------------------------------------------------------------------

TINY_TEXTS = ("مرحبا بكم في نبرة", "الجو جميل اليوم في القاهرة", "افتتح الوزير مستشفى جديدا", "ترحيب")


def tiny_model_dir(folder: str | Path, manifest: str | Path | None = None, **sizes) -> Path:
    """A tiny thinker checkpoint in ``folder`` (built once: reused when already there)."""
    from nabra.model.tiny import TinyConfig, init_tiny

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        init_tiny(folder, manifest, TinyConfig(**{"vocab_size": 512, **sizes}), force=True)
    return folder




def write_release_checkpoint(thinker_dir: str | Path, out_dir: str | Path, *, talker_mb: int = 1) -> Path:
    """A tiny Qwen2.5-Omni **release** checkpoint holding what a real one holds: the thinker of
    ``thinker_dir`` (its weights, as they are), a talker and a token2wav (DiT + BigVGAN) built from
    tiny configs with random weights, ``spk_dict.pt``, sharded safetensors with their index, the full
    ``preprocessor_config.json`` (audio keys with the 300-s window and the Qwen2-VL image keys), the
    tokenizer, chat template and generation config. transformers' stock
    ``Qwen2_5OmniForConditionalGeneration.from_pretrained`` loads it (talker and speakers included),
    and it saves under the release's own tensor names (``thinker.model.*``, ``thinker.audio_tower.*``,
    ``talker.*``, ``token2wav.*``). ``talker_mb``: about how much the talker's weights take."""

    import torch
    from transformers import (
        Qwen2_5OmniConfig,
        Qwen2_5OmniForConditionalGeneration,
        Qwen2_5OmniThinkerForConditionalGeneration,
    )

    thinker_dir, out_dir = Path(thinker_dir), Path(out_dir)
    thinker = json.loads((thinker_dir / "config.json").read_text())
    hidden, vocab = thinker["text_config"]["hidden_size"], thinker["text_config"]["vocab_size"]
    codec = max(64, talker_mb * (1 << 20) // (4 * hidden))  # the talker's embeddings carry its size
    ids = {k: thinker[k] for k in ("audio_start_token_id", "audio_end_token_id", "vision_start_token_id")}
    talker = {
        "vocab_size": codec, "embedding_size": hidden, "hidden_size": 64, "intermediate_size": 128,
        "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 32,
        "tts_codec_start_token_id": codec - 4, "tts_codec_end_token_id": codec - 3,
        "tts_codec_pad_token_id": codec - 2, "tts_codec_mask_token_id": codec - 1,
        "tts_text_start_token_id": vocab - 3, "tts_text_end_token_id": vocab - 2, "tts_text_pad_token_id": vocab - 1,
        "audio_token_index": thinker["audio_token_index"], "image_token_index": thinker["image_token_index"],
        "video_token_index": thinker["video_token_index"], "vision_end_token_id": ids["vision_start_token_id"] + 1,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 6, 6]}, **ids,
    }
    dit = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "head_dim": 32, "ff_mult": 2,
           "emb_dim": 32, "num_embeds": 64, "mel_dim": 80, "enc_emb_dim": 32, "enc_dim": 32,
           "enc_channels": [32, 32, 32, 32, 96], "enc_attention_channels": 16, "enc_se_channels": 16,
           "look_ahead_layers": [1], "look_backward_layers": [0, 1], "block_size": 24}
    bigvgan = {"mel_dim": 80, "upsample_initial_channel": 32}
    config = Qwen2_5OmniConfig(thinker_config=thinker, talker_config=talker, enable_audio_output=True,
                               token2wav_config={"dit_config": dit, "bigvgan_config": bigvgan})
    torch.manual_seed(0)
    model = Qwen2_5OmniForConditionalGeneration(config)
    trained = Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(thinker_dir, local_files_only=True)
    model.thinker.load_state_dict(trained.state_dict())  # the very thinker of thinker_dir
    remove(out_dir)
    model.save_pretrained(out_dir, max_shard_size=f"{max(1, talker_mb // 2)}MB")  # sharded, as a release is
    torch.save({"Chelsie": {"cond": torch.randn(32), "ref_mel": torch.randn(1, 30, 80), "bos_token": codec - 4},
                "Ethan": {"cond": torch.randn(32), "ref_mel": torch.randn(1, 30, 80), "bos_token": codec - 4}},
               out_dir / "spk_dict.pt")
    _copy_processing_files(thinker_dir, out_dir)
    return out_dir


def _copy_processing_files(thinker_dir: Path, out_dir: Path) -> None:
    """The tokenizer, chat template and generation config of ``thinker_dir``, and its preprocessor with
    the release's Qwen2-VL image keys added."""
    import shutil

    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json"):
        if (thinker_dir / name).is_file():
            shutil.copy(thinker_dir / name, out_dir / name)
    preprocessor = json.loads((thinker_dir / "preprocessor_config.json").read_text()) | RELEASE_IMAGE_KEYS
    (out_dir / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2, sort_keys=True) + "\n")


def write_qwen3_omni_release(thinker_dir: str | Path, out_dir: str | Path, *, talker: bool = False) -> Path:
    """A tiny Qwen3-Omni release checkpoint from the thinker of ``thinker_dir``: the thinker-only kind
    (``-Thinking``, ``-Captioner``: ``model_type: qwen3_omni_moe`` with a ``thinker_config`` and
    ``enable_audio_output: false``), or with ``talker`` the ``-Instruct`` kind, which also holds a talker
    (its MoE text model and code predictor) and code2wav, here from tiny configs with random weights.
    Saved by transformers' stock ``Qwen3OmniMoeForConditionalGeneration`` under the release's tensor
    names (``thinker.model.layers.*``, ``thinker.audio_tower.*``, experts one by one, ``talker.*``,
    ``code2wav.*``), with the tokenizer, generation config and preprocessor (Qwen2-VL image keys added)."""

    import torch
    from transformers import (
        Qwen3OmniMoeConfig,
        Qwen3OmniMoeForConditionalGeneration,
        Qwen3OmniMoeThinkerForConditionalGeneration,
    )

    thinker_dir, out_dir = Path(thinker_dir), Path(out_dir)
    thinker = json.loads((thinker_dir / "config.json").read_text())
    extra = {"enable_audio_output": False}
    if talker:
        extra = {"enable_audio_output": True, "talker_config": _tiny_qwen3_talker(thinker), "code2wav_config": {
            "codebook_size": 64, "hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
            "num_key_value_heads": 2, "intermediate_size": 128, "num_quantizers": 4, "upsample_rates": [2, 2],
            "upsampling_ratios": [2], "decoder_dim": 32, "sliding_window": 8}}
    torch.manual_seed(0)
    model = Qwen3OmniMoeForConditionalGeneration(Qwen3OmniMoeConfig(thinker_config=thinker, **extra))
    trained = Qwen3OmniMoeThinkerForConditionalGeneration.from_pretrained(thinker_dir, local_files_only=True)
    model.thinker.load_state_dict(trained.state_dict())  # the very thinker of thinker_dir
    remove(out_dir)
    model.save_pretrained(out_dir)
    _copy_processing_files(thinker_dir, out_dir)
    return out_dir


def _tiny_qwen3_talker(thinker: dict) -> dict:
    """A tiny Qwen3-Omni talker config wired to ``thinker``'s token ids. ``spatial_merge_size`` is not a
    declared field of the talker's config, but its model reads it (as the thinker's reads
    ``vision_start_token_id``, FACTS.md)."""
    ids = ("audio_token_id", "image_token_id", "video_token_id", "vision_start_token_id", "audio_start_token_id")
    mrope = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 6, 6], "interleaved": True}
    return {"thinker_hidden_size": thinker["text_config"]["hidden_size"], "spatial_merge_size": 2,
            "num_code_groups": 4, "accept_hidden_layer": 1, "codec_pad_id": 58, "codec_bos_id": 59,
            "codec_eos_token_id": 60, "codec_nothink_id": 61, "codec_think_bos_id": 62, "codec_think_eos_id": 63,
            **{k: thinker[k] for k in ids},
            "text_config": {"vocab_size": 64, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1,
                            "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 32, "num_experts": 2,
                            "num_experts_per_tok": 1, "moe_intermediate_size": 32,
                            "shared_expert_intermediate_size": 32, "rope_parameters": mrope},
            "code_predictor_config": {"vocab_size": 64, "hidden_size": 64, "intermediate_size": 128,
                                      "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
                                      "head_dim": 32, "num_code_groups": 4}}


def write_nemotron_omni_release(tiny_dir: str | Path, out_dir: str | Path) -> Path:
    """A tiny Nemotron-3-Nano-Omni folder in NVIDIA's release form: the weights of ``tiny_dir`` as
    transformers saves them (the release's legacy names: ``language_model.backbone.*``,
    ``sound_encoder.encoder.*``, ``sound_projection.*``, ``mlp1.*``, experts one by one) and its
    ``config.json`` rewritten as the release writes it: ``model_type``/``architectures``
    ``NemotronH_Nano_Omni_Reasoning_V3`` with a custom-code ``auto_map``, ``llm_config``,
    ``sound_config`` (carrying ``model_type: parakeet``, which transformers 5.24 refuses as it is),
    ``sound_context_token_id`` and ``img_context_token_id`` (research notes §2.5)."""
    import shutil

    tiny_dir, out_dir = Path(tiny_dir), Path(out_dir)
    remove(out_dir)
    shutil.copytree(tiny_dir, out_dir)
    (out_dir / "nabra_tiny.json").unlink(missing_ok=True)
    config = json.loads((out_dir / "config.json").read_text())
    config["llm_config"] = config.pop("text_config")
    config["sound_config"] = {**config.pop("audio_config"), "model_type": "parakeet"}
    config["sound_context_token_id"] = config.pop("audio_token_id")
    config["img_context_token_id"] = config.pop("image_token_id")
    config["model_type"] = "NemotronH_Nano_Omni_Reasoning_V3"
    config["architectures"] = ["NemotronH_Nano_Omni_Reasoning_V3"]
    config["auto_map"] = {"AutoConfig": "configuration.NemotronH_Nano_Omni_Reasoning_V3_Config",
                          "AutoModel": "modeling.NemotronH_Nano_Omni_Reasoning_V3"}
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return out_dir


def write_causal_lm(out_dir: str | Path, lm: str = "falcon_h1", texts=TINY_TEXTS, **sizes) -> Path:
    """A tiny causal LM folder of type ``lm`` as a hub download is laid out (``config.json``,
    ``model.safetensors``, ``generation_config.json``, ``tokenizer.json`` + ``tokenizer_config.json``),
    whose byte-level BPE tokenizer knows ``<|endoftext|>`` (its eos) and none of the composed layout's
    tokens, and has no pad token — what ``nabra model compose`` must complete."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    from nabra.model.families.composed import tiny_lm_config
    from nabra.model.tiny import TinyConfig

    out_dir = Path(out_dir)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(list(texts), trainer=trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")
    cfg = TinyConfig(**{"vocab_size": len(tokenizer), "lm": lm, "hidden_size": 64, "intermediate_size": 128,
                        **sizes})
    model = AutoModelForCausalLM.from_config(tiny_lm_config(cfg, pad_token_id=None, eos_token_id=0))
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def audio_example(uid: str, task: str, seconds: float):
    """A prompted example of ``task`` on a ``seconds``-long clip (its audio is passed beside it)."""
    from nabra.corpus.manifest import Utterance
    from nabra.tasks import make_example

    utt = Utterance(id=uid, audio="/x.wav", transcript="الجو جميل اليوم", summary="طقس", dialect="EGY",
                    emotion="sad", duration=seconds)
    return make_example(utt, task)


def noise_waves(examples, seed: int = 0) -> list:
    """Gaussian noise (16 kHz, float32) as long as each example's duration: audio for shape tests."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(int(ex.duration * 16000))).astype(np.float32) for ex in examples]


def check_left_padded_generation(bundle, seed: int = 1) -> None:
    """Assert that two clips of other lengths generated in one left-padded batch give what each gives
    alone (a recurrent state must ignore the padding; the attention must mask it)."""
    from nabra.evaluate.runner import generate_batch
    from nabra.model.collate import Collator

    examples = [audio_example("g0", "asr", 1.0), audio_example("g1", "asr", 4.0)]
    waves = noise_waves(examples, seed)
    collator = Collator.for_bundle(bundle)
    both = generate_batch(bundle.model, bundle.tokenizer, collator, list(zip(examples, waves, strict=True)), 12,
                          stop_loops=False)
    alone = [generate_batch(bundle.model, bundle.tokenizer, collator, [(e, w)], 12, stop_loops=False)[0]
             for e, w in zip(examples, waves, strict=True)]
    assert [both[0], both[1]] == alone


def check_collator_equals_processor(bundle, examples, waves, *, tolerance: float = 1e-5) -> dict:
    """Assert that Nabra's collator and transformers' own processor give ``bundle``'s model the same
    token ids and logits (within ``tolerance``) for every example; returns Nabra's batch."""
    import torch

    from nabra.model.collate import Collator
    from nabra.model.config import CollatorConfig
    from nabra.model.reference import reference_batch, reference_processor
    from nabra.tasks import SYSTEM_PROMPT

    ours = Collator.for_bundle(bundle, CollatorConfig(max_length=8192))(list(zip(examples, waves, strict=True)))
    ref = reference_batch(reference_processor(bundle), SYSTEM_PROMPT, examples, waves, family=bundle.family)
    keys = ("input_ids", "attention_mask", "input_features", bundle.family.feature_mask_key)
    with torch.no_grad():
        a = bundle.model(**{k: ours[k] for k in keys}).logits
        b = bundle.model(**{k: ref[k] for k in keys}).logits
    for row in range(len(examples)):
        keep_a, keep_b = ours["attention_mask"][row].bool(), ref["attention_mask"][row].bool()
        assert torch.equal(ours["input_ids"][row][keep_a], ref["input_ids"][row][keep_b]), row
        assert (a[row][keep_a] - b[row][keep_b]).abs().max() < tolerance, row
    return ours


def lora_steps(model, inputs: dict, steps: int = 8, lr: float = 5e-3) -> list[float]:
    """``steps`` AdamW steps of ``model`` (its trainable weights) on one batch; the losses."""
    import torch

    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(steps):
        loss = model(**inputs).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    return losses
