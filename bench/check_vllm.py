"""Every export kind against the real vLLM: loads, answers, and answers as Nabra does (``make check-vllm``).

Builds (once, under ``--work``) a synthetic corpus, a tiny Qwen2.5-Omni thinker (head size 32: vLLM's CPU
attention takes 32, 64, 80 … not the test suite's 16), a tiny release built from it, and two LoRA runs — one
that also trains the aligner (``modules_to_save``), one with LoRA matrices only — then exports:

- ``merged`` from the thinker-only base (the release layout without a talker),
- ``merged`` onto the release base (its talker and token2wav copied beside the thinker),
- ``vllm-lora`` (LoRA matrices under the release's names; the base written beside it in the release layout),
- ``vllm-lora`` of the aligner run (refused: the reason is the row),
- ``peft`` served as a vLLM LoRA (the trainable class's module names: loads, and changes nothing — the
  silent failure the vllm-lora kind exists for),

serves each with vLLM's OpenAI server on 127.0.0.1 (``.venv-vllm``: bench/vllm/setup.sh), sends the same clips
(two short, one long) for ``asr`` and ``did``, and compares with Nabra's own answers from the run (bfloat16,
the prompt ``nabra analyze`` sends): greedy text equal, the first answer token's log-probabilities (vLLM's top
5) within 0.05, the label probabilities of ``nabra serve --engine vllm``'s scorer within 0.05 of Nabra's, and
the same answer when the client sends no system message (the chat template's default). Writes the table to
``--out`` (markdown and JSON) and exits 1 when a kind that should pass does not.

    python bench/check_vllm.py [--work build/check-vllm] [--vllm-python .venv-vllm/bin/python] [--out bench/vllm]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import replace
from pathlib import Path

import yaml

from nabra.config import load_config
from nabra.corpus.audio import load_audio
from nabra.corpus.manifest import Utterance, read_manifest
from nabra.corpus.synth import SynthConfig, synthesize
from nabra.errors import NabraError
from nabra.evaluate.runner import answer_budget, generate_batch, load_for_eval
from nabra.model.collate import Collator
from nabra.model.tiny import TinyConfig, init_tiny
from nabra.run.folder import config_of
from nabra.tasks import prompt_example
from nabra.testing import write_release_checkpoint
from nabra.train import train
from nabra.use.analyze import label_probabilities_cached
from nabra.use.export import export
from nabra.use.vllm_engine import VllmAnalyzer, VllmClient, VllmProcess, wav_base64

TOLERANCE = 0.05
TASKS = ("asr", "did")


def build(work: Path, steps: int) -> dict[str, Path]:
    """Corpus, tiny thinker, tiny release, two runs (built once; reused when there)."""
    corpus = work / "corpus" / "manifest.jsonl"
    if not corpus.is_file():
        synthesize(corpus.parent, SynthConfig(utterances=60, seed=0, workers=2, long_fraction=0.05), progress=False)
    tiny = work / "tiny"
    if not (tiny / "config.json").is_file():
        init_tiny(tiny, corpus, TinyConfig(vocab_size=512), force=True)
    release = work / "release"
    if not (release / "config.json").is_file():
        write_release_checkpoint(tiny, release)
    runs = {}
    for name, lora in (("aligner", {"r": 4, "alpha": 8, "train_aligner": True}), ("lora", {"r": 4, "alpha": 8})):
        run = work / f"run-{name}"
        if not (run / "final" / "nabra_run.json").is_file():
            cfg = {"output_dir": str(run), "data": {"manifest": str(corpus), "dev_per_task": 2},
                   "model": {"path": str(tiny), "finetune": "lora", "lora": lora}, "schedule": {"name": "uniform"},
                   "train": {"max_steps": steps, "batch_size": 8, "lr": 5e-2, "warmup_steps": 1, "save_every": 0,
                             "eval_every": 0, "seed": 0}}
            (work / f"run-{name}.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True))
            train(load_config(work / f"run-{name}.yaml"), progress=False, log=lambda *_: None)
        runs[name] = run
    return {"corpus": corpus, "tiny": tiny, "release": release, **runs}


def clips(corpus: Path, n_short: int = 2) -> list[Utterance]:
    """Two short clips of the test split and the longest clip of the corpus (tens of seconds: the audio
    encoder's chunked path)."""
    utts = [u for u in read_manifest(corpus) if u.audio]
    short = sorted((u for u in utts if u.split == "test"), key=lambda u: u.duration)[:n_short]
    return [*short, max(utts, key=lambda u: u.duration)]


class Reference:
    """Nabra's own answers from the run, in bfloat16, with ``nabra analyze``'s prompt."""

    def __init__(self, run: Path):
        import torch

        self.torch = torch
        cfg = config_of(run)
        self.model, self.bundle = load_for_eval(run, dtype="bfloat16", device="cpu")
        self.collator = Collator.for_bundle(self.bundle, replace(cfg.collate, max_length=8192))
        self.task_set = cfg.task_set()

    def answer(self, utt: Utterance, task: str) -> tuple[str, dict[int, float]]:
        """(greedy text, first-token log-probabilities by token id)."""
        torch = self.torch
        ex = prompt_example(utt, task, language="ar", task_set=self.task_set)
        batch = self.collator([(ex, load_audio(utt.audio))], for_generation=True)
        inputs = {k: v for k, v in batch.items() if isinstance(v, torch.Tensor) and k != "labels"}
        inputs["input_features"] = inputs["input_features"].to(torch.bfloat16)
        with torch.no_grad():
            first = torch.log_softmax(self.model(**inputs).logits[0, -1].float(), -1)
        # Plain greedy to the budget (no loop stop: vLLM has none), as vLLM decodes.
        text = generate_batch(self.model, self.bundle.tokenizer, self.collator, [(ex, load_audio(utt.audio))],
                              answer_budget(ex), stop_loops=False)[0][0].strip()
        return text, dict(enumerate(first.tolist()))

    def label_probs(self, utt: Utterance, task: str) -> dict[str, float]:
        from nabra.model.loader import AudioStore

        ex = prompt_example(utt, task, language="ar", task_set=self.task_set)
        store = AudioStore(64, 1)
        try:
            return label_probabilities_cached(self.model, self.bundle, self.collator, store, [ex],
                                              self.task_set.labels(task).names, progress=False)[0]
        finally:
            store.close()


def compare(kind: str, export_dir: Path, reference: Reference, utts: list[Utterance], python: str, work: Path,
            model: str = "nabra") -> dict:
    row = {"kind": kind, "loads": False, "answers": False, "greedy_equal": "0/0", "max_logprob_diff": None,
           "max_label_prob_diff": None, "default_system_prompt": None, "note": ""}
    try:
        with VllmProcess(export_dir, python=python, log_path=work / f"vllm-{kind}.log", max_model_len=8192) as server:
            row["loads"] = True
            row["startup_s"] = round(server.startup_seconds, 1)
            client = VllmClient(server.url, model)
            analyzer = _analyzer_over(export_dir, server.url, model)
            same = total = 0
            worst = worst_label = 0.0
            default_ok = True
            for utt in utts:
                b64 = wav_base64(utt.audio)
                for task in TASKS:
                    ref_text, ref_first = reference.answer(utt, task)
                    messages = analyzer.messages(utt, task, b64)
                    ex = prompt_example(utt, task, language="ar", task_set=reference.task_set)
                    out = client.chat(messages, max_tokens=answer_budget(ex), top_logprobs=5)
                    row["answers"] = True
                    text = (out["choices"][0]["message"]["content"] or "").strip()
                    total += 1
                    same += text == ref_text
                    if text != ref_text:
                        row["note"] = row["note"] or f"{utt.id} {task}: vLLM {text[:40]!r} vs Nabra {ref_text[:40]!r}"
                    for entry in out["choices"][0]["logprobs"]["content"][0]["top_logprobs"]:
                        token_id = int(entry["token"].removeprefix("token_id:"))
                        worst = max(worst, abs(entry["logprob"] - ref_first[token_id]))
                    bare = client.chat(messages[1:], max_tokens=answer_budget(ex))  # no system message
                    default_ok &= (bare["choices"][0]["message"]["content"] or "").strip() == text
                    if task != "asr":
                        ours, theirs = reference.label_probs(utt, task), analyzer.label_probabilities(utt, task, b64)
                        worst_label = max(worst_label, max(abs(ours[k] - theirs[k]) for k in ours))
            row.update(greedy_equal=f"{same}/{total}", max_logprob_diff=round(worst, 4),
                       max_label_prob_diff=round(worst_label, 4), default_system_prompt=default_ok,
                       matches=same == total and worst <= TOLERANCE and worst_label <= TOLERANCE and default_ok)
    except NabraError as e:
        row["note"] = str(e)[:400]
        row["matches"] = False
    return row


def _analyzer_over(export_dir: Path, url: str, model: str) -> VllmAnalyzer:
    analyzer = VllmAnalyzer(export_dir, url=url)
    analyzer.client.model = model
    return analyzer


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, default=Path("build/check-vllm"))
    p.add_argument("--vllm-python", default=".venv-vllm/bin/python")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--out", type=Path, default=Path("bench/vllm"))
    p.add_argument("--only", help="comma-separated kinds to run (default: all)")
    args = p.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    python = str(Path(args.vllm_python).absolute())  # not resolve(): a venv python is a symlink
    t0 = time.perf_counter()
    built = build(work, args.steps)
    utts = clips(built["corpus"])
    print(f"clips: {', '.join(f'{u.id} ({u.duration:.1f} s)' for u in utts)}", flush=True)
    exports = {
        "merged (thinker-only base)": dict(run=built["aligner"], merge=True),
        "merged (release base)": dict(run=built["aligner"], merge=True, base=str(built["release"])),
        "vllm-lora": dict(run=built["lora"], fmt="vllm-lora"),
        "vllm-lora (aligner trained)": dict(run=built["aligner"], fmt="vllm-lora"),
        "peft served as vLLM LoRA": dict(run=built["lora"], fmt="peft"),
    }
    only = set(args.only.split(",")) if args.only else None
    rows = []
    refs: dict[Path, Reference] = {}
    for kind, spec in exports.items():
        if only and kind not in only:
            continue
        out = work / "exports" / re.sub(r"[^a-z0-9]+", "-", kind.lower()).strip("-")
        run = spec.pop("run")
        try:
            export(run, out, force=True, log=lambda *_: None, **spec)
        except NabraError as e:
            rows.append({"kind": kind, "loads": None, "answers": None, "greedy_equal": "-", "max_logprob_diff": None,
                         "max_label_prob_diff": None, "default_system_prompt": None, "note": f"refused: {e}",
                         "matches": None, "expected": "refused"})
            print(f"{kind}: refused ({str(e)[:120]}…)", flush=True)
            continue
        ref = refs.setdefault(run, Reference(run))
        if spec.get("fmt") == "peft":  # the adapter as PEFT saved it, under a release base, as a vLLM LoRA
            row = _peft_as_vllm_lora(out, built, ref, utts, python, work)
        else:
            row = compare(kind, out, ref, utts, python, work)
        row.setdefault("expected", "match")
        rows.append(row)
        print(json.dumps(row, ensure_ascii=False), flush=True)
    table = render(rows, time.perf_counter() - t0)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "check-vllm.md").write_text(table)
    (args.out / "check-vllm.json").write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
    print(table)
    bad = [r["kind"] for r in rows if r["expected"] == "match" and not r.get("matches")]
    bad += [r["kind"] for r in rows if r["expected"] == "no effect" and r["greedy_equal"] == f"{2 * len(utts)}/{2 * len(utts)}"]
    if bad:
        print(f"check-vllm: FAILED for {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


def _peft_as_vllm_lora(peft_dir: Path, built, ref, utts, python, work) -> dict:
    """The plain PEFT adapter given to vLLM's LoRA on the release base: it loads, and must change nothing
    (its module names are not the release's) — shown by answering as the base does, not as the run."""
    import shutil
    import tempfile

    from nabra.files import read_json

    # a fresh folder each time: nothing is removed, not even a copy of our own
    fake = Path(tempfile.mkdtemp(prefix="peft-as-lora-", dir=work / "exports"))
    for name in ("adapter_config.json", "adapter_model.safetensors", "nabra_export.json"):
        shutil.copy(peft_dir / name, fake / name)
    info = read_json(fake / "nabra_export.json")
    (fake / "nabra_export.json").write_text(json.dumps({**info, "format": "vllm-lora",
                                                        "base_model": str(built["release"])}))
    row = compare("peft served as vLLM LoRA", fake, ref, utts, python, work)
    row["expected"] = "no effect"
    row["matches"] = None
    row["note"] = ("the trainable class's module names (model.language_model.layers.N): vLLM loads the adapter and "
                   "applies none of it — " + (row["note"] or "yet it matched?"))
    return row


def render(rows: list[dict], seconds: float) -> str:
    lines = ["| export kind | loads | answers | greedy = Nabra | max Δ first-token logprob | max Δ label prob | "
             "default system prompt | result |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        verdict = ("refused with the reason" if r["expected"] == "refused" else
                   "no effect: the silent failure vllm-lora avoids" if r["expected"] == "no effect" else
                   "matches" if r.get("matches") else "DIFFERS")
        cells = [r["kind"], _yn(r["loads"]), _yn(r["answers"]), r["greedy_equal"], _num(r["max_logprob_diff"]),
                 _num(r["max_label_prob_diff"]), _yn(r["default_system_prompt"]), verdict]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"- {r['kind']}: {r['note']}" for r in rows if r.get("note")]
    return ("\n".join([*lines, "", *notes, "", f"({seconds / 60:.1f} min; vLLM CPU build, bfloat16; tolerance "
                       f"{TOLERANCE}; tasks {', '.join(TASKS)})"]) + "\n")


def _yn(v) -> str:
    return "-" if v is None else "yes" if v else "no"


def _num(v) -> str:
    return "-" if v is None else f"{v:.4f}"


if __name__ == "__main__":
    sys.exit(main())
