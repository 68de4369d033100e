"""Exports for vLLM without vLLM: the LoRA names its loader maps, what it refuses, the prompt shipped.

What vLLM 0.32 does, read in its source (``vllm/lora/utils.py::parse_fine_tuned_lora_name``,
``vllm/model_executor/models/qwen2_5_omni_thinker.py``): a LoRA tensor name loses ``base_model.model.``,
then goes through the model's ``hf_to_vllm_mapper`` — ``thinker.model.`` -> ``language_model.model.`` — and
names a module; a name the mapper does not know (``model.language_model.layers.N…``, what PEFT saves on
transformers' thinker class) names no module of vLLM's, and the adapter loads and changes nothing.
``vllm/lora/peft_helper.py`` refuses ``modules_to_save`` but ``classifier``/``score``, DoRA and biases.
The end-to-end check against the real engine is ``make check-vllm`` (bench/check_vllm.py).
"""

import ast
import json
import re
import sys
import types

import pytest
from safetensors.torch import load_file

from nabra.cli import main
from nabra.config import load_config
from nabra.corpus.manifest import Utterance
from nabra.model import load
from nabra.model.families.qwen2_5_omni import QWEN2_5_OMNI
from nabra.run.folder import config_of
from nabra.tasks import prompt_example
from nabra.train import train
from nabra.use.export import chat_template, task_messages, vllm_lora_name, vllm_lora_refusals
from nabra.use.vllm_engine import VllmClient, export_info, vllm_args

# vLLM's Qwen2.5-Omni mapper (orig_to_new_prefix), in the order it applies them.
VLLM_MAPPER = (("thinker.lm_head.", "language_model.lm_head."), ("thinker.model.", "language_model.model."),
               ("thinker.", ""))
VLLM_MODULE = re.compile(r"language_model\.model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)")


def vllm_module_of(key: str) -> str | None:
    """The module vLLM's loader gives a LoRA tensor name (None: none of its modules)."""
    name = key.removeprefix("base_model.model.")
    for old, new in VLLM_MAPPER:
        if name.startswith(old):
            name = new + name[len(old):]
            break
    module = name.rsplit(".lora_", 1)[0]
    return module if VLLM_MODULE.fullmatch(module) else None


def test_vllm_lora_export_names_every_tensor_as_vllm_maps_it(lora_run, tiny, tmp_path):
    out = tmp_path / "vllm-lora"
    assert main(["export", str(lora_run), "--out", str(out), "--format", "vllm-lora"]) == 0
    ours = load_file(str(lora_run / "final" / "adapter_model.safetensors"))
    theirs = load_file(str(out / "adapter_model.safetensors"))
    assert all(vllm_module_of(k) is None for k in ours)  # the PEFT names: vLLM would apply none of them
    assert all(vllm_module_of(k) is not None for k in theirs)
    assert len(theirs) == len(ours)
    for key, value in ours.items():
        assert (theirs[vllm_lora_name(key, QWEN2_5_OMNI.lm_release_prefix)] == value).all()
    config = json.loads((out / "adapter_config.json").read_text())
    assert sorted(config["target_modules"]) == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
    assert not config.get("modules_to_save") and vllm_lora_refusals(config) == []
    # a thinker-only base cannot be loaded by vLLM: its release form is written beside the adapter
    assert json.loads((out / "base" / "config.json").read_text())["model_type"] == "qwen2_5_omni"
    assert load(out / "base").layout == "release"
    args = vllm_args(out, port=8123)
    assert args[args.index("--model") + 1] == str((out / "base").resolve())
    assert f"nabra={out.resolve()}" in args and "--enable-lora" in args


