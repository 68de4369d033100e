import pytest

from nabra.corpus.labels import DIALECTS, EMOTIONS
from nabra.corpus.manifest import Utterance
from nabra.tasks import TEMPLATES, iter_examples, make_example, parse_label, parse_output

UTT = Utterance(id="u1", audio="/a.wav", transcript="الجو جميل", summary="طقس جميل", dialect="EGY", emotion="sad",
                split="train", duration=2.0)


def test_every_task_has_arabic_and_english_templates():
    for task, templates in TEMPLATES.items():
        assert len(templates) >= 4, task
        assert make_example(UTT, task, language="ar").instruction != make_example(UTT, task, language="en").instruction


def test_targets_and_audio_per_task():
    ex = {e.task: e for e in iter_examples([UTT])}
    assert set(ex) == {"asr", "ssum", "tsum", "did", "ser"}
    assert ex["asr"].target == "الجو جميل" and ex["asr"].audio == "/a.wav"
    assert ex["ssum"].target == "طقس جميل" and ex["ssum"].audio == "/a.wav"
    assert ex["tsum"].audio is None and "الجو جميل" in ex["tsum"].instruction  # text-only: transcript in the prompt
    assert ex["did"].target == ex["did"].label == "EGY"
    assert ex["ser"].target == ex["ser"].label == "sad"
    assert all(label in ex["did"].instruction for label in DIALECTS.names)
    assert ex["asr"].id == "u1#asr" and ex["asr"].utt_id == "u1"


def test_template_choice_is_seeded_per_example():
    utts = [Utterance(id=f"u{i}", audio="/a.wav", transcript="نص") for i in range(40)]
    a = [e.instruction for e in iter_examples(utts, seed=1)]
    assert a == [e.instruction for e in iter_examples(utts, seed=1)]
    assert a == [e.instruction for e in iter_examples(list(reversed(utts)), seed=1)][::-1]  # order-independent
    assert a != [e.instruction for e in iter_examples(utts, seed=2)]
    assert len(set(a)) > 3  # the templates are actually mixed


def test_unserved_task_is_an_error():
    with pytest.raises(ValueError, match="does not serve task 'did'"):
        make_example(Utterance(id="x", audio="/a.wav", transcript="نص"), "did")


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("EGY", DIALECTS, "EGY"),
        ("egy", DIALECTS, "EGY"),
        ("مصري", DIALECTS, "EGY"),
        ("مَصْرِيّ", DIALECTS, "EGY"),  # diacritics ignored
        ("اللهجة المصرية", DIALECTS, "EGY"),
        ("Egyptian.", DIALECTS, "EGY"),
        ("The dialect is Gulf", DIALECTS, "GLF"),
        ("الفصحى", DIALECTS, "MSA"),
        ("شامي أو مصري", DIALECTS, None),  # ambiguous
        ("لا أعرف", DIALECTS, None),
        ("", DIALECTS, None),
        ("سعيد", EMOTIONS, "happy"),
        ("Anger!", EMOTIONS, "angry"),
        ("surprised", EMOTIONS, "surprised"),
        ("حزين جدا", EMOTIONS, "sad"),
    ],
)
def test_parse_label(text, labels, expected):
    assert parse_label(text, labels) == expected


def test_parse_output_by_task():
    assert parse_output("did", " LAV ") == "LAV"
    assert parse_output("ser", "blah") is None
    assert parse_output("asr", "  نص  ") == "نص"
