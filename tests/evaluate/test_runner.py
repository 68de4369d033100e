import json
import math
from pathlib import Path

import pytest

from nabra.cli import main
from nabra.config import RunConfig, dump_config
from nabra.corpus.manifest import Utterance, read_manifest
from nabra.errors import NabraError
from nabra.evaluate import runner
from nabra.evaluate.metrics import composite_score, compute_metrics, repetition_loop
from nabra.evaluate.runner import (
    answer_budget,
    evaluate,
    generate_predictions,
    load_for_eval,
    plan_batches,
    read_predictions,
)
from nabra.model import load
from nabra.model.collate import Collator
from nabra.model.loader import AudioStore
from nabra.model.lora import apply_lora, save_adapter
from nabra.tasks import iter_examples, make_example, parse_output


def _examples(durations, task="asr"):
    return [make_example(Utterance(f"u{i}", audio="/x.wav", duration=d, transcript="نص", dialect="EGY"), task)
            for i, d in enumerate(durations)]


def test_plan_batches_one_task_per_batch_longest_first():
    examples = _examples([1.0, 5.0, 3.0]) + _examples([2.0, 4.0], "did")
    batches = plan_batches(examples, batch_size=2)
    assert sorted(i for b in batches for i in b) == list(range(5))
    assert all(len({examples[i].task for i in b}) == 1 for b in batches)
    assert batches == [[1, 2], [0], [4, 3]]
    assert plan_batches(examples, 2, sort_by_length=False) == [[0, 1], [2], [3, 4]]


def test_plan_batches_by_tokens_keep_a_long_clip_apart():
    # A 300-s clip (7,500 audio tokens + its answer budget) beside 32 clips of 2 s: with a token cap the
    # long one goes alone and the short ones share batches; without, it takes 15 of them with it.
    examples = _examples([300.0] + [2.0] * 32)
    assert [len(b) for b in plan_batches(examples, 16)] == [16, 16, 1]
    batches = plan_batches(examples, 16, max_tokens=12_000)
    assert batches[0] == [0] and [len(b) for b in batches[1:]] == [16, 16]
    tight = plan_batches(examples, 16, max_tokens=600)
    assert tight[0] == [0] and all(len(b) < 16 for b in tight[1:]) and sorted(sum(tight, [])) == list(range(33))


def test_answer_budgets():
    asr_short, asr_long, episode = _examples([1.0, 60.0, 1200.0])
    # A 60-s clip or a 20-minute MGB-2 episode gets what its duration calls for: no fixed 448 cap.
    assert answer_budget(asr_short) == 32 and answer_budget(asr_long) == 616 and answer_budget(episode) == 12016
    assert answer_budget(asr_short, reference_tokens=100) == 166  # a long reference raises it (x1.5 + 16)
    assert answer_budget(_examples([1.0], "did")[0]) == 16
    ssum = make_example(Utterance("s", audio="/x.wav", duration=300.0, summary="ملخص"), "ssum")
    assert answer_budget(ssum) == 1232  # not the old fixed 128 for a 5-minute talk


def test_answers_cut_at_the_budget_are_counted(tiny_dir, corpus):
    bundle = load(tiny_dir)
    examples = list(iter_examples(read_manifest(corpus), tasks=("asr",)))[:4]
    store = AudioStore(16, 2)
    preds = generate_predictions(bundle.model, bundle, Collator(bundle.tokenizer, bundle.feature_extractor),
                                 examples, store, batch_size=4, max_new_tokens=2, progress=False)
    store.close()
    assert all(p.truncated for p in preds)  # an untrained model never ends within 2 tokens
    assert compute_metrics(preds)["asr"]["truncated"] == 4


def test_looping_answers_end_there_and_are_flagged(tiny_dir, corpus):
    bundle = load(tiny_dir)
    examples = list(iter_examples(read_manifest(corpus), tasks=("asr",)))[:4]
    collator = Collator(bundle.tokenizer, bundle.feature_extractor)
    store = AudioStore(16, 2)
    # An untrained model: one answer repeats "ي\tKhate" from its start, the others babble on.
    kept, stopped = (generate_predictions(bundle.model, bundle, collator, examples, store, batch_size=4,
                                          max_new_tokens=64, progress=False, stop_loops=stop)
                     for stop in (False, True))
    store.close()
    loop = [i for i, p in enumerate(kept) if p.looped]
    assert loop and all(p.truncated for p in kept)  # run to the budget, looping or not
    for i, (k, s) in enumerate(zip(kept, stopped, strict=True)):
        if i in loop:  # ended once it looped: a prefix of the full answer, not counted as cut
            assert s.looped and not s.truncated and k.prediction.startswith(s.prediction)
            assert len(s.prediction) < len(k.prediction)
        else:  # an answer that never loops is untouched
            assert (s.prediction, s.truncated) == (k.prediction, k.truncated)
    assert [p.looped for p in stopped] == [repetition_loop(p.prediction) for p in stopped]
    assert compute_metrics(stopped)["asr"]["looped"] == len(loop)


