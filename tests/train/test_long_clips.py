"""The shipped GPU recipes keep every clip up to the model's audio window (set-up only: the recipe's
collation and budget with the tiny model of the same family, whose feature extractor has the
release's 300-s window)."""

import pytest

from nabra import data as run_data
from nabra.config import load_config
from nabra.corpus.manifest import Utterance, write_manifest
from nabra.model import load
from nabra.model.collate import Collator
from nabra.testing import write_clip

RECIPES = ("omni7b-lora-ads", "omni7b-lora-tpc", "omni7b-lora-tpc_ads", "omni7b-lora-uniform", "bilingual-accent",
           "omni30b-a3b-lora-ads", "composed-lora-tpc")


@pytest.fixture(scope="module")
def long_manifest(tmp_path_factory):
    folder = tmp_path_factory.mktemp("long")
    utts = [Utterance(id=f"art{k}", audio=str(write_clip(folder / f"art{k}.wav", s)), duration=s, language="ar",
                      transcript="نص " * 40, summary="ملخص المقال", split="train")
            for k, s in enumerate((299.0, 12.0))]
    path = folder / "manifest.jsonl"
    write_manifest(path, utts)
    return path


def _prepare(cfg, bundle, log):
    collator = Collator.for_bundle(bundle, cfg.collate)
    utts = run_data.read_valid(cfg.data.manifest, cfg, None, log)
    return collator, run_data.prepare(cfg, collator, run_data.Manifests(utts, utts, {}), log)


@pytest.mark.parametrize("recipe", RECIPES)
def test_a_299_s_clip_is_kept_by_the_shipped_recipe(recipe, long_manifest, tiny_dir):
    bundle = load(tiny_dir)  # Qwen2.5-Omni's collation: 25 audio tokens a second, a 300-s window
    cfg = load_config(recipe, [f"data.manifest={long_manifest}", "data.tasks=[asr,ssum]", "tasks={}"]
                      if recipe == "bilingual-accent" else [f"data.manifest={long_manifest}", "data.tasks=[asr,ssum]"])
    said = []
    collator, data = _prepare(cfg, bundle, said.append)
    assert cfg.collate.max_length == "window"
    assert {ex.utt_id for ex in data.train} == {"art0", "art1"}, said  # the 299-s article trains, for ASR and SSUM
    assert not any(line.startswith("skipping") for line in said)
    assert collator.max_length >= collator.audio_tokens(300.0) > 7_400
    assert any("collate.max_length window" in line for line in said)
    # The budget holds the longest example (training refuses a budget below it).
    assert cfg.train.micro_batch_tokens >= max(data.lengths)


def test_the_old_fixed_length_dropped_it(long_manifest, tiny_dir):
    cfg = load_config("omni7b-lora-ads", [f"data.manifest={long_manifest}", "data.tasks=[asr,ssum]",
                                          "collate.max_length=4096"])
    said = []
    _, data = _prepare(cfg, load(tiny_dir), said.append)
    assert {ex.utt_id for ex in data.train} == {"art1"}
    assert any(line.startswith("skipping art0#asr") for line in said)


def test_the_shipped_7b_recipe_trains_packed_on_the_tiny_model(tiny, synth_corpus, tmp_path):
    # The recipe's own batching (max_length window, micro_batch_tokens, packing, gradient checkpointing,
    # ADS) with only the model, data, precision and length of the run swapped for a CPU test.
    import json

    from nabra.train import train

    cfg = load_config("omni7b-lora-ads", [
        f"model.path={tiny}", "model.dtype=float32", "train.precision=fp32", f"data.manifest={synth_corpus}",
        f"output_dir={tmp_path / 'run'}", "train.max_steps=2", "train.batch_size=8", "train.eval_every=0",
        "train.save_every=0", "train.warmup_steps=1", "schedule.ads.refresh_every=10", "data.dev_per_task=2",
        "model.lora.r=4", "model.lora.alpha=8"])
    assert cfg.collate.packing and cfg.train.micro_batch_tokens and cfg.model.gradient_checkpointing
    run = train(cfg, progress=False, log=lambda *_: None)
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if '"loss"' in x]
    assert [r["step"] for r in records] == [1, 2] and all(r["loss"] > 0 and r["grad_norm"] > 0 for r in records)
    assert all(r["micro_batches"] == 1 for r in records)  # eight short clips: one packed row


def test_a_recipe_task_the_manifest_cannot_feed_is_warned_of(long_manifest, tiny_dir):
    # omni7b-lora-ads trains five tasks; this manifest has transcripts and summaries, no dialect or emotion.
    cfg = load_config("omni7b-lora-ads", [f"data.manifest={long_manifest}"])
    said = []
    _prepare(cfg, load(tiny_dir), said.append)
    warnings = [s for s in said if s.startswith("warning: no training example")]
    assert len(warnings) == 1 and "task(s) did, ser in" in warnings[0] and str(long_manifest) in warnings[0]
