from nabra.corpus.labels import DIALECTS, EMOTIONS, LabelSet, label_key


def test_lookup_by_name_or_alias_whatever_the_spelling():
    assert DIALECTS.lookup("egy") == "EGY"
    assert DIALECTS.lookup("  Egyptian ") == "EGY"
    assert DIALECTS.lookup("مَصْرِيَّة") == "EGY"  # diacritics
    assert DIALECTS.lookup("مصريه") == "EGY"  # ta marbuta written as ha
    assert DIALECTS.lookup("اللهجة الخليجية.") == "GLF"  # punctuation
    assert EMOTIONS.lookup("HAPPY") == "happy"
    assert EMOTIONS.lookup("bored") is None and EMOTIONS.lookup("") is None and EMOTIONS.lookup(None) is None
    assert DIALECTS.lookup("Egyptian dialect") is None  # exact only; parse_label searches inside text


def test_a_name_wins_over_another_labels_alias():
    labels = LabelSet("emotion", ("calm", "neutral"), {"neutral": ("calm",)})
    assert labels.lookup("calm") == "calm" and labels.lookup("Neutral") == "neutral"
    assert label_key("  Calm ") == "calm"