def test_generate_predictions_in_input_order(tiny_dir, corpus):
    bundle = load(tiny_dir)
    utts = read_manifest(corpus)
    examples = list(iter_examples(utts, tasks=("asr", "did", "ser", "tsum")))[::-1][:12]
    store = AudioStore()
    bundle.model.train()  # as in a dev evaluation during training: given back in training mode
    preds = generate_predictions(bundle.model, bundle, Collator(bundle.tokenizer, bundle.feature_extractor), examples,
                                 store, batch_size=4, max_new_tokens=4, progress=False,
                                 dialect_of={u.id: u.dialect for u in utts})
    store.close()
    assert bundle.model.training
    assert [p.id for p in preds] == [ex.id for ex in examples]
    for p, ex in zip(preds, examples, strict=True):
        assert p.parsed == parse_output(ex.task, p.prediction) and p.reference == ex.target
        assert p.label == ex.label and p.dialect and p.prompt == ex.instruction


def _run_folder(tmp_path, tiny_dir, corpus, base=None, weights=None):
    run = tmp_path / "run"
    cfg = RunConfig(output_dir=str(run))
    cfg.train.composite_weights = weights or {}
    cfg.model.path, cfg.data.manifest, cfg.data.tasks = str(tiny_dir), str(corpus), ["asr", "ssum", "tsum", "did", "ser"]
    (run / "final").mkdir(parents=True)
    (run / "config.yaml").write_text(dump_config(cfg))
    save_adapter(apply_lora(load(tiny_dir).model), run / "final")
    (run / "final" / "nabra_run.json").write_text(json.dumps({"base_model": base or str(tiny_dir), "finetune": "lora"}))
    return run


def test_evaluate_run_folder_with_adapter(tmp_path, tiny_dir, corpus):
    run = _run_folder(tmp_path, tiny_dir, corpus)
    messages = []
    result = evaluate(run, corpus, batch_size=4, max_new_tokens=4, progress=False, log=messages.append)
    out = run / "eval-test"
    preds = read_predictions(out / "predictions.jsonl")
    assert len(preds) == 9  # 3 test utterances x asr, did, ser
    saved = json.loads((out / "metrics.json").read_text())
    assert set(saved["metrics"]) == {"asr", "did", "ser"} and saved["split"] == "test"
    assert math.isfinite(saved["composite"]) and saved["composite"] == pytest.approx(result["composite"])
    # The test split has no summaries: said so, not an error.
    assert [s.split(":")[0] for s in saved["skipped"]] == ["ssum", "tsum"] and len(messages) == 2
    assert set(saved["metrics"]["asr"]["by_dialect"]) == {"EGY", "LAV", "NOR"}
    assert saved["metrics"]["did"]["confusion"]["columns"][-1] == "unparsed"


def test_a_manifest_mixing_arabic_and_english_gets_wer_per_language(tmp_path, tiny_dir, corpus):
    from nabra.corpus.manifest import write_manifest
    from nabra.tasks import SPEECH_TEMPLATES
    from nabra.testing import write_clip

    utts = list(read_manifest(corpus))
    english = [Utterance(f"en{i}", audio=str(write_clip(tmp_path / f"en{i}.flac", 1.0)), duration=1.0, language="en",
                         transcript=text, split="test", source="librispeech")
               for i, text in enumerate(("HELLO WORLD", "GO DO YOU HEAR"))]
    mixed = tmp_path / "mixed.jsonl"
    write_manifest(mixed, utts + english)
    run = _run_folder(tmp_path, tiny_dir, mixed)
    result = evaluate(run, mixed, batch_size=4, max_new_tokens=4, progress=False, log=lambda *_: None)
    by_language = result["metrics"]["asr"]["by_language"]
    assert set(by_language) == {"ar", "en"} and by_language["en"]["n"] == 2 and by_language["ar"]["n"] == 3
    preds = {p.id: p for p in read_predictions(run / "eval-test" / "predictions.jsonl")}
    assert preds["en0#asr"].language == "en" and preds["en0#asr"].prompt in SPEECH_TEMPLATES["en"]["asr"]
    # Every audio example keeps its clip's seconds; all are sentences here, so no length breakdown
    assert preds["en0#asr"].duration == 1.0 and "by_duration" not in result["metrics"]["asr"]


