import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from nabra.cli import main
from nabra.corpus.audio import load_audio
from nabra.corpus.importers import SkipReport, swift
from nabra.corpus.importers.swift import infer_task
from nabra.corpus.manifest import Utterance, read_manifest, write_manifest
from nabra.testing import tiny_manifest, write_clip


def chat(prompt, answer, audio=None, **more):
    row = {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}], **more}
    if audio:
        row["audios"] = [audio]
    return json.dumps(row, ensure_ascii=False)


@pytest.mark.parametrize(("prompt", "has_audio", "task"), [
    ("<audio>تعرف على الكلام", True, "asr"),
    ("<audio>Transcribe the Arabic speech.", True, "asr"),
    ("<audio>فرّغ هذا المقطع الصوتي نصياً.", True, "asr"),
    ("<audio>اكتب ما يقال في هذا التسجيل.", True, "asr"),
    ("<audio>Summarize the recording.", True, "ssum"),
    ("<audio>ما خلاصة هذا التسجيل؟", True, "ssum"),
    ("لخّص النص التالي في جملة واحدة:\nقالت الوزارة إن اللهجة المصرية ...", False, "tsum"),
    ("<audio>Which Arabic dialect is spoken? Answer with one of: EGY, GLF.", True, "did"),
    ("<audio>حدّد اللهجة العربية في هذا التسجيل", True, "did"),
    ("<audio>What emotion does the speaker express?", True, "ser"),
    ("<audio>صنّف انفعال المتحدث", True, "ser"),
    ("<audio>", True, None),
    ("<audio>Transcribe the speech and name its dialect.", True, None),  # two tasks: ambiguous
])
def test_task_inference(prompt, has_audio, task):
    assert infer_task(prompt, has_audio=has_audio) == task


@pytest.fixture
def jsonl(tmp_path):
    write_clip(tmp_path / "a.wav", 0.5)
    write_clip(tmp_path / "b.wav", 0.5)
    lines = [
        chat("<audio>تعرف على الكلام", "مرحبا بكم", "a.wav"),
        chat("<audio>Summarize the speech.", "ترحيب", "/abs/missing.wav"),
        json.dumps({"conversations": [{"from": "human", "value": "<audio>ما لهجة المتحدث؟"},
                                      {"from": "gpt", "value": "مصري"}], "audios": ["b.wav"]}, ensure_ascii=False),
        chat("<audio>What emotion is this?", "joy", "b.wav"),
        chat("Summarize the following text:\nالنص الطويل هنا.", "ملخص"),
        chat("<audio>", "نص بلا تعليمات", "a.wav"),                      # no task in the prompt
        chat("<audio>Which dialect?", "Martian", "a.wav"),               # unknown label
        chat("<audio>Transcribe.", "   ", "a.wav"),                      # empty answer
        '{"messages": [{"role": "user"',                                 # bad JSON
        json.dumps({"messages": [{"role": "user", "content": "<audio>Transcribe"},
                                 {"role": "assistant", "content": "a"},
                                 {"role": "user", "content": "again"},
                                 {"role": "assistant", "content": "b"}], "audios": ["a.wav"]}),
        chat("<audio><audio>Transcribe.", "x", None, audios=["a.wav", "b.wav"]),
        "",
    ]
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_import_rows_with_reasons(jsonl, tmp_path, import_checked):
    report, utts = import_checked("swift", jsonl, tmp_path / "out.jsonl", split="train")
    assert report.seen == 11
    assert dict(report.reasons) == {
        "task not recognised in the prompt (pass --task)": 1, "unknown dialect label": 1, "empty answer": 1,
        "bad JSON": 1, "not one user turn and one answer": 1, "more than one audio in a row": 1}
    assert utts["train-000001"].transcript == "مرحبا بكم" and utts["train-000001"].audio == str(jsonl.parent / "a.wav")
    assert utts["train-000002"].summary == "ترحيب"
    assert utts["train-000003"].dialect == "EGY" and utts["train-000004"].emotion == "happy"
    tsum = utts["train-000005"]
    assert (tsum.transcript, tsum.summary, tsum.audio, tsum.tasks()) == ("النص الطويل هنا.", "ملخص", None, ("tsum",))


def test_fallback_task(jsonl, tmp_path, import_checked):
    report, utts = import_checked("swift", jsonl, tmp_path / "out.jsonl", task="asr")
    assert utts["train-000006"].transcript == "نص بلا تعليمات"
    assert "task not recognised in the prompt (pass --task)" not in report.reasons


