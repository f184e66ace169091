"""`TrieMatcher.find_batch` (numpy candidate positions, then the pattern tried only there) against the
alternation reference, and `NGWords.apply_batch` against its per-document `apply`."""

import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from jpcurate.document import Document
from jpcurate.presets.ja_web import LIST_LIMIT, NG_LIMIT
from jpcurate.steps.ngwords import NGWords
from jpcurate.text.charclass import codepoints
from jpcurate.text.wordmatch import TrieMatcher

ALPHABET = "あいうアイ漢.* 𠮷𩸽\n"


def reference_spans(words, text):
    """Python re alternation, longest words first: leftmost-longest non-overlapping matches."""
    pat = re.compile("|".join(re.escape(w) for w in sorted(set(words), key=lambda w: (-len(w), w))))
    return [m.span() for m in pat.finditer(text)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=ALPHABET, min_size=1, max_size=4), min_size=1, max_size=12),
       st.lists(st.text(alphabet=ALPHABET, max_size=40), min_size=1, max_size=6))
def test_find_batch_equals_the_alternation_reference(words, texts):
    got = TrieMatcher(words).find_batch(texts, [codepoints(t) for t in texts])
    assert got == [reference_spans(words, t) for t in texts]


def test_words_split_across_documents_and_one_character_words():
    m = TrieMatcher(["膣", "エロ", "𠮷野", "𩸽x"])
    texts = ["あのエ", "ロ本", "膣", "", "𠮷", "野𠮷野𩸽y𩸽x", "エ"]  # "エ|ロ" spans two texts: no hit
    assert m.find_batch(texts, [codepoints(t) for t in texts]) == [m.find(t) for t in texts]
    assert m.find_batch(texts, [codepoints(t) for t in texts])[5] == [(1, 3), (5, 7)]
    assert TrieMatcher([]).find_batch(texts, [codepoints(t) for t in texts]) == [[] for _ in texts]


def test_ngwords_batch_equals_per_document_on_web_text(data_dir):
    texts = [json.loads(line)["text"] for line in open(data_dir / "web_ja" / "fineweb2_edu_ja_sample.jsonl",
                                                       encoding="utf-8")]
    texts += ["エロ動画 無修正 人妻 エロ画像 熟女 巨乳 " * 5, "送料無料 最安値 激安 " * 20]
    step = NGWords({"adult": NG_LIMIT, "violence": NG_LIMIT, "ads": LIST_LIMIT, "bbs": LIST_LIMIT})
    one = [Document(str(i), t) for i, t in enumerate(texts)]
    batch = [Document(str(i), t) for i, t in enumerate(texts)]
    verdicts = step.apply_batch(batch)
    assert verdicts == [step.apply(d) for d in one]
    assert [d.values for d in batch] == [d.values for d in one]
    assert verdicts[-2][0] == "ngwords.adult" and verdicts[-1][0] == "ngwords.ads"
    assert sum(d.values["ng_ads_hits"] for d in batch[:-2]) > 0  # the web pages hold some hits too
