import math

import jiwer
import pytest
from rouge_score.rouge_scorer import RougeScorer

from nabra.corpus.labels import EMOTIONS
from nabra.errors import NabraError
from nabra.evaluate.metrics import (
    ArabicTokenizer,
    Prediction,
    bertscore_f1,
    composite_score,
    compute_metrics,
    error_rates,
    repetition_loop,
)
from nabra.tasks import TaskSet

REF = "ذهب إلى المدرسة"
HYP = "ذَهَبَ الى المدرسه"  # diacritics, bare alef, ه for ة


def asr(ref, hyp, dialect=None, i=0):
    return Prediction(f"u{i}#asr", "asr", reference=ref, prediction=hyp, parsed=hyp.strip(), dialect=dialect)


def label(task, ref, parsed, i, text=None):
    return Prediction(f"u{i}#{task}", task, reference=ref, label=ref, prediction=text or parsed or "", parsed=parsed)


# -- ASR --------------------------------------------------------------------------------------

def test_arabic_wer_cer_by_hand():
    # Unnormalized, every word differs; after either normalization only ة/ه remains: 1 of 3 words,
    # 1 of 15 characters (ذهب الى المدرسة: 3 + 1 + 3 + 1 + 7, the spaces count for CER as in jiwer).
    assert jiwer.wer(REF, HYP) == 1.0
    m = compute_metrics([asr(REF, HYP)])["asr"]
    assert m["wer"] == pytest.approx(1 / 3) and m["cer"] == pytest.approx(1 / 15)
    assert m["wer_leaderboard"] == pytest.approx(1 / 3) and m["cer_leaderboard"] == pytest.approx(1 / 15)
    assert (m["substitutions"], m["deletions"], m["insertions"], m["ref_words"]) == (1, 0, 0, 3)


def test_schemes_differ_on_alef_maqsura():
    # default folds ى to ي; the leaderboard keeps ى (so الى vs الي is an error there only).
    m = compute_metrics([asr(REF, "ذهب الي المدرسة")])["asr"]
    assert m["wer"] == 0.0 and m["cer"] == 0.0
    assert m["wer_leaderboard"] == pytest.approx(1 / 3) and m["cer_leaderboard"] == pytest.approx(1 / 15)
    lb = compute_metrics([asr(REF, "ذهب الي المدرسة")], scheme="leaderboard")["asr"]
    assert lb["wer"] == lb["wer_leaderboard"] == pytest.approx(1 / 3)


def test_corpus_level_and_per_dialect():
    preds = [asr(REF, HYP, "EGY", 0), asr("الجو جميل اليوم في القاهرة", "الجو جميل", "GLF", 1),
             asr("مرحبا", "", "GLF", 2)]  # an empty output: all deletions, counted
    m = compute_metrics(preds)["asr"]
    assert m["wer"] == pytest.approx((1 + 3 + 1) / (3 + 5 + 1))  # corpus level, not a mean of ratios
    assert m["by_dialect"]["EGY"] == {"wer": pytest.approx(1 / 3), "cer": pytest.approx(1 / 15), "n": 1}
    assert m["by_dialect"]["GLF"]["wer"] == pytest.approx(4 / 6) and m["by_dialect"]["GLF"]["n"] == 2
    assert "by_dialect" not in compute_metrics([asr(REF, HYP)])["asr"]


def test_error_rates_match_jiwer_on_normalized_text():
    refs = ["الجو جميل اليوم", "افتتح الوزير مستشفى جديدا", "ترحيب"]
    hyps = ["الجو جميل جدا اليوم", "افتتح مستشفى", "ترحيب بكم"]
    r = error_rates(refs, hyps)
    assert r.wer == pytest.approx(jiwer.wer(refs, hyps)) and r.cer == pytest.approx(jiwer.cer(refs, hyps))


# -- summaries --------------------------------------------------------------------------------

def test_rouge_default_tokenizer_drops_arabic_ours_does_not():
    text = "افتتح الوزير مستشفى جديدا في القاهرة"
    assert RougeScorer(["rouge1", "rougeL"]).score(text, text)["rouge1"].fmeasure == 0.0
    ours = RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=ArabicTokenizer()).score(text, text)
    assert all(s.fmeasure == 1.0 for s in ours.values())
    # Diacritics and tatweel go before splitting (\w does not match them).
    assert ArabicTokenizer().tokenize("ذَهَبَ إلـــى") == ["ذهب", "الي"]


def test_rouge_by_hand():
    p = Prediction("s#ssum", "ssum", reference="ذهب الولد إلى المدرسة", prediction="ذَهَبَ الولد الى السوق",
                   parsed="ذَهَبَ الولد الى السوق")
    m = compute_metrics([p])["ssum"]
    # tokens: [ذهب الولد الي المدرسة] vs [ذهب الولد الي السوق]: 3 of 4 unigrams, 2 of 3 bigrams, LCS 3.
    assert m["rouge1"] == pytest.approx(0.75) and m["rouge2"] == pytest.approx(2 / 3)
    assert m["rougeL"] == pytest.approx(0.75) and m["n"] == 1