@pytest.mark.parametrize("language", ["ar", "en"])
def test_export_then_import_gives_the_same_examples(tmp_path, language, import_checked):
    manifest = tiny_manifest(tmp_path / "m", 10)
    exported = tmp_path / "swift.jsonl"
    report = SkipReport()
    rows = swift.export(manifest, exported, report, language=language)
    original = read_manifest(manifest)
    assert rows == sum(len(u.tasks()) for u in original) and report.utterances == rows
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    assert all(("audios" in r) == (not r["messages"][0]["content"].startswith(("Summarize the following", "لخّص النص")))
               for r in lines)
    report, utts = import_checked("swift", exported, tmp_path / "back.jsonl")
    assert report.seen == rows and report.utterances == len(original)
    for u in original:
        back = utts[u.id]
        assert (back.audio, back.transcript, back.summary, back.dialect, back.emotion) == (
            u.audio, u.transcript, u.summary, u.dialect, u.emotion)
        assert back.tasks() == u.tasks()
    # And the round trip is a fixed point: exporting the import gives the same rows.
    swift.export(tmp_path / "back.jsonl", tmp_path / "again.jsonl", SkipReport(), language=language)
    assert (tmp_path / "again.jsonl").read_text() == exported.read_text()


def test_segments_are_cut_for_export(tmp_path):
    ramp = np.linspace(-0.5, 0.5, 16000 * 4, dtype=np.float32)
    sf.write(tmp_path / "long.wav", ramp, 16000, subtype="FLOAT")
    write_manifest(tmp_path / "m.jsonl", [
        Utterance("seg1", audio=str(tmp_path / "long.wav"), offset=1.0, duration=1.5, transcript="نص"),
        Utterance("gone", audio=str(tmp_path / "nope.wav"), transcript="نص"),
        Utterance("text", transcript="نص", summary="ملخص"),
    ])
    report = SkipReport()
    swift.export(tmp_path / "m.jsonl", tmp_path / "out.jsonl", report, tasks=["asr", "ssum"])
    assert dict(report.reasons) == {"unreadable audio": 1, "serves none of the exported tasks": 1}
    row = json.loads((tmp_path / "out.jsonl").read_text())
    cut = row["audios"][0]
    assert cut.endswith("out_segments/seg1.wav")
    assert abs(load_audio(cut).size - 24000) <= 1


def test_cli_export_and_import(tmp_path, capsys):
    manifest = tiny_manifest(tmp_path / "m", 5)
    out = tmp_path / "sw.jsonl"
    assert main(["data", "export", "swift", str(manifest), "--out", str(out), "--tasks", "asr,did",
                 "--split", "train"]) == 0
    assert "exported 2 of 2 utterances as 4 rows" in capsys.readouterr().out
    assert main(["data", "import", "swift", str(out), "--out", str(tmp_path / "back.jsonl"), "--quiet"]) == 0
    assert "imported 4 of 4 rows as 2 utterances" in capsys.readouterr().out


def test_ids_never_become_paths_when_segments_are_cut(tmp_path):
    long = write_clip(tmp_path / "long.wav", 3.0)
    ids = ["../../escape", "a/b", "a_b", "/abs", ".hidden"]
    manifest = tmp_path / "m.jsonl"
    write_manifest(manifest, [Utterance(uid, audio=str(long), offset=0.5 * i, duration=0.5, transcript="نص")
                              for i, uid in enumerate(ids)])
    swift.export(manifest, tmp_path / "out" / "s.jsonl", SkipReport())
    cut_dir = tmp_path / "out" / "s_segments"
    audios = [json.loads(x)["audios"][0] for x in (tmp_path / "out" / "s.jsonl").read_text().splitlines()]
    assert len(set(audios)) == len(ids)  # "a/b" and "a_b" do not share a file
    assert all(Path(a).parent == cut_dir.resolve() for a in audios)  # nothing escapes the folder
    assert sorted(p.name for p in tmp_path.rglob("*.wav")) == sorted(["long.wav", *(Path(a).name for a in audios)])


# LLaMA-Factory's own audio example, data/mllm_audio_demo.json (its dataset_info.json: formatting sharegpt,
# columns messages/audios, tags role/content/user/assistant): a JSON *array*, pretty-printed, audio paths
# relative to the data folder. Verbatim but for the file names.
LLAMAFACTORY_AUDIO_DEMO = """[
  {
    "messages": [
      {
        "content": "<audio>What's that sound?",
        "role": "user"
      },
      {
        "content": "It is the sound of glass shattering.",
        "role": "assistant"
      }
    ],
    "audios": [
      "mllm_demo_data/1.wav"
    ]
  },
  {
    "messages": [
      {
        "content": "<audio>What does the person say?",
        "role": "user"
      },
      {
        "content": "Mister Quiller is the apostle of the middle classes and we are glad to welcome his gospel.",
        "role": "assistant"
      }
    ],
    "audios": [
      "mllm_demo_data/3.wav"
    ]
  }
]
"""


