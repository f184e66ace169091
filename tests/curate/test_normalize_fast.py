"""The shortcuts inside `normalize_text` against the plain patterns they stand for."""

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from jpcurate.steps import normalize as N
from jpcurate.text.nfkc import nfkc

SOUP = st.text(alphabet=st.sampled_from(list(" \n\tあ漢aｱ［＃］｜《》底本：:\u200b\ufeff\x07\ud800\udfff\u3000\u00a0")),
               max_size=40)


@settings(max_examples=400, deadline=None)
@given(SOUP)
def test_strip_around_newlines_equals_the_regex(text):
    assert N.strip_around_newlines(text) == N.SPACE_AROUND_NEWLINE.sub("\n", text)


@settings(max_examples=400, deadline=None)
@given(SOUP)
def test_marker_and_invisible_prefilters_equal_the_full_searches(text):
    assert N.has_aozora_markers(text) == (N.AOZORA_MARKERS.search(text) is not None)
    either = N.INVISIBLE.search(text) is not None or N.LONE_SURROGATE.search(text) is not None
    assert (N.INVISIBLE_OR_SURROGATE.search(text) is not None) == either


def test_nfkc_leaves_no_odd_space_so_the_space_pass_can_skip_that_search():
    odd = [chr(c) for c in range(0x10000) if N.ODD_SPACE.match(chr(c))]
    assert len(odd) == 14 and all(unicodedata.normalize("NFKC", ch) == " " for ch in odd)
    assert N.normalize_text("a\u3000\u00a0 b\u2003\u2003c") == "a b c"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ＡＢｚ０９！？　①ｱ\u00a0あ漢abc")), max_size=50))
def test_one_for_one_nfkc_path_equals_unicodedata(text):
    # only characters NFKC maps to one character: the table path (`_MAP1` gather) runs
    assert nfkc(text) == unicodedata.normalize("NFKC", text)
