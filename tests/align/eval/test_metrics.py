"""llm-jp-eval's metrics on the peer's own values (fuzzywuzzy 0.18 + python-Levenshtein, as llm-jp-eval pins)."""

import math

import pytest
from rapidfuzz import fuzz
from rapidfuzz.utils import default_process

from jpalign.eval import char_f1, exact_match, pearson, set_f1, spearman
from jpalign.eval.metrics import fuzzywuzzy_process, normalize, parse_float

# fuzzywuzzy.fuzz.token_sort_ratio values with the python-Levenshtein backend
# (/work/shared/anchors/posttrain-eval-anchors.md section 1.2)
PEER = [
    ("聖武天皇です", "聖武天皇", 80),
    ("東京都、大阪府", "大阪府、東京都", 100),  # punctuation splits tokens, order ignored
    ("東京都大阪府", "大阪府東京都", 50),  # one token each: order matters
    ("ABC", "abc", 100),  # lower-cased
    ("水素と酸素", "酸素と水素", 60),  # 40 with difflib's fallback, 60 with python-Levenshtein
]


@pytest.mark.parametrize("pred,gold,peer", PEER)
def test_char_f1_equals_fuzzywuzzy_levenshtein(pred, gold, peer):
    assert char_f1(pred, gold) == peer / 100
    # the anchor's equivalence claim: rapidfuzz + default_process gives the same on these pairs
    assert round(fuzz.token_sort_ratio(pred, gold, processor=default_process)) == peer


def test_char_f1_rounds_to_whole_percents_like_fuzzywuzzy():
    assert char_f1("聖武天皇", "聖武天皇の時代") == 0.73  # 2*4/11 = 72.7%
    assert char_f1("abcdefgh", "abcdexyz") == 0.62  # 62.5% -> Python round half to even, as fuzzywuzzy's intr


def test_char_f1_processing_differs_from_default_process_where_fuzzywuzzy_does():
    # fuzzywuzzy's \W keeps "_" (a word character): "a_b" vs "a b" is 2*2/6 -> 67
    assert fuzzywuzzy_process("a_b") == "a_b" and char_f1("a_b", "a b") == 0.67
    assert fuzz.token_sort_ratio("a_b", "a b", processor=default_process) == 100  # not a drop-in here
    # force_ascii drops U+0080..U+00FF: "café" becomes "caf"
    assert char_f1("café", "caf") == 1.0
    assert fuzzywuzzy_process("「東京」。ＡＢＣ") == "東京  ａｂｃ"  # brackets become spaces, full width lower-cased
    assert fuzzywuzzy_process("東京都、大阪府。ABC") == "東京都 大阪府 abc"


def test_char_f1_edges():
    assert char_f1("", "") == 1.0  # fuzzywuzzy: equal strings are 100 before the empty check
    assert char_f1("。", "、") == 1.0  # both process to ""
    assert char_f1("東京", "") == 0.0 and char_f1("", "東京") == 0.0
    assert 0.0 <= char_f1("全く違う", "答え") <= 1.0


def test_exact_match_and_normalize():
    assert exact_match("entailment", "entailment") == 1.0
    assert exact_match("entailment ", "entailment") == 0.0
    assert isinstance(exact_match("0", "1"), float)
    assert normalize("ＡＢＣ１２３") == "ABC123" and normalize("ｶﾀｶﾅ") == "カタカナ"


def test_set_f1_as_llm_jp_eval():
    assert set_f1("a\nb", "a\nb") == 1.0
    assert set_f1("a\nc", "a\nb") == 0.5
    # duplicate predicted lines count once: precision 1/1, recall 1/2
    assert set_f1("a\na\na", "a\nb") == pytest.approx(2 / 3)
    # gold duplicates are not removed: recall counts distinct predicted hits against all gold lines
    assert set_f1("a", "a\na") == pytest.approx(2 * 1 * 0.5 / 1.5)
    assert set_f1(" a \n b", "a\nb") == 1.0  # lines are stripped
    assert set_f1("x", "a") == 0.0


def test_correlations_known_values():
    x, y = [1, 2, 3, 4, 5], [2, 4, 5, 4, 5]
    assert pearson(x, y) == pytest.approx(0.7745966692414834)  # scipy.stats.pearsonr
    assert spearman(x, y) == pytest.approx(0.7378647873726218)  # scipy.stats.spearmanr (average-tie ranks)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(pearson([1, 1, 1], [1, 2, 3])) and math.isnan(pearson([1], [2]))
    with pytest.raises(ValueError, match="one length"):
        pearson([1, 2], [1])


def test_parse_float_like_llm_jp_eval():
    assert parse_float("3.0") == 3.0 and parse_float(" 4 ") == 4.0 and parse_float("類似度：2.5") == 2.5
    assert parse_float("とても似ている") is None and parse_float("") is None