def test_long_clips_get_their_own_cer(tmp_path, tiny_dir, corpus):
    from nabra.corpus.manifest import write_manifest
    from nabra.testing import write_clip

    utts = list(read_manifest(corpus))
    long = Utterance("long0", audio=str(write_clip(tmp_path / "long0.flac", 12.0)), duration=12.0, language="ar",
                     transcript="قال الوزير اليوم ان المشروع جديد", split="test", source="synth")
    manifest = tmp_path / "with-long.jsonl"
    write_manifest(manifest, [*utts, long])
    run = _run_folder(tmp_path, tiny_dir, manifest)
    result = evaluate(run, manifest, tasks=["asr"], batch_size=4, max_new_tokens=4, progress=False, log=lambda *_: None)
    by_duration = result["metrics"]["asr"]["by_duration"]
    n_short = sum(u.split == "test" and u.transcript is not None for u in utts)
    assert list(by_duration) == ["< 10 s", "10-30 s"]
    assert (by_duration["10-30 s"]["n"], by_duration["10-30 s"]["seconds"]) == (1, 12.0)
    assert by_duration["< 10 s"]["n"] == n_short


def test_evaluate_uses_the_runs_composite_weights(tmp_path, tiny_dir, corpus, monkeypatch):
    # best/ is chosen under train.composite_weights: the final evaluation must score the same way.
    run = _run_folder(tmp_path, tiny_dir, corpus, weights={"asr": 0.0, "ser": 0.0})
    fixed = {"asr": {"wer": 0.5}, "did": {"macro_f1": 0.8}, "ser": {"macro_f1": 0.2}}
    monkeypatch.setattr(runner, "compute_metrics", lambda *a, **k: fixed)
    result = evaluate(run, corpus, batch_size=4, max_new_tokens=2, progress=False, log=lambda *_: None)
    assert result["composite"] == pytest.approx(0.8)  # did alone; equal weights would give 0.5
    assert composite_score(fixed) == pytest.approx(0.5)


def test_load_for_eval_errors(tmp_path, tiny_dir, corpus):
    (tmp_path / "empty").mkdir()
    with pytest.raises(NabraError, match="neither a checkpoint folder"):
        load_for_eval(tmp_path / "empty")
    run = _run_folder(tmp_path, tiny_dir, corpus, base=str(tmp_path / "gone"))
    cfg = RunConfig()
    cfg.model.path = str(tmp_path / "also-gone")
    (run / "config.yaml").write_text(dump_config(cfg))
    adapter_cfg = json.loads((run / "final" / "adapter_config.json").read_text())
    (run / "final" / "adapter_config.json").write_text(json.dumps({**adapter_cfg, "base_model_name_or_path": None}))
    with pytest.raises(NabraError, match="base model folder is not found.*pass --base"):
        load_for_eval(run)
    model, bundle = load_for_eval(run, base=str(tiny_dir))
    assert bundle.model is model and not hasattr(model, "peft_config")  # merged into a plain thinker
    (run / "final").rename(run / "elsewhere")
    with pytest.raises(NabraError, match="without final/"):
        load_for_eval(run)


