import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jpcurate.document import Document
from jpcurate.steps.ngwords import Limit, NGWords
from jpcurate.text.wordmatch import MorphemeChecker, TrieMatcher, script_boundary_ok


def reference_spans(words, text):
    """Python re alternation, longest words first: leftmost-longest non-overlapping matches."""
    pat = re.compile("|".join(re.escape(w) for w in sorted(set(words), key=lambda w: (-len(w), w))))
    return [m.span() for m in pat.finditer(text)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="あいうアイ漢.*", min_size=1, max_size=4), min_size=1, max_size=12),
       st.text(alphabet="あいうアイ漢.* ", max_size=60))
def test_trie_matcher_equals_the_alternation_reference(words, text):
    assert TrieMatcher(words).find(text) == reference_spans(words, text)


def test_script_boundary_check():
    text = "ロリポップを食べて、ころりと転んだ。ロリ画像"
    m = TrieMatcher(["ロリ", "ろり"])
    spans = m.find(text)
    assert [text[s:e] for s, e in spans] == ["ロリ", "ろり", "ロリ"]
    assert [script_boundary_ok(text, s, e) for s, e in spans] == [False, False, True]
    assert not script_boundary_ok("Essex", 2, 5) and script_boundary_ok("sex toys", 0, 3)


def test_morpheme_boundaries_and_old_kana():
    pytest.importorskip("fugashi")
    pytest.importorskip("unidic_lite")
    mc = MorphemeChecker()
    text = "そんな事はちつとも知らなかつた。"
    s = text.index("ちつ")
    assert not mc.ok(text, s, s + 2)  # 旧仮名 ちつとも = ちっとも
    text2 = "女中が来た。"
    assert mc.ok(text2, 0, 2)


def test_limits_need_both_hits_and_ratio():
    ng = NGWords({"adult": Limit(max_hits=2, max_ratio=0.01)}, boundary="script")
    one = Document("a", "この映画はエロくない。" + "普通の文章です。" * 20)
    assert ng.apply(one) is None and one.values["ng_adult_hits"] == 1
    many = Document("b", "エロ動画 エロ画像 アダルトビデオ 無修正 " * 3)
    code, detail = ng.apply(many)
    assert code == "ngwords.adult" and "hits" in detail and many.values["ng_adult_ratio"] > 0.01


def test_custom_word_list_file(tmp_path):
    f = tmp_path / "mine.txt"
    f.write_text("# comment\n禁止語\n", encoding="utf-8")
    ng = NGWords({"mine": Limit(max_hits=0)}, files={"mine": str(f)})
    assert ng.apply(Document("x", "これは禁止語です"))[0] == "ngwords.mine"


def test_boundary_checks_avoid_the_aozora_false_positives(data_dir):
    """HojiChar's any-hit substring matching rejects a large share of literature; boundary checks do not."""
    from jpcurate.lm.build_default import aozora_excerpts

    texts = aozora_excerpts(data_dir / "aozora" / "works.jsonl")
    cats = {c: Limit(max_hits=0) for c in ("adult", "discrimination", "violence")}

    def rejected(boundary):
        ng = NGWords(cats, boundary=boundary)
        return sum(ng.apply(Document(str(i), t)) is not None for i, t in enumerate(texts))

    substring, script = rejected("none"), rejected("script")
    assert script <= 0.6 * substring  # measured 20 vs 39 of 244 excerpts; the rest are kanji words (殺す)
