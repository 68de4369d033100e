import pytest

from nabra.text.arabic import normalize, strip_diacritics


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("مُدَرِّسَةٌ", "مدرسة"),  # harakat, shadda, tanween
        ("الـــكتاب", "الكتاب"),  # tatweel
        ("أحمد إلى آخر ٱلقول", "احمد الي اخر القول"),  # alef variants, alef maqsura
        ("على مستشفى", "علي مستشفي"),  # ى -> ي
        ("٠١٢٣٤٥٦٧٨٩", "0123456789"),  # Arabic-Indic digits
        ("۰۱۲۳۴۵۶۷۸۹", "0123456789"),  # Persian digits
        ("قال: «نعم»، ثم سأل؟ لا!", "قال نعم ثم سال لا"),  # Arabic and Latin punctuation
        ("قال:نعم", "قال نعم"),  # punctuation between words separates them
        ("  كلمة \t\n  أخرى  ", "كلمة اخري"),  # whitespace collapsed
        ("الرحمٰن", "الرحمن"),  # superscript alef
        ("", ""),
    ],
)
def test_default_scheme(raw, expected):
    assert normalize(raw) == expected


def test_ta_marbuta_folding_is_optional():
    assert normalize("مدرسة جميلة") == "مدرسة جميلة"
    assert normalize("مدرسة جميلة", ta_marbuta=True) == "مدرسه جميله"


def test_normalizer_is_idempotent():
    text = "قالَ المُعلِّمُ: «إلى الأمامِ» ١٢٣ — ٱلـــكتابُ؟"
    once = normalize(text)
    assert normalize(once) == once


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Latin punctuation and ، ؛ ؟ removed; « » are not in its class and stay.
        ("قال، نعم؛ لا؟ (حسنا).", "قال نعم لا حسنا"),
        ("«نعم»", "«نعم»"),
        # U+064B..U+0652 removed; superscript alef U+0670 and tatweel kept.
        ("مُدَرِّسَةٌ الرحمٰن الـــكتاب", "مدرسة الرحمٰن الـــكتاب"),
        # ى and ة are kept; hamza seats folded; bare hamza removed.
        ("على مدرسة", "على مدرسة"),
        ("أ إ آ ؤ ئ ماء", "ا ا ا و ي ما"),
        ("پ ڤ", "ب ف"),
        ("٢٠٢٤", "2024"),
        ("۴", "۴"),  # Persian digits are not mapped by the leaderboard
        ("  a  b  ", "a  b"),  # only the ends are stripped
    ],
)
def test_leaderboard_scheme_matches_its_reference(raw, expected):
    assert normalize(raw, "leaderboard") == expected


def test_unknown_scheme_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown normalization scheme 'nope'"):
        normalize("نص", "nope")


def test_strip_diacritics_keeps_letters():
    assert strip_diacritics("أَحْمَدُ") == "أحمد"


def test_is_blank_agrees_with_normalize():
    from nabra.text.arabic import is_blank

    samples = ["", " \t\n", "\u064e\u0640\u0651", "؟!", "...", "«»،؛", "\u0670", "ـــ", "a", "مرحبا", "١", "😀", "$",
               "x\u064e", "\u0627\u0654", "©", "ـ؟ـ", "\u064b\u064c 5"]
    for text in samples:
        assert is_blank(text) == (normalize(text) == ""), text
