"""The real training step on a GPU: a Qwen2.5-Omni-7B-shaped thinker, bf16, LoRA r=16 on the LM.

One prepared script for a CUDA machine (about 8 minutes on one H100/H200). The thinker is built from
config directly on the GPU with random weights, at the release's published sizes (LM 3584 wide, 28
layers, 28 heads / 4 KV heads, MLP 18944, vocab 152064, M-RoPE [16, 24, 24]; Whisper-style audio
encoder 1280 wide, 32 layers; the 32-block vision part, frozen and unused, for the memory it holds);
the tokenizer and the 300-s feature extractor are the tiny model's (random weights do not care
which ids the text has). A batch is ``--batch`` clips of ``--seconds`` s with answers long enough
for ``--tokens``-token sequences. Measured, each after two warm-up steps:

1. the bf16 matmul peak of this chip (8192³, the MFU denominator);
2. the LoRA step — tokens/s, step time, peak memory, MFU (FLOPs counted by torch's FlopCounterMode
   on one step, forward + backward, divided by step time and the measured peak) — with SDPA, with
   SDPA + gradient checkpointing, and with eager attention;
3. Nabra's collator vs the stock processor's 300-s padding path on the same clips (CPU, ms per batch);
4. the same global batch of mixed lengths (``--mixed``: 2-300 s) padded vs packed (per-sequence SDPA),
   with gradient checkpointing: useful tokens/s, peak memory, MFU;
5. the tiny recipe's ``nabra train`` for a few steps on CUDA in bf16, and its dev evaluation, padded
   and with ``micro_batch_tokens`` + ``packing``.

Targets (one H100/H200): MFU >= 35 %, peak memory <= 40 GB at batch 8. Without CUDA the script
prints one line and exits 0 (``make bench`` runs it everywhere). ``--dry-run`` runs parts 2 and 3
on the CPU with a tiny thinker through the same code (what the test suite does, so that the one
GPU run a session gets does not fail on a typo).

    python bench/bench_gpu.py [--batch 8] [--seconds 10] [--tokens 1024] [--steps 5] [--dry-run]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from bench_collate import median_ms  # run from the repository root: bench/ is on the path
from figures import record

RELEASE_7B = {
    "text": {"hidden_size": 3584, "text_layers": 28, "text_heads": 28, "kv_heads": 4, "intermediate_size": 18944,
             "vocab_size": 152064},
    "audio": {"audio_d_model": 1280, "audio_layers": 32, "audio_heads": 20},
    "vision": {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
               "fullatt_block_indexes": [7, 15, 23, 31], "window_size": 112},
}
"""Qwen2.5-Omni-7B's thinker sizes (its config.json); the encoder FFN (5120 = 4 x 1280) and
``max_source_positions`` (1500) are what the tiny builder derives from these."""
MFU_TARGET, MEMORY_TARGET_GB = 0.35, 40.0
DRY_RUN = {"text": {"hidden_size": 64, "text_layers": 2, "text_heads": 4, "kv_heads": 2, "intermediate_size": 128,
                    "vocab_size": 512},
           "audio": {"audio_d_model": 32, "audio_layers": 2, "audio_heads": 2},
           "vision": {"depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
                      "fullatt_block_indexes": [0], "window_size": 112}}
"""``--dry-run``: the same build at tiny sizes (M-RoPE sections sized to its head dim)."""


def no_cuda() -> str | None:
    """Why the GPU bench cannot run here, or None."""
    if not torch.cuda.is_available():
        return "no CUDA device (torch.cuda.is_available() is False)"
    return None


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def matmul_peak(device: str = "cuda", n: int = 8192, repeats: int = 20) -> float:
    """Measured bf16 matmul TFLOP/s (the best of ``repeats``)."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    best = 0.0
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        a @ b
        sync(device)
        best = max(best, 2 * n**3 / (time.perf_counter() - t) / 1e12)
    return best