def test_llamafactory_json_array(tmp_path, import_checked):
    write_clip(tmp_path / "data" / "mllm_demo_data" / "1.wav", 0.3)
    write_clip(tmp_path / "data" / "mllm_demo_data" / "3.wav", 0.3)
    path = tmp_path / "data" / "mllm_audio_demo.json"
    path.write_text(LLAMAFACTORY_AUDIO_DEMO)
    report, utts = import_checked("swift", path, tmp_path / "out.jsonl", language="en")
    assert report.seen == 2  # two rows, not one per line of the pretty-printed file
    assert dict(report.reasons) == {"task not recognised in the prompt (pass --task)": 1}  # a sound event: no task of ours
    assert report.items[0]["where"] == "mllm_audio_demo.json:2"  # the line its object starts on
    (utt,) = utts.values()
    assert utt.transcript.startswith("Mister Quiller") and utt.audio == str(tmp_path / "data" / "mllm_demo_data" / "3.wav")


def test_json_array_that_does_not_parse_names_the_line(tmp_path):
    from nabra.corpus.importers import import_corpus
    from nabra.errors import NabraError

    path = tmp_path / "bad.json"
    path.write_text('[\n  {"messages": []},\n  {"messages": [}\n]\n')
    with pytest.raises(NabraError, match=r"bad\.json:3: .*not valid JSON"):
        import_corpus("swift", path, tmp_path / "o.jsonl")


# One row of each form ms-swift and LLaMA-Factory document (test_swift_peer.py runs them through ms-swift).
MS_SWIFT_ROWS = [
    {"system": "أنت مساعد", "conversation": [{"human": "<audio>تعرف على الكلام", "assistant": "مرحبا بكم"}],
     "audios": ["a.wav"]},
    {"instruction": "<audio>Which Arabic dialect is spoken?", "input": "", "output": "مصري", "audios": ["a.wav"]},
    {"instruction": "Summarize the following text in one sentence:", "input": "قالت الوزارة إن المشروع اكتمل.",
     "output": "اكتمل المشروع"},
    {"query": "<audio>What emotion does the speaker express?", "response": "angry", "history": [],
     "audios": "a.wav"},
    {"system_prompt": "transcribe", "query": "<audio>", "response": "نعم", "audios": ["a.wav"]},
    {"conversations": [{"from": "human", "value": "<audio>Transcribe."}, {"from": "bot", "value": "لا"}],
     "audios": ["a.wav"]},
    {"query": "<audio>Transcribe.", "response": "ثم", "history": [["<audio>Transcribe.", "قبل"]], "audios": ["a.wav"]},
]


def test_ms_swift_row_formats(tmp_path, import_checked):
    """The four forms ms-swift's AutoPreprocessor reads (docs/source_en/Customization/Custom-dataset.md and
    swift/llm/dataset/preprocessor/core.py, swift/dataset/preprocessor in 4.x): messages; sharegpt ``conversation`` of {human, assistant} pairs;
    alpaca instruction/input/output (joined by a newline); query/response with history. And LLaMA-Factory's
    alpaca (same keys, ``audios``) and sharegpt (``conversations`` of from/value)."""
    write_clip(tmp_path / "a.wav", 0.3)
    path = tmp_path / "swift.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in MS_SWIFT_ROWS), encoding="utf-8")
    report, utts = import_checked("swift", path, tmp_path / "out.jsonl")
    got = {u.id: (u.tasks(), u.transcript, u.summary, u.dialect, u.emotion) for u in utts.values()}
    assert got == {
        "swift-000001": (("asr",), "مرحبا بكم", None, None, None),
        "swift-000002": (("did",), None, None, "EGY", None),
        "swift-000003": (("tsum",), "قالت الوزارة إن المشروع اكتمل.", "اكتمل المشروع", None, None),
        "swift-000004": (("ser",), None, None, None, "angry"),
        "swift-000005": (("asr",), "نعم", None, None, None),
        "swift-000006": (("asr",), "لا", None, None, None),
    }
    assert dict(report.reasons) == {"not one user turn and one answer": 1}  # the history makes it two turns
