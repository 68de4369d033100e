"""English speech beside Arabic: English ASR prompts ask for English text, English transcripts are
scored under Whisper's English normalizer (transformers' own), Arabic ones under the Arabic scheme,
and the metrics and the report give WER per language."""


import pytest

from nabra.corpus.manifest import Utterance
from nabra.evaluate.metrics import Prediction, compute_metrics
from nabra.evaluate.report import make_report
from nabra.tasks import SPEECH_TEMPLATES, TEMPLATES, iter_examples, make_example
from nabra.testing import write_eval_run
from nabra.text.english import is_english, normalize_english


def test_english_speech_gets_english_asr_templates_and_keeps_its_language():
    en = Utterance(id="e1", audio="/x.wav", transcript="HELLO WORLD", language="en-US", duration=1.0)
    ar = Utterance(id="a1", audio="/y.wav", transcript="مرحبا", language="ar", duration=1.0)
    for seed in range(6):
        assert make_example(en, "asr", seed=seed).instruction in SPEECH_TEMPLATES["en"]["asr"]
        assert make_example(ar, "asr", seed=seed).instruction in TEMPLATES["asr"]
    assert make_example(en, "asr", language="en").instruction in {t for t in SPEECH_TEMPLATES["en"]["asr"] if t.isascii()}
    assert [ex.language for ex in iter_examples([en, ar], tasks=("asr",))] == ["en-US", "ar"]


def test_english_is_normalised_as_whisper_does():
    assert normalize_english("Mr. Smith's colour, isn't it?") == "mister smith is colour is not it"
    assert is_english("en") and is_english("en-GB") and not is_english("ar") and not is_english(None)


def asr(uid, ref, hyp, language):
    return Prediction(id=f"{uid}#asr", task="asr", prediction=hyp, reference=ref, parsed=hyp, language=language)


def test_mixed_languages_get_per_language_wer():
    preds = [asr("e1", "HELLO, Mr. Smith!", "hello mister smith", "en"),      # 0 errors once normalised
             asr("e2", "GO DO YOU HEAR", "go to you hear", "en"),               # 1 of 4
             asr("a1", "ذهب إلى المدرسة", "ذهب الى المدرسة", "ar")]             # 0 (alef folded)
    m = compute_metrics(preds)["asr"]
    en = m["by_language"]["en"]
    assert (en["wer"], en["n"]) == (pytest.approx(1 / 7), 2) and 0 < en["cer"] < 0.2
    assert m["by_language"]["ar"]["wer"] == 0.0 and m["wer"] == pytest.approx(1 / 10)
    # The Arabic scheme alone would count the English case and punctuation as errors
    assert compute_metrics([asr("e1", "HELLO, Mr. Smith!", "hello mister smith", None)])["asr"]["wer"] > 0.5
    assert "by_language" not in compute_metrics(preds[2:])["asr"]


def test_the_report_says_wer_per_language(tmp_path):
    runs = [write_eval_run(tmp_path / f"u{seed}", "uniform", seed, {
        "wer": (en + ar) / 2, "cer": 0.1, "n": 4,
        "by_language": {"ar": {"wer": ar, "cer": 0.1, "n": 2}, "en": {"wer": en, "cer": 0.1, "n": 2}}})
        for seed, (en, ar) in enumerate(((0.2, 0.4), (0.3, 0.5)))]
    md = (make_report(runs, tmp_path / "r").parent / "report.md").read_text()
    assert "ASR WER per language" in md and "uniform: ar 45.0%, en 25.0%" in md
