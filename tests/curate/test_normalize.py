import unicodedata

from curate_helpers import PROSE, doc
from hypothesis import given, settings
from hypothesis import strategies as st

from jpcurate.steps.boilerplate import StripBoilerplate
from jpcurate.steps.normalize import Normalize, clean_aozora, normalize_text


def test_nfkc_controls_and_whitespace():
    raw = "ＡＢＣ１２３　ｶﾀｶﾅ\x00\x07\u200b\ufeff本文\r\n\r\n\r\n\r\n次の\t\t段落 "
    assert normalize_text(raw) == "ABC123 カタカナ本文\n\n次の 段落"
    assert normalize_text(raw, nfkc=False).startswith("ＡＢＣ１２３")


def test_html_entities_and_tag_remnants():
    raw = "<div class=\"x\">東京&amp;大阪</div><br/>&lt;b&gt;太字&#x3042;&#12354; <!-- comment -->"
    assert normalize_text(raw) == "東京&大阪太字ああ"


def test_aozora_markup_on_the_bundled_raw_files(data_dir):
    for path in sorted((data_dir / "aozora" / "raw").glob("*.txt")):
        text = normalize_text(path.read_text(encoding="utf-8"))
        for mark in ("《", "》", "［＃", "｜", "底本：", "【テキスト中に現れる記号について】"):
            assert mark not in text, (path.name, mark)
        assert len(text) > 300


def test_aozora_ruby_and_notes():
    raw = "｜吾輩《わがはい》は猫《ねこ》である。※［＃「てへん＋劣」、第3水準1-84-77］［＃ここから2字下げ］"
    assert clean_aozora(raw) == "吾輩は猫である。"


def test_web_text_keeps_guillemets_but_drops_kana_ruby():
    assert normalize_text("《重要》お知らせ") == "《重要》お知らせ"
    assert normalize_text("漢字《かんじ》を読む") == "漢字を読む"


def test_ja_punct_option():
    assert normalize_text("これは，テスト．", ja_punct=True) == "これは、テスト。"
    assert normalize_text("1,234.5", ja_punct=True) == "1,234.5"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_normalisation_is_idempotent(text):
    once = normalize_text(text)
    assert normalize_text(once) == once


SOUP = "&amp;lt;gt;#x30<>/b《》｜［＃］漢かな\n 　ＡＢ＜＞＆︽︾\u200b\u3099\t"


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet=st.sampled_from(list(SOUP)), max_size=80))
def test_normalisation_is_idempotent_on_markup_soup(text):
    once = normalize_text(text)
    assert normalize_text(once) == once
    assert unicodedata.is_normalized("NFKC", once)


def test_normalize_step_rejects_what_becomes_empty():
    d = doc("<br>\u200b  ")
    assert Normalize().apply(d) == ("empty", "no text after normalisation")


def test_boilerplate_removed_at_both_ends_only():
    text = "\n".join([
        "ホーム > ブログ > 日記",
        "メニュー",
        PROSE,
        "詳しくはこちら（本文中の言及は残る）。",
        PROSE,
        "続きを読む",
        "シェア ツイート いいね！",
        "Copyright © 2024 Example Inc. All Rights Reserved.",
        "ページの先頭へ戻る",
    ])
    d = doc(text)
    assert StripBoilerplate().apply(d) is None
    assert d.text.startswith("吾輩は猫") and d.text.endswith("話である。")
    assert "詳しくはこちら" in d.text
    assert d.values["n_boilerplate_lines"] == 6


def test_boilerplate_only_page_is_empty():
    d = doc("ホーム\nログイン\nお問い合わせ\nプライバシーポリシー")
    assert StripBoilerplate().apply(d)[0] == "empty"


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(list("ｶﾞﾊﾟｱ①㈱㍿ＡＢ！？　가각ᄀ\u3099か")),
               max_size=40))
def test_fast_nfkc_equals_unicodedata(text):
    from jpcurate.text.nfkc import nfkc

    assert nfkc(text) == unicodedata.normalize("NFKC", text)
