"""Batch features against per-document references: the block-wise n-gram statistics of `prepare_ngrams`."""

import numpy as np
import pytest
from curate_helpers import doc
from hypothesis import given, settings
from hypothesis import strategies as st

from jpcurate.steps.repetition import ngram_hashes
from jpcurate.text import features
from jpcurate.text.charclass import codepoints


def reference_summary(text: str, n: int) -> tuple[int, int, int, int]:
    """(total, distinct, repeated, top) of one document's n-grams, from the left-to-right polynomial hash cut to
    the top 22 bits (the key `prepare_ngrams` sorts), counted with np.unique."""
    h = ngram_hashes(codepoints(text), n) >> np.uint64(64 - features.NGRAM_KEY_BITS)
    if len(h) == 0:
        return (0, 0, 0, 0)
    _, cnt = np.unique(h, return_counts=True)
    return (len(h), len(cnt), int((cnt > 1).sum()), int(cnt.max()))


TEXTS = ["吾輩は猫である。名前はまだ無い。" * 3, "", "短い", "あいうえおかきくけこ", "ああああああああああああ",
         "東京 大阪 ホテル 格安 予約 " * 5, "abcabcabcabc𠮷𠮷𠮷𠮷𠮷𠮷𠮷𠮷𠮷𠮷𠮷", "x" * 9, "y" * 10, "z" * 11]


@pytest.mark.parametrize("block", [1, 5, 40, 1 << 15])
@pytest.mark.parametrize("n", [1, 3, 10])
def test_block_statistics_equal_the_per_document_reference(monkeypatch, block, n):
    monkeypatch.setattr(features, "NGRAM_BLOCK", block)
    docs = [doc(t) for t in TEXTS * 2]
    features.prepare_ngrams(docs, n)
    assert [d.cache[f"ngram{n}"] for d in docs] == [reference_summary(t, n) for t in TEXTS * 2]


def test_more_documents_than_a_block_can_number():
    docs = [doc(("あい" * (i % 7)) + str(i)) for i in range(2600)]  # short documents: > 1023 per block
    features.prepare_ngrams(docs, 3)
    assert [d.cache["ngram3"] for d in docs] == [reference_summary(d.text, 3) for d in docs]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from("あいう漢字カナ。 ab\n𠮷"), max_size=40) | st.text(max_size=20),
                max_size=12), st.integers(1, 12), st.integers(1, 60))
def test_random_batches_match_the_reference(texts, n, block):
    features.NGRAM_BLOCK, saved = block, features.NGRAM_BLOCK
    try:
        docs = [doc(t) for t in texts]
        features.prepare_ngrams(docs, n)
    finally:
        features.NGRAM_BLOCK = saved
    assert [d.cache[f"ngram{n}"] for d in docs] == [reference_summary(t, n) for t in texts]


def test_batch_counts_equal_per_document_counts_and_language():
    from jpcurate.steps.langid import LanguageFilter

    texts = TEXTS + ["한국어 텍스트", "中文文本没有假名", "English only text.", "\ud800壊れ"]
    batch, single = [doc(t) for t in texts], [doc(t) for t in texts]
    features.prepare_counts(batch)
    for b, s in zip(batch, single):
        assert features.counts(s).tolist() == b.cache["counts"].tolist()
        assert features.codepoints(s).tolist() == b.cache["cps"].tolist()
    step = LanguageFilter(("ja",))
    assert step.apply_batch([doc(t) for t in texts]) == [step.apply(doc(t)) for t in texts]
    assert sum(v is None for v in step.apply_batch([doc(t) for t in texts])) >= 5


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("。．！？!?\n \t\u3000\u2029あ漢a")), max_size=40), st.booleans())
def test_longest_sentence_by_bodies_equals_the_split_definition(text, by_line):
    from jpcurate.steps.lines import MaxSentenceLength

    pat = features.SENTENCE_OR_LINE_END if by_line else features.SENTENCE_END
    want = max((len(p.strip()) for p in pat.split(text)), default=0)
    assert MaxSentenceLength(by_line=by_line).measure(doc(text)) == want
    assert features.sentences(doc(text), by_line=by_line) == [p.strip() for p in pat.split(text) if p.strip()]