def omni7b_config(tokenizer, sizes: dict = RELEASE_7B):
    """The 7B thinker's config (or ``sizes``'), wired to ``tokenizer``'s special-token ids."""
    from nabra.model.families.qwen2_5_omni import QWEN2_5_OMNI
    from nabra.model.tiny import TinyConfig

    names = ("<|im_end|>", "<|endoftext|>", "<|AUDIO|>", "<|IMAGE|>", "<|VIDEO|>", "<|audio_bos|>", "<|audio_eos|>",
             "<|im_start|>", "<|vision_bos|>")
    ids = {n: tokenizer.convert_tokens_to_ids(n) for n in names}
    cfg = QWEN2_5_OMNI.tiny_config(TinyConfig(**sizes["text"], **sizes["audio"]), ids)
    text = cfg.text_config
    if sizes is RELEASE_7B:
        text.rope_parameters = {"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [16, 24, 24]}
        text.max_position_embeddings = 32768
    text.tie_word_embeddings = cfg.tie_word_embeddings = False
    for key, value in sizes["vision"].items():
        setattr(cfg.vision_config, key, value)
    return cfg


def make_batch(bundle, n: int, seconds: float, tokens: int, seed: int = 0):
    """``n`` examples of ``seconds`` s with an ASR answer long enough for about ``tokens`` tokens in
    all, their waveforms, and the collated batch."""
    from nabra.corpus.manifest import Utterance
    from nabra.model.collate import Collator
    from nabra.tasks import make_example

    rng = np.random.default_rng(seed)
    collator = Collator(bundle.tokenizer, bundle.feature_extractor)
    words = ["الجو", "جميل", "اليوم", "في", "القاهرة", "والرياض", "وبيروت", "والرباط", "الطلاب", "يدرسون", "في", "الجامعة"]
    audio_tokens = collator.audio_tokens(seconds)
    examples, waves = [], []
    for i in range(n):
        text, count = [], 0
        while count < tokens - audio_tokens - 40:  # the prompt and the chat layout take ~40
            text.append(str(rng.choice(words)))
            count = len(bundle.tokenizer(" ".join(text), add_special_tokens=False)["input_ids"])
        utt = Utterance(f"c{i}", audio="/mem.wav", transcript=" ".join(text), duration=seconds)
        examples.append(make_example(utt, "asr"))
        waves.append((0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32))
    batch = collator(list(zip(examples, waves, strict=True)))
    return examples, waves, collator, batch


def time_step(model, batch, steps: int, *, gradient_checkpointing: bool, attention: str, device: str = "cuda") -> dict:
    """The LoRA step's time, tokens/s, peak memory and counted FLOPs in one setting."""
    from torch.utils.flop_counter import FlopCounterMode

    from nabra.model.collate import to_device
    from nabra.model.loss import AnswerLoss, thinker_of

    thinker = thinker_of(model)
    if attention == "nabra_packed_sdpa":  # the LM's attention per packed sequence; the encoder keeps SDPA
        from nabra.model.packed_attention import use_packed_sdpa

        thinker.set_attn_implementation("sdpa")
        use_packed_sdpa(thinker.model.language_model)
    elif hasattr(thinker, "set_attn_implementation"):
        thinker.set_attn_implementation(attention)
    else:  # older transformers: the attention function is looked up from the configs at forward time
        for c in (thinker.config, *(getattr(thinker.config, k) for k in ("text_config", "audio_config"))):
            c._attn_implementation = attention
    if gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    else:
        model.gradient_checkpointing_disable()
    loss_fn = AnswerLoss(model)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, fused=device == "cuda")
    batch = to_device(batch, device)
    batch["input_features"] = batch["input_features"].to(torch.bfloat16)

    def step():
        sums, counts = loss_fn(batch)
        (sums.sum() / counts.sum()).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(2):
        step()
    sync(device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - t)
    peak_gb = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    seconds = statistics.median(times)
    tokens = int(batch["attention_mask"].sum()) if "attention_mask" in batch else batch["input_ids"].numel()
    return {"step_s": seconds, "tokens_per_s": tokens / seconds, "peak_gb": peak_gb,
            "flops": counter.get_total_flops(), "tokens": tokens}


def measure(model, batch, steps: int, gradient_checkpointing: bool, attention: str, device: str, peak_tflops: float,
            label: str, where: str) -> tuple[dict, float] | None:
    """:func:`time_step` and its MFU; ``None`` (said and recorded) when it runs out of memory."""
    try:
        r = time_step(model, batch, steps, gradient_checkpointing=gradient_checkpointing, attention=attention,
                      device=device)
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        print(f"{label}: out of memory at {where}")
        record("gpu", f"{label}, {where}", float("nan"), "out of memory")
        return None
    return r, r["flops"] / r["step_s"] / (peak_tflops * 1e12)


