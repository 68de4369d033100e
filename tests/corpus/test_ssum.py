import json
import shlex
import sys
import threading

import numpy as np
import pytest

from nabra.cli import main
from nabra.corpus import ssum
from nabra.corpus.audio import SAMPLE_RATE, audio_info, load_audio
from nabra.corpus.importers.common import SkipReport
from nabra.corpus.manifest import SPLITS, read_manifest
from nabra.corpus.ssum import SsumConfig, build, load_journal, plan_documents
from nabra.corpus.ssum_text import clean_for_tts, split_sentences
from nabra.corpus.tts import EspeakTTS, espeak_available
from nabra.corpus.validate import ValidationConfig, validate_manifest
from nabra.errors import NabraError

needs_espeak = pytest.mark.skipif(not espeak_available(), reason="eSpeak NG not installed")

# Five short news items, 2-3 sentences each; the first carries Latin text eSpeak must not see.
DOCS = [
    {"id": "n1", "document": "قال الوزير (Reuters) إن النمو بلغ 3.5 في المئة. وأضاف أن الإصلاحات مستمرة.",
     "summary": "النمو بلغ 3.5 في المئة."},
    {"id": "n2", "document": "افتتح المتحف الوطني أبوابه أمس!\nحضر الافتتاح آلاف الزوار. هل يستمر الإقبال؟",
     "summary": "افتتاح المتحف الوطني.", "split": "validation"},
    {"id": "n3", "text": "فاز الفريق بالمباراة. احتفل المشجعون في الشوارع.", "summary": "فوز الفريق."},
    {"id": "n4", "document": "ارتفعت أسعار النفط اليوم. وتوقع الخبراء استمرار الارتفاع.",
     "summary": "ارتفاع أسعار النفط.", "title": "النفط"},
    {"id": "n5", "document": "هطلت أمطار غزيرة على المدينة. وأغلقت المدارس أبوابها.",
     "summary": "أمطار غزيرة وإغلاق المدارس."},
]  # fmt: skip
CLEAN_N1 = "قال الوزير إن النمو بلغ 3.5 في المئة. وأضاف أن الإصلاحات مستمرة."

# A stand-in for an external TTS: half a second of sine at 22.05 kHz per call, or a failure with a
# message on stderr when the text holds the word "فشل".
FAKE_TTS = """
import argparse, sys
import numpy as np, soundfile as sf
p = argparse.ArgumentParser()
p.add_argument("--out"); p.add_argument("--text-file"); p.add_argument("--voice")
a = p.parse_args()
if "فشل" in open(a.text_file, encoding="utf-8").read():
    sys.exit("boom: the model cannot say this")
t = np.arange(int(0.5 * 22050)) / 22050
sf.write(a.out, 0.3 * np.sin(2 * np.pi * (220 if a.voice == "a" else 330) * t), 22050)
"""


def _write_pairs(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n"
                            for r in rows), encoding="utf-8")  # fmt: skip
    return path


@pytest.fixture
def pairs(tmp_path):
    return _write_pairs(tmp_path / "pairs.jsonl", DOCS)


@pytest.fixture
def fake_tts(tmp_path):
    script = tmp_path / "fake_tts.py"
    script.write_text(FAKE_TTS, encoding="utf-8")
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} --out {{wav}} --text-file {{txt}} --voice {{voice}}"


# --- text ------------------------------------------------------------------------------------------


def test_cleaning_keeps_arabic_digits_and_punctuation_only():
    assert clean_for_tts("قال (BBC) إن: النمو 3.5٪ «جيد» 😀 ﻻ") == "قال إن: النمو 3.5٪ «جيد» لا"
    assert clean_for_tts("BBC: قال المتحدث") == "قال المتحدث"
    assert clean_for_tts("hello world") == ""


def test_sentences_split_at_punctuation_and_long_ones_at_a_comma():
    assert split_sentences("جملة أولى. جملة ثانية؟ ثالثة!\nرابعة بلغت 3.5 في المئة") == [
        "جملة أولى.", "جملة ثانية؟", "ثالثة!", "رابعة بلغت 3.5 في المئة"]  # fmt: skip
    long = "، ".join(["كلمة أخرى هنا"] * 20) + "."
    parts = split_sentences(long, max_chars=60)
    assert len(parts) > 1 and all(len(p) <= 60 for p in parts)
    assert all(p.endswith(("،", ".")) for p in parts)
    assert " ".join(parts) == long
    assert split_sentences("Only English here. 😀") == []


# --- build with eSpeak NG ----------------------------------------------------------------------------


