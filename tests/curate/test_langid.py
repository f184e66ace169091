import pytest
from curate_helpers import PROSE, doc

from jpcurate.steps.langid import LanguageFilter, identify


@pytest.mark.parametrize("text, lang", [
    (PROSE, "ja"),
    ("我们今天去北京大学参观，这里的学生非常努力学习中文和数学。", "zh"),
    ("오늘은 날씨가 좋아서 공원에 산책하러 갔습니다. 정말 즐거웠어요.", "ko"),
    ("The quick brown fox jumps over the lazy dog. It was a sunny day.", "en"),
    ("國破山河在、城春草木深。感時花濺涙、恨別鳥驚心。烽火連三月、家書抵萬金。白頭搔更短、渾欲不勝簪トイフ。", "ja"),
    ("这是一个中文网页，但是页面上有一个日本语的单词「の」，我们应该认为它是中文。", "zh"),
    ("12345 !!! ???", "und"),
])
def test_identify_languages(text, lang):
    assert identify(text)[0] == lang


def test_language_filter_stores_lang_and_score_and_names_the_language():
    d = doc("我们今天去北京大学参观，这里的学生非常努力学习。")
    code, detail = LanguageFilter(("ja",)).apply(d)
    assert code == "lang" and "zh" in detail and d.values["lang"] == "zh" and d.values["lang_score"] > 0.9
    d = doc(PROSE + " Tokyo Osaka")
    assert LanguageFilter(("ja",), min_score=0.99).apply(d)[0] == "lang"
    assert LanguageFilter(("ja",), min_score=0.5).apply(doc(PROSE)) is None