def bench_step(bundle, args, peak_tflops: float, device: str = "cuda", sizes: dict = RELEASE_7B) -> None:
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration

    from nabra.model.config import LoraConfig
    from nabra.model.lora import trainable

    cfg = omni7b_config(bundle.tokenizer, sizes)
    torch.manual_seed(0)
    t = time.perf_counter()
    with torch.device(device):
        model = Qwen2_5OmniThinkerForConditionalGeneration._from_config(cfg, dtype=torch.bfloat16,
                                                                        attn_implementation="sdpa")
    n_params = sum(p.numel() for p in model.parameters())
    model = trainable(model, "lora", LoraConfig(r=16, alpha=32, dropout=0.0, train_aligner=False))
    n_lora = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"{'7B-shaped' if sizes is RELEASE_7B else 'dry-run'} thinker: {n_params / 1e9:.2f} B parameters "
          f"(LoRA {n_lora / 1e6:.1f} M trainable), built on {device} in {time.perf_counter() - t:.0f} s")
    _, _, _, batch = make_batch(bundle, args.batch, args.seconds, args.tokens)
    where = f"batch {args.batch} x {args.seconds:g} s, {batch['input_ids'].shape[1]} tokens"
    settings = [(name, batch, gc, attention) for name, gc, attention in
                (("SDPA", False, "sdpa"), ("SDPA + gradient checkpointing", True, "sdpa"), ("eager attention", False, "eager"))]
    run_settings(model, settings, args.steps, device, peak_tflops, "LoRA step", where, targets=True)
    bench_packing(model, bundle, args, peak_tflops, device)
    del model
    if device == "cuda":
        torch.cuda.empty_cache()


def bench_packing(model, bundle, args, peak_tflops: float, device: str = "cuda") -> None:
    """The same global batch of mixed lengths (``--mixed`` seconds) in one micro-batch, padded vs packed
    (per-sequence SDPA), with gradient checkpointing: tokens/s counts the useful tokens of both."""
    from nabra.model.collate import Collator
    from nabra.model.config import CollatorConfig

    samples = []
    for k, seconds in enumerate(args.mixed):
        examples, waves, _, _ = make_batch(bundle, 1, seconds, collator_tokens(bundle, seconds) + 60, seed=k)
        samples.append((examples[0], waves[0]))
    padded = Collator(bundle.tokenizer, bundle.feature_extractor, CollatorConfig(max_length=None))(samples)
    packed = Collator(bundle.tokenizer, bundle.feature_extractor, CollatorConfig(max_length=None, packing=True))(samples)
    useful = int(padded["attention_mask"].sum())
    where = f"{len(samples)} clips of {min(args.mixed):g}-{max(args.mixed):g} s, {useful:,} useful tokens"
    settings = [("mixed lengths, padded", padded, True, "sdpa"), ("mixed lengths, packed", packed, True, "nabra_packed_sdpa")]
    run_settings(model, settings, args.steps, device, peak_tflops, "LoRA step", where, targets=False)


def run_settings(model, settings, steps: int, device: str, peak_tflops: float, prefix: str, where: str, *,
                 targets: bool) -> None:
    """Time each ``(name, batch, gradient checkpointing, attention)``; print and record its useful tokens/s,
    step time, MFU and peak memory (``targets``: against the MFU and memory targets)."""
    for name, batch, gc, attention in settings:
        measured = measure(model, batch, steps, gc, attention, device, peak_tflops, f"{prefix}, {name}", where)
        if measured is None:
            continue
        r, mfu = measured
        print(f"{name:32s} step {1000 * r['step_s']:7.0f} ms  {r['tokens_per_s']:9,.0f} tokens/s  "
              f"peak {r['peak_gb']:5.1f} GB  MFU {100 * mfu:5.1f} % ({r['flops'] / 1e12:.1f} TFLOP a step, "
              f"{batch['input_ids'].numel():,} tokens computed)")
        record("gpu", f"{prefix}, {name}, {where}", r["tokens_per_s"], "useful tokens/s")
        record("gpu", f"{prefix}, {name}: step time", 1000 * r["step_s"], "ms")
        record("gpu", f"{prefix}, {name}: MFU", 100 * mfu, "%", at_least=100 * MFU_TARGET if targets else None)
        record("gpu", f"{prefix}, {name}: peak memory", r["peak_gb"], "GB", at_most=MEMORY_TARGET_GB if targets else None)


def collator_tokens(bundle, seconds: float) -> int:
    from nabra.model.collate import Collator

    return Collator(bundle.tokenizer, bundle.feature_extractor).audio_tokens(seconds)


def bench_collation(bundle, args) -> None:
    """Nabra's collator vs the processor's 300-s padding path, on the step's clips (CPU)."""
    from nabra.model.reference import AudioOnlyOmniProcessor, reference_batch
    from nabra.tasks import SYSTEM_PROMPT

    examples, waves, collator, _ = make_batch(bundle, args.batch, args.seconds, args.tokens)
    processor = AudioOnlyOmniProcessor.from_parts(bundle.feature_extractor, bundle.tokenizer)
    o = median_ms(lambda: collator(list(zip(examples, waves, strict=True))), 3)
    p = median_ms(lambda: reference_batch(processor, SYSTEM_PROMPT, examples, waves), 3)
    print(f"collation of {args.batch} x {args.seconds:g} s: nabra {o:.0f} ms, processor (300-s padding) {p:.0f} ms "
          f"({p / o:.1f}x)")
    record("gpu", f"collation, {args.batch} x {args.seconds:g} s: nabra", o, "ms")
    record("gpu", "collation: processor (300-s padding) / nabra", p / o, "x", at_least=1)