@needs_espeak
def test_build_with_espeak(pairs, tmp_path):
    config = SsumConfig(workers=2)
    result = build(pairs, tmp_path / "out", config, progress=False)
    manifest = tmp_path / "out" / "manifest.jsonl"
    assert [p.format(manifest) for p in validate_manifest(manifest, ValidationConfig(check_audio=True))] == []
    utts = read_manifest(manifest)
    assert [u.id for u in utts] == [d["id"] for d in DOCS] and result.synthesized == 5
    assert all(u.tasks() == ("asr", "ssum", "tsum") for u in utts)
    assert all(u.language == "ar" and u.source == "aramega-ssum" and u.split in SPLITS for u in utts)
    assert utts[0].transcript == CLEAN_N1 and utts[1].split == "dev" and utts[3].extra == {"title": "النفط"}
    assert utts[2].transcript == DOCS[2]["text"] and utts[1].transcript == " ".join(split_sentences(DOCS[1]["document"]))
    # Voices rotate: five documents, five of the twelve voices, in a seeded order.
    assert len({u.speaker for u in utts}) == 5 and {u.speaker for u in utts} <= set(config.voices)
    plans = plan_documents(pairs, config, EspeakTTS().key, SkipReport())
    tts = EspeakTTS()
    for utt, plan in zip(utts, plans, strict=True):
        info = audio_info(utt.audio)
        assert info.sample_rate == SAMPLE_RATE and info.channels == 1
        assert utt.duration == round(info.frames / SAMPLE_RATE, 3)
        # The WAV is the sentences, spoken one by one, with a 250-450 ms pause between two.
        assert all(250 <= p <= 450 for p in plan.pauses_ms) and len(plan.pauses_ms) == len(plan.sentences) - 1
        speech = sum(tts(s, plan.voice).size for s in plan.sentences)
        assert info.frames == speech + sum(p * SAMPLE_RATE // 1000 for p in plan.pauses_ms)
    assert not (tmp_path / "out" / "manifest.skipped.jsonl").exists()


@needs_espeak
def test_interrupted_build_resumes_where_it_stopped(pairs, tmp_path, monkeypatch):
    reference = tmp_path / "ref"
    build(pairs, reference, SsumConfig(workers=2), progress=False)
    out = tmp_path / "out"
    calls, lock = [], threading.Lock()
    real = ssum.render_document

    def counted(interrupt_at):
        def render(plan, tts, audio_dir):
            with lock:
                calls.append(plan.id)
                n = len(calls)
            if n == interrupt_at:
                raise KeyboardInterrupt  # as if Ctrl-C hit during the third document
            return real(plan, tts, audio_dir)

        return render

    monkeypatch.setattr(ssum, "render_document", counted(3))
    with pytest.raises(KeyboardInterrupt):
        build(pairs, out, SsumConfig(workers=2), progress=False)
    assert not (out / "manifest.jsonl").exists()
    done = set(load_journal(out / ".ssum-progress.jsonl"))
    assert len(done) >= 2 and calls[2] not in done

    calls.clear()
    monkeypatch.setattr(ssum, "render_document", counted(None))
    result = build(pairs, out, SsumConfig(workers=2), progress=False)
    assert sorted(calls) == sorted({d["id"] for d in DOCS} - done)
    assert (result.synthesized, result.resumed) == (len(calls), len(done))
    assert (out / "manifest.jsonl").read_bytes() == (reference / "manifest.jsonl").read_bytes()
    for d in DOCS:
        assert (out / "audio" / f"{d['id']}.wav").read_bytes() == (reference / "audio" / f"{d['id']}.wav").read_bytes()

    calls.clear()  # a finished build reruns for free
    assert build(pairs, out, SsumConfig(workers=2), progress=False).synthesized == 0 and calls == []


@needs_espeak
def test_changed_settings_respeak_only_what_changed(pairs, tmp_path):
    out = tmp_path / "out"
    build(pairs, out, SsumConfig(workers=2), progress=False)
    # A new summary does not change the audio; a new pause range changes every document.
    assert build(pairs, out, SsumConfig(workers=2, source="mine"), progress=False).synthesized == 0
    assert {u.source for u in read_manifest(out / "manifest.jsonl")} == {"mine"}
    assert build(pairs, out, SsumConfig(workers=2, pause_ms=(100, 100)), progress=False).synthesized == 5


# --- an external TTS command ---------------------------------------------------------------------


def test_command_backend_is_resampled_and_failures_are_skipped(tmp_path, fake_tts):
    docs = [*DOCS[:3], {"id": "bad", "document": "هذه جملة. وهذه فشل.", "summary": "ملخص."}]
    src = _write_pairs(tmp_path / "pairs.jsonl", docs)
    config = SsumConfig(tts="command", tts_command=fake_tts, voices=("a", "b"), workers=2)
    result = build(src, tmp_path / "out", config, progress=False)
    manifest = tmp_path / "out" / "manifest.jsonl"
    assert [p.format(manifest) for p in validate_manifest(manifest, ValidationConfig(check_audio=True))] == []
    utts = read_manifest(manifest)
    assert [u.id for u in utts] == ["n1", "n2", "n3"]
    assert [u.speaker for u in utts] in (["a", "b", "a"], ["b", "a", "b"])  # rotation
    plans = {p.id: p for p in plan_documents(src, config, "", SkipReport())}
    for u in utts:
        samples = load_audio(u.audio)
        assert audio_info(u.audio).sample_rate == SAMPLE_RATE
        # 0.5 s per sentence (22.05 kHz -> 16 kHz) plus the pauses
        want = 0.5 * len(plans[u.id].sentences) + sum(plans[u.id].pauses_ms) / 1000
        assert u.duration == pytest.approx(want, abs=0.002) == samples.size / SAMPLE_RATE
        spectrum = np.abs(np.fft.rfft(samples[:8000]))
        assert np.argmax(spectrum) * SAMPLE_RATE / 8000 == (220 if u.speaker == "a" else 330)
    skipped = [json.loads(x) for x in (tmp_path / "out" / "manifest.skipped.jsonl").read_text().splitlines()]
    assert [(s["where"], s["reason"]) for s in skipped] == [("pairs.jsonl:4", "TTS command failed")]
    assert "boom: the model cannot say this" in skipped[0]["detail"]
    assert (result.report.seen, result.report.imported, result.report.skipped) == (4, 3, 1)


def test_bad_input_lines_are_skipped_and_counted(tmp_path, fake_tts, capsys):
    rows = ["{not json", "[1, 2]", {"document": "نص قصير."}, {"summary": "ملخص."},
            {"document": "Only English. BBC!", "summary": "ملخص."}, {"document": "نص.", "summary": "  "},
            {"id": "x", "document": "نص أول.", "summary": "ملخص."}, {"id": "x", "document": "نص ثان.", "summary": "ملخص."},
            {"document": "نص.", "summary": "ملخص.", "split": "holdout"}, "",
            {"body": "نص في حقل آخر.", "abstract": "ملخص."}]  # fmt: skip
    src = _write_pairs(tmp_path / "pairs.jsonl", rows)
    out = tmp_path / "out"
    assert main(["ssum", "build", "--pairs", str(src), "--out", str(out), "--tts-command", fake_tts,
                 "--workers", "2", "--quiet"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "spoke 1 of 10 pairs as 1 documents" in printed  # the blank line is no pair
    reasons = [json.loads(x)["reason"] for x in (out / "manifest.skipped.jsonl").read_text().splitlines()]
    assert reasons == ["bad JSON", "bad JSON", "no summary", "no document", "document empty after cleaning for TTS",
                       "no summary", "duplicate id", "unknown split", "no document"]  # fmt: skip
    assert [u.id for u in read_manifest(out / "manifest.jsonl")] == ["x"]
    # The same file read with other field names finds the last pair too.
    assert main(["ssum", "build", "--pairs", str(src), "--out", str(tmp_path / "o2"), "--tts-command", fake_tts,
                 "--document-field", "body", "--summary-field", "abstract", "--quiet"]) == 0  # fmt: skip
    assert [u.transcript for u in read_manifest(tmp_path / "o2" / "manifest.jsonl")] == ["نص في حقل آخر."]


# --- planning and errors -------------------------------------------------------------------------


def test_split_by_voice_gives_speaker_disjoint_splits(tmp_path):
    rows = [{"id": f"d{i}", "document": "جملة قصيرة.", "summary": "ملخص."} for i in range(200)]
    rows[0]["split"] = "test"
    src = _write_pairs(tmp_path / "pairs.jsonl", rows)
    voices = tuple(f"v{i}" for i in range(12))
    plans = plan_documents(src, SsumConfig(voices=voices, split_by="voice", seed=1), "", SkipReport())
    by_split = {s: {p.voice for p in plans if p.split == s} for s in SPLITS}
    assert by_split == {"train": set(voices[:8]), "dev": set(voices[8:10]), "test": set(voices[10:])}
    assert plans[0].split == "test" and 140 < sum(p.split == "train" for p in plans) < 180
    again = plan_documents(src, SsumConfig(voices=voices, split_by="voice", seed=1), "", SkipReport())
    assert again == plans  # seeded: the same plan every time


def test_user_errors_name_the_problem(tmp_path):
    with pytest.raises(NabraError, match="nope.jsonl: pairs file not found"):
        build(tmp_path / "nope.jsonl", tmp_path / "out", progress=False)
    with pytest.raises(NabraError, match="needs --tts-command"):
        SsumConfig(tts="command")
    with pytest.raises(NabraError, match="at least 3 voices"):
        SsumConfig(voices=("a", "b"), split_by="voice")
    pairs = _write_pairs(tmp_path / "p.jsonl", DOCS[:1])
    with pytest.raises(NabraError, match="must name the output as"):
        build(pairs, tmp_path / "out", SsumConfig(tts="command", tts_command="cat {txt}"), progress=False)
    with pytest.raises(NabraError, match="program not found: no-such-tts"):
        build(pairs, tmp_path / "out", SsumConfig(tts="command", tts_command="no-such-tts {wav}"), progress=False)