def test_bertscore_needs_its_package():
    try:
        import bert_score  # noqa: F401
    except ImportError:
        with pytest.raises(NabraError, match="pip install bert-score"):
            bertscore_f1(["نص"], ["نص"], "/nonexistent/model")
    else:
        pytest.skip("bert-score is installed; its scores need a local model")


# -- classification ---------------------------------------------------------------------------

def test_macro_f1_with_missing_classes_and_unparsed():
    preds = [label("did", "EGY", "EGY", 0), label("did", "GLF", None, 1, text=""),
             label("did", "GLF", "EGY", 2), label("did", "LAV", "LAV", 3)]
    m = compute_metrics(preds)["did"]
    assert m["accuracy"] == 0.5 and m["unparsed_rate"] == 0.25 and m["n"] == 4
    # F1: EGY 2/3 (P 1/2, R 1), GLF 0, LAV 1, and NOR, MSA absent everywhere: 0 (zero_division=0).
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0 + 1 + 0 + 0) / 5)
    assert m["macro_f1_present"] == pytest.approx((2 / 3 + 0 + 1) / 3)
    assert m["per_class"]["EGY"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1}
    cm = m["confusion"]
    assert cm["columns"] == ["EGY", "GLF", "LAV", "NOR", "MSA", "unparsed"]
    assert cm["matrix"][1] == [1, 0, 0, 0, 0, 1]  # GLF: once taken for EGY, once unparsed: shown, not dropped
    assert sum(map(sum, cm["matrix"])) == 4


def test_label_set_is_configurable():
    preds = [label("ser", "happy", "happy", 0), label("ser", "sad", None, 1)]
    m = compute_metrics(preds, task_set=TaskSet.default(emotions=EMOTIONS.with_names(["happy", "sad"])))["ser"]
    assert list(m["per_class"]) == ["happy", "sad"] and m["macro_f1"] == pytest.approx(0.5)


# -- skipping and the composite ---------------------------------------------------------------

def test_task_without_references_is_skipped_not_an_error():
    skipped = []
    preds = [Prediction("a#ssum", "ssum", prediction="ملخص", parsed="ملخص"), asr(REF, HYP)]
    m = compute_metrics(preds, skipped=skipped)
    assert list(m) == ["asr"] and len(skipped) == 1 and skipped[0].startswith("ssum: none of its 1 prediction")


def test_composite_by_hand():
    metrics = {"asr": {"wer": 0.2}, "ssum": {"rougeL": 0.5}, "tsum": {"rougeL": 0.7}, "did": {"macro_f1": 0.4}}
    assert composite_score(metrics) == pytest.approx((0.8 + 0.6 + 0.4) / 3)
    assert composite_score(metrics, {"asr": 2}) == pytest.approx((1.6 + 0.6 + 0.4) / 4)
    assert composite_score({"asr": {"wer": 1.5}, "ser": {"macro_f1": 0.5}}) == pytest.approx(0.25)  # 1-WER clipped
    assert math.isnan(composite_score({}))
    with pytest.raises(NabraError, match="unknown composite weight"):
        composite_score(metrics, {"rouge": 1.0})


# -- repetition loops ---------------------------------------------------------------------------


def test_repetition_loops_are_found_and_speech_is_not():
    looping = ["ال ال ال ال ال ال ال", "كتب المدير المدير المدير المدير المدير المدير", "لللللللللللل",
               "افتتح الوزير المستشفى. " + "وقال إن النتائج فاقت التوقعات. " * 3,
               "ذهب " * 6 + "\n", "ha ha ha ha ha ha ha"]
    speech = ["لا لا لا", "شكرا شكرا شكرا جزيلا", REF, "", "وقال المدير إن النتائج فاقت التوقعات. وقال الوزير إن "
              "النتائج فاقت التوقعات.", "المستشفى الجديد والمستشفى القديم والمستشفى الثالث"]
    assert [repetition_loop(t) for t in looping] == [True] * len(looping)
    assert [repetition_loop(t) for t in speech] == [False] * len(speech)


def test_looped_answers_are_counted_per_generative_task():
    preds = [asr(REF, "ال " * 10, i=0), asr(REF, REF, i=1), asr(REF, "ذهب " * 7, i=2),
             Prediction("d#tsum", "tsum", reference="ملخص قصير", prediction="ملخص ملخص ملخص ملخص ملخص ملخص"),
             label("did", "EGY", "EGY", 3, text="EGY EGY EGY EGY EGY EGY")]
    m = compute_metrics(preds)
    assert m["asr"]["looped"] == 2 and m["tsum"]["looped"] == 1
    assert "looped" not in m["did"]  # a label answer is parsed, never scored as text
    assert compute_metrics(preds[:1])["asr"]["cer"] > 1  # what a loop does to the error rate