def bench_recipe(tmp: Path, steps: int, packing: bool = False) -> None:
    """The tiny recipe's `nabra train` on CUDA in bf16 for ``steps`` steps, with a dev evaluation
    (``packing``: micro-batches by token budget, packed)."""
    import json

    from nabra.config import RunConfig, from_dict
    from nabra.testing import tiny_manifest, tiny_model_dir
    from nabra.train import train

    corpus = tiny_manifest(tmp / "corpus", 24)
    model = tiny_model_dir(tmp / "tiny", corpus)
    cfg = from_dict(RunConfig, {
        "output_dir": str(tmp / "run"), "data": {"manifest": str(corpus), "dev_per_task": 4},
        "model": {"path": str(model), "finetune": "lora", "dtype": "bfloat16"}, "schedule": {"name": "ads"},
        "train": {"max_steps": steps, "batch_size": 8, "precision": "bf16", "save_every": 0,
                  "eval_every": steps, "seed": 0, **({"micro_batch_tokens": 2048} if packing else {})},
        "collate": {"packing": packing},
    })
    if packing:
        cfg.output_dir += "-packed"
    t = time.perf_counter()
    run = train(cfg, progress=False, log=lambda *_: None)
    seconds = time.perf_counter() - t
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    evals = [r for r in records if r.get("event") == "dev_eval"]
    ok = len(losses) == steps and all(np.isfinite(losses)) and bool(evals)
    kind = "packed, micro_batch_tokens 2048" if packing else "padded"
    print(f"tiny recipe on CUDA, bf16, ads, {kind}, {steps} steps: {seconds:.0f} s, losses {losses[0]:.3f} -> {losses[-1]:.3f}, "
          f"dev evaluation {'done' if evals else 'MISSING'}: {'ok' if ok else 'FAILED'}")
    record("gpu", f"tiny recipe `nabra train` on CUDA bf16, {kind} ({steps} steps, finite losses, dev eval)", float(ok), "ok",
           at_least=1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--tokens", type=int, default=1024, help="sequence length to aim for (audio + prompt + answer)")
    p.add_argument("--steps", type=int, default=5, help="timed steps per setting")
    p.add_argument("--recipe-steps", type=int, default=6)
    p.add_argument("--mixed", type=float, nargs="+", default=[300, 120, 60, 20, 10, 8, 5, 4, 3, 2, 2, 2],
                   help="clip lengths (s) of the padded-vs-packed batch")
    p.add_argument("--dry-run", action="store_true", help="parts 2 and 3 on the CPU with a tiny thinker (a check)")
    args = p.parse_args(argv)
    if args.dry_run:
        return dry_run(args)
    why = no_cuda()
    if why:
        print(f"bench_gpu: {why}: skipped; the GPU figures are not measured on this machine")
        return 0
    from nabra.model import load
    from nabra.testing import tiny_model_dir

    print(f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    peak = matmul_peak()
    print(f"bf16 matmul peak: {peak:.0f} TFLOP/s")
    record("gpu", "bf16 matmul peak (8192^3)", peak, "TFLOP/s")
    with tempfile.TemporaryDirectory() as tmp:
        bundle = load(tiny_model_dir(Path(tmp) / "tok"))
        bench_collation(bundle, args)
        bench_step(bundle, args, peak)
        bench_recipe(Path(tmp) / "recipe", args.recipe_steps)
        bench_recipe(Path(tmp) / "recipe", args.recipe_steps, packing=True)
    return 0


def dry_run(args) -> int:
    """The step and collation code on the CPU at tiny sizes: no figure is a GPU's."""
    from nabra.model import load
    from nabra.testing import tiny_model_dir

    args.batch, args.seconds, args.tokens, args.steps, args.mixed = 2, 2.0, 160, 1, [6.0, 2.0, 1.0]
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        bundle = load(tiny_model_dir(Path(tmp) / "tok"))
        bench_collation(bundle, args)
        bench_step(bundle, args, matmul_peak("cpu", n=256, repeats=3), device="cpu", sizes=DRY_RUN)
    print("dry run done: the GPU path's code ran on the CPU at tiny sizes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