def test_what_vllm_cannot_apply_is_refused_with_the_command_that_works(synth_corpus, tiny, tmp_path, capsys):
    import yaml

    cfg = {"output_dir": str(tmp_path / "run"), "data": {"manifest": str(synth_corpus), "dev_per_task": 2},
           "model": {"path": str(tiny), "finetune": "lora",
                     "lora": {"r": 2, "alpha": 4, "train_aligner": True, "train_label_tokens": True}},
           "schedule": {"name": "uniform"},
           "train": {"max_steps": 1, "batch_size": 4, "lr": 1e-3, "warmup_steps": 0, "save_every": 0, "eval_every": 0}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    run = train(load_config(tmp_path / "run.yaml"), progress=False, log=lambda *_: None)
    assert main(["export", str(run), "--out", str(tmp_path / "x"), "--format", "vllm-lora"]) == 2
    err = capsys.readouterr().err
    assert "audio_tower.proj" in err and "trainable_token_indices" in err
    assert f"nabra export {run} --out DIR --merge" in err
    assert not (tmp_path / "x").exists()
    assert main(["export", str(run), "--out", str(tmp_path / "y"), "--merge", "--format", "peft"]) == 2
    assert "--merge is --format merged" in capsys.readouterr().err


def test_a_plain_peft_export_is_not_served_by_vllm(lora_run, tmp_path):
    out = tmp_path / "peft"
    assert main(["export", str(lora_run), "--out", str(out)]) == 0
    with pytest.raises(Exception, match="does not serve"):
        export_info(out)
    card = (out / "README.md").read_text()
    assert "--format vllm-lora" in card  # the card says how to get what vLLM serves


def _rendered(template: str, messages: list[dict]) -> str:
    """The prompt a chat template gives (vLLM passes an audio part to the template as ``{"type": "audio"}``)."""
    from jinja2 import Environment

    parts = [{**m, "content": [{"type": "audio"} if p.get("type") == "input_audio" else p for p in m["content"]]}
             if isinstance(m["content"], list) else m for m in messages]
    return Environment().from_string(template).render(messages=parts, add_generation_prompt=True)


def test_the_shipped_template_and_card_give_nabras_prompt(lora_run, tmp_path, monkeypatch, capsys):
    """Issue 29 #4: the card's messages, rendered by the export's own chat template, are the prompt Nabra
    trained and analyzes with (its prompt builder, one audio run); without a system message the template
    puts the run's in; the card's client is valid Python that sends exactly those messages."""
    out = tmp_path / "merged"
    assert main(["export", str(lora_run), "--out", str(out), "--merge"]) == 0
    cfg = config_of(lora_run)
    template = (out / "chat_template.jinja").read_text()
    assert json.loads((out / "chat_template.json").read_text())["chat_template"] == template
    assert template == chat_template(QWEN2_5_OMNI, cfg.collate.system_prompt)
    for task in cfg.task_set():
        messages = task_messages(cfg, task)
        utt = Utterance(id="call", audio="call.wav", transcript="<the text to summarize>")
        ex = prompt_example(utt, task, language="ar", task_set=cfg.task_set())
        want = QWEN2_5_OMNI.prompt_text(cfg.collate.system_prompt, ex.instruction, [1] if ex.audio else [])
        assert _rendered(template, messages) == want, task
        assert _rendered(template, messages[1:]) == want, f"{task}: the default system prompt"
    card = (out / "README.md").read_text()
    assert cfg.collate.system_prompt in card and "python -m vllm.entrypoints.openai.api_server --model" in card
    snippet = card.split("```python\n", 1)[1].split("```", 1)[0]
    ast.parse(snippet)
    sent = []

    class Completions:
        def create(self, **kw):
            sent.append(kw)
            message = types.SimpleNamespace(content="LAV")
            return types.SimpleNamespace(choices=[types.SimpleNamespace(message=message)])

    fake = types.ModuleType("openai")
    fake.OpenAI = lambda **kw: types.SimpleNamespace(chat=types.SimpleNamespace(completions=Completions()))
    monkeypatch.setitem(sys.modules, "openai", fake)
    wav = tmp_path / "call.wav"
    wav.write_bytes(b"RIFF....WAVE")
    for task in ("asr", "did"):
        monkeypatch.setattr(sys, "argv", ["ask.py", task, str(wav)])
        exec(compile(snippet, "card", "exec"), {"__name__": "__main__"})
        messages = sent[-1]["messages"]
        assert sent[-1]["temperature"] == 0 and sent[-1]["model"] == "nabra"
        assert messages[1]["content"][0]["input_audio"]["data"] == "UklGRi4uLi5XQVZF"  # base64 of the file
        ours = task_messages(cfg, task)
        assert messages[0] == ours[0] and messages[1]["content"][1] == ours[1]["content"][1]
    monkeypatch.setattr(sys, "argv", ["ask.py", "tsum", "نص طويل عن الطقس"])
    exec(compile(snippet, "card", "exec"), {"__name__": "__main__"})
    assert sent[-1]["messages"][1]["content"].endswith("نص طويل عن الطقس")
    assert capsys.readouterr().out.strip().endswith("LAV")


def test_label_scores_read_from_prompt_logprobs(monkeypatch):
    """The vLLM engine's scorer sums the answer's own tokens from ``prompt_logprobs`` rows as vLLM writes
    them (``{token_id: {logprob, rank, decoded_token}}``, the prompt's token and, when it is not the top
    one, the top one too)."""
    client = VllmClient("http://127.0.0.1:9")
    rows = [None, {"5": {"logprob": -0.1, "rank": 1}},
            {"7": {"logprob": -2.0, "rank": 3}, "8": {"logprob": -0.5, "rank": 1}},
            {"9": {"logprob": -0.25, "rank": 1}}]
    seen = {}

    def post(path, body):
        seen.update(body)
        return {"prompt_logprobs": rows, "choices": [{"message": {"content": ""}}]}

    monkeypatch.setattr(client, "post", post)
    assert client.answer_logprob([{"role": "user", "content": "x"}], "LAV<|im_end|>", 2) == pytest.approx(-2.25)
    assert seen["continue_final_message"] and not seen["add_generation_prompt"] and seen["prompt_logprobs"] == 0
    assert seen["messages"][-1] == {"role": "assistant", "content": "LAV<|im_end|>"}


def test_the_vllm_engine_answers_what_the_analyzer_answers(lora_run, tmp_path):
    """``nabra serve --engine vllm`` without vLLM: a stand-in for its OpenAI API records what the engine
    sends (the run's system prompt, the audio first as a WAV, the prompt analyze sends; each label as the
    assistant's answer with prompt_logprobs) and the engine turns the replies into analyze's results."""
    import base64
    import io
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import soundfile as sf

    from nabra.testing import write_clip
    from nabra.use.analyze import Recording, plan_windows
    from nabra.use.vllm_engine import VllmAnalyzer

    out = tmp_path / "merged"
    assert main(["export", str(lora_run), "--out", str(out), "--merge"]) == 0
    bodies = []
    label_logp = {"LAV": -0.2, "EGY": -1.5}  # every other label: -6 a token

    class Fake(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):  # noqa: N802 - the stdlib's name
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            bodies.append(body)
            if body.get("continue_final_message"):
                answer = body["messages"][-1]["content"]
                n = 40
                rows = [{"1": {"logprob": label_logp.get(answer.removesuffix("<|im_end|>"), -6.0) / n, "rank": 1}}
                        for _ in range(n)]
                reply = {"prompt_logprobs": [None, *rows], "choices": [{"message": {"content": ""}}]}
            else:
                reply = {"choices": [{"message": {"content": " مرحبا بكم "}}]}
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Fake)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        engine = VllmAnalyzer(out, url=f"http://127.0.0.1:{server.server_port}")
        clip = write_clip(tmp_path / "call.wav", 1.5)
        recordings = plan_windows([Recording("call", str(clip), where=str(clip))], engine.window, [])
        result, = engine.run(recordings, ("asr", "ssum", "did"))
        engine.close()
    finally:
        server.shutdown()
    assert result["asr"]["text"] == "مرحبا بكم" and result["ssum"]["source"] == "speech"
    probs = result["did"]["probabilities"]
    assert result["did"]["label"] == "LAV" and sum(probs.values()) == pytest.approx(1.0)
    assert probs["LAV"] > probs["EGY"] > probs["GLF"]
    cfg = config_of(lora_run)
    for body in bodies:
        system, user = body["messages"][:2]
        assert system == {"role": "system", "content": cfg.collate.system_prompt} and body["temperature"] == 0
        audio, text = user["content"]
        wave, rate = sf.read(io.BytesIO(base64.b64decode(audio["input_audio"]["data"])))
        assert rate == 16000 and len(wave) == 24000 and audio["input_audio"]["format"] == "wav"
    asked = {b["messages"][1]["content"][1]["text"] for b in bodies}
    for task in ("asr", "ssum", "did"):
        assert task_messages(cfg, task)[1]["content"][1]["text"] in asked
    scored = sorted(b["messages"][-1]["content"] for b in bodies if b.get("continue_final_message"))
    assert scored == sorted(f"{name}<|im_end|>" for name in cfg.task_set().labels("did").names)
