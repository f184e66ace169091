"""Dedup normalisation: the numpy batch path equals the unicodedata specification on any Unicode."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from jpcurate.dedup.normalize import normalize_batch, normalize_for_dedup, text_hash128

TRICKY = "ｶﾞｷﾞﾊﾟＡＢｃ１２（）！？\u3000\u0301e\u00e9\ufb01\u2460\u32c0ｱ゛゜ﾞﾟが\u3099か\x1c\u2028 \t\nİẞ"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.one_of(st.sampled_from(TRICKY), st.characters()), max_size=40), max_size=6))
def test_batch_equals_specification(texts):
    assert normalize_batch(texts) == [normalize_for_dedup(t) for t in texts]


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_idempotent(text):
    once = normalize_for_dedup(text)
    assert normalize_for_dedup(once) == once


def test_folds_width_case_and_whitespace():
    assert normalize_for_dedup("  ＡＢＣ　ｶﾞｷﾞ\n\n１２３ ") == "abc ガギ 123"
    assert text_hash128(normalize_for_dedup("ＡＢＣ")) == text_hash128("abc")