def test_evaluate_cli(tmp_path, tiny_dir, corpus, capsys):
    out = tmp_path / "ev"
    argv = ["evaluate", str(tiny_dir), "--manifest", str(corpus), "--tasks", "asr,did", "--out", str(out),
            "--batch-size", "8", "--max-new-tokens", "3", "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "wer" in printed and "macro_f1" in printed and (out / "metrics.json").is_file()
    assert main([*argv[:4], "--tasks", "asr,xyz", "--out", str(out)]) == 2
    assert "unknown task(s) xyz" in capsys.readouterr().err


def test_unreadable_audio_counts_as_wrong_and_is_named(tmp_path, tiny_dir, corpus):
    import shutil

    copy = tmp_path / "corpus"
    shutil.copytree(corpus.parent, copy)
    test_utts = [u for u in read_manifest(copy / corpus.name) if u.split == "test"]
    (copy / test_utts[0].audio).write_bytes(b"not audio")
    run = _run_folder(tmp_path, tiny_dir, copy / corpus.name)
    result = evaluate(run, copy / corpus.name, batch_size=4, max_new_tokens=2, progress=False, log=lambda *_: None)
    (line,) = result["unreadable_audio"]
    assert f"{corpus.name}:" in line and f"(id {test_utts[0].id})" in line and "not a readable audio file" in line
    preds = read_predictions(Path(result["out_dir"]) / "predictions.jsonl")
    assert {p.prediction for p in preds if p.id.startswith(test_utts[0].id + "#")} == {""}


def test_loop_stop_looks_at_the_answer_tail_and_keeps_rows_stopped():
    import torch

    from nabra.evaluate.runner import LOOP_TAIL_TOKENS, LoopStop

    class Chars:  # a tokenizer whose token i is the character chr(i)
        def batch_decode(self, rows, skip_special_tokens=True):
            return ["".join(map(chr, r.tolist())) for r in rows]

    prompt = torch.full((2, 5), ord("p"))
    speech = torch.randint(0x621, 0x64A, (2 * LOOP_TAIL_TOKENS,), generator=torch.Generator().manual_seed(0))
    loop = torch.tensor([ord(c) for c in "ال " * 8])
    rows = torch.stack([torch.cat([speech, loop]), torch.cat([speech, speech[: len(loop)]])])
    ids = torch.cat([prompt, rows], 1)[:, : 5 + (2 * LOOP_TAIL_TOKENS + len(loop)) // 8 * 8]
    stop = LoopStop(Chars(), prompt_length=5)
    assert stop(ids, None).tolist() == [True, False]  # found past 1,280 tokens of speech
    assert stop(ids[:, :-8], None).tolist() == [True, False]  # a stopped row stays stopped


def test_evaluate_by_a_field_breaks_every_task_down_and_adds_back_up(tmp_path, tiny_dir, corpus, capsys):
    # --by speaker (a schema field), dialect, and l1 (an extra field only some utterances have: L2-ARCTIC's view)
    copy = tmp_path / "by.jsonl"
    lines = [json.loads(x) for x in corpus.read_text(encoding="utf-8").splitlines()]
    for i, u in enumerate(lines):
        u["audio"] = str((corpus.parent / u["audio"]).resolve()) if u.get("audio") else u.get("audio")
        u["speaker"] = f"spk{i % 2}"
        if i % 2:
            u["l1"] = "hindi" if i % 4 == 1 else "arabic"
    copy.write_text("".join(json.dumps(u, ensure_ascii=False) + "\n" for u in lines), encoding="utf-8")
    out = tmp_path / "ev"
    base = ["evaluate", str(tiny_dir), "--manifest", str(copy), "--split", "train", "--tasks", "asr,did",
            "--out", str(out), "--batch-size", "8", "--max-new-tokens", "3", "--quiet"]
    assert main([*base, "--by", "speaker", "--by", "l1"]) == 0
    printed = capsys.readouterr().out
    assert "by speaker" in printed and "by l1" in printed
    result = json.loads((out / "metrics.json").read_text())
    whole = result["metrics"]
    for name in ("speaker", "l1"):
        groups = result["by"][name]
        assert len(groups) >= 2
        for task in ("asr", "did"):
            assert sum(g[task]["n"] for g in groups.values() if task in g) == whole[task]["n"]
        for key in ("ref_words", "substitutions", "deletions", "insertions"):  # the errors add back up
            assert sum(g["asr"][key] for g in groups.values() if "asr" in g) == whole["asr"][key]
    assert "(none)" in result["by"]["l1"] and {"hindi", "arabic"} <= set(result["by"]["l1"])
    # a field no utterance has is refused before any generation
    assert main([*base, "--by", "gender"]) == 2
    assert "--by gender: no train utterance" in capsys.readouterr().err


def test_conditions_give_every_run_the_same_corrupted_audio(tmp_path, tiny_dir, corpus, monkeypatch, capsys):
    # Two different models (the base and a run's adapter) scored clean, in babble at 0 dB and in a room: each
    # condition's clips are the same, bit for bit, for both; each is its own folder with its own metrics.json.
    import hashlib

    import numpy as np

    from nabra.corpus.augment import power

    heard: dict[str, dict[str, tuple]] = {}
    real = runner.generate_batch

    def spy(model, tokenizer, collator, samples, *a, **k):
        for ex, wave in samples:
            key = hashlib.sha256(wave.tobytes()).hexdigest() if wave is not None else None
            heard.setdefault(spy.condition, {})[ex.id] = (key, wave)
        return real(model, tokenizer, collator, samples, *a, **k)

    monkeypatch.setattr(runner, "generate_batch", spy)
    log_lines = []

    def log(line):
        log_lines.append(line)
        if line.startswith("condition "):
            spy.condition = f"{spy.model}|{line.removeprefix('condition ')}"

    run = _run_folder(tmp_path, tiny_dir, corpus)
    specs = ["clean", "noise:snr=0,source=babble", "reverb"]
    for name, model in (("base", tiny_dir), ("run", run)):
        spy.model = name
        result = evaluate(model, corpus, split="train", tasks=["asr", "did"], out_dir=tmp_path / f"ev-{name}",
                          batch_size=4, max_new_tokens=2, progress=False, log=log, conditions=specs)
        assert list(result["conditions"]) == ["clean", "noise:snr=0,source=babble", "reverb:rt60=0.6"]
    for cond in ("clean", "noise:snr=0,source=babble", "reverb:rt60=0.6"):
        a, b = heard[f"base|{cond}"], heard[f"run|{cond}"]
        assert {k: v[0] for k, v in a.items()} == {k: v[0] for k, v in b.items()}
    clean, noisy = heard["base|clean"], heard["base|noise:snr=0,source=babble"]
    assert all(clean[k][0] != noisy[k][0] for k in clean)
    for k, (_, wave) in clean.items():  # the babble is at the SNR asked: 0 dB within 0.1 dB
        noise = noisy[k][1].astype(np.float64) - wave
        assert abs(10 * np.log10(power(wave) / power(noise))) < 0.1
    # an utterance's tasks hear the same clip
    ids = sorted(noisy)
    for asr_id in (i for i in ids if i.endswith("#asr")):
        did = asr_id.replace("#asr", "#did")
        if did in noisy:
            assert noisy[did][0] == noisy[asr_id][0]
    out = tmp_path / "ev-run"
    assert json.loads((out / "metrics.json").read_text())["condition"]["name"] == "clean"
    saved = json.loads((out / "noise-snr_0-babble" / "metrics.json").read_text())
    assert saved["condition"] == {"name": "noise:snr=0,source=babble", "kind": "noise", "snr": 0.0, "source": "babble"}
    assert (out / "reverb-rt60_0.6" / "predictions.jsonl").is_file()
    # the CLI prints the per-condition table; unknown kinds and keys are refused before any work
    assert main(["evaluate", str(tiny_dir), "--manifest", str(corpus), "--split", "train", "--tasks", "did",
                 "--out", str(tmp_path / "cli"), "--max-new-tokens", "2", "--quiet",
                 "--condition", "clean", "--condition", "noise:snr=20,source=pink"]) == 0
    printed = capsys.readouterr().out
    assert "by condition" in printed and "noise:snr=20,source=pink" in printed
    for bad, says in (("noise:db=3", "noise takes snr, source"), ("wind", "unknown kind 'wind'"),
                      ("noise:snr=x", "snr must be a number"), ("noise:source=/no/such", "neither")):
        assert main(["evaluate", str(tiny_dir), "--manifest", str(corpus), "--condition", bad]) == 2
        assert says in capsys.readouterr().err


def test_the_babble_pool_passes_over_what_does_not_decode_and_reads_at_most_30_s(tmp_path):
    import numpy as np
    import soundfile as sf

    from nabra.corpus.augment import Condition

    utts = []
    for i, seconds in enumerate((1.0, 45.0, 2.0)):
        sf.write(tmp_path / f"c{i}.wav", 0.1 * np.random.default_rng(i).standard_normal(int(16000 * seconds)), 16000)
        utts.append(Utterance(f"u{i}", audio=str(tmp_path / f"c{i}.wav"), duration=seconds, speaker=f"s{i}"))
    (tmp_path / "bad.wav").write_bytes(b"not audio")
    utts.append(Utterance("u3", audio=str(tmp_path / "bad.wav"), duration=1.0, speaker="s3"))
    pool = runner.babble_pool(Condition.parse("noise:source=babble"), utts, 16000)
    assert sorted(uid for uid, _, _ in pool) == ["u0", "u1", "u2"]
    assert max(w.size for _, _, w in pool) == 16000 * runner.BABBLE_SECONDS
    again = runner.babble_pool(Condition.parse("noise:source=babble"), list(reversed(utts)), 16000)
    assert [uid for uid, _, _ in again] == [uid for uid, _, _ in pool]  # the manifest's order does not matter
