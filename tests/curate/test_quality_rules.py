"""The rules added for the quality set: NG words counted in context, bare tokens, broken endings."""

import pytest
from curate_helpers import PROSE

from jpcurate import Document, build_preset, run_pipeline
from jpcurate.steps.grammar import BrokenEndings
from jpcurate.steps.lines import BareTokens
from jpcurate.steps.ngwords import Context, Limit, NGWords
from jpcurate.steps.normalize import normalize_text

HISTORY = ("明治の初め、横浜の居留地には多くの支那人が住んでゐた。"
           "支那人の商人は茶や絹を商ひ、両替を営む者も少なくなかつた。"
           "当時の記録によれば、支那人の数は西洋人よりも多く、その町並は今日の中華街の起りとなつたのである。支那人の寺や"
           "会館も建てられ、祭の日には町中が賑はつたといふ。支那人と日本人との間の取引も次第に盛んになつた。")
NG = {"discrimination": Limit(max_hits=2, max_ratio=0.005)}


def _doc(text):
    return Document("x", normalize_text(text))


def test_a_period_term_repeated_without_hostility_is_a_mention():
    plain = NGWords(NG)
    assert plain.apply(_doc(HISTORY))[0] == "ngwords.discrimination"  # 5 hits of one word: the old verdict
    doc = _doc(HISTORY)
    assert NGWords(NG, context={"discrimination": Context()}).apply(doc) is None
    assert doc.values["ng_discrimination_mentions"] == 5 and doc.values["ng_discrimination_hits"] == 0
    kept, rejected, _ = run_pipeline(build_preset("ja-web"), [Document("h", HISTORY)])
    assert kept, rejected[0].detail


def test_the_same_word_next_to_hostile_words_is_abuse():
    hate = PROSE + "土人は国に帰れ。土人は死ね。あの土人どもはゴミだ。"
    doc = _doc(hate)
    verdict = NGWords(NG, context={"discrimination": Context()}).apply(doc)
    assert verdict[0] == "ngwords.discrimination" and doc.values["ng_discrimination_hits"] == 3
    kept, rejected, _ = run_pipeline(build_preset("ja-web"), [Document("h", hate)])
    assert rejected and rejected[0].reason == "ngwords.discrimination"


def test_three_distinct_slurs_count_without_a_cue():
    doc = _doc(PROSE + "キチガイ、池沼、土人。")
    assert NGWords(NG, context={"discrimination": Context()}).apply(doc)[0] == "ngwords.discrimination"
    assert doc.values["ng_discrimination_hits"] == 3


def test_the_cue_window_is_measured_in_characters():
    ng = NGWords({"discrimination": Limit(max_hits=0)}, context={"discrimination": Context(window=10)})
    near = "土人" + "あ" * 10 + "死ね"  # cue starts 10 characters after the word ends
    far = "土人" + "あ" * 11 + "死ね"
    assert ng.in_context(near, "discrimination", [(0, 2)]) == [(0, 2)]
    assert ng.in_context(far, "discrimination", [(0, 2)]) == []
    assert ng.in_context("死ね" + "あ" * 10 + "土人", "discrimination", [(12, 14)]) == [(12, 14)]
    with pytest.raises(ValueError, match="context given for categories not checked"):
        NGWords(NG, context={"adult": Context()})


TAG_CLOUD = "人気のタグ " + " ".join(["旅行", "グルメ", "温泉(12)", "カフェ", "ランチ", "DIY", "釣り", "猫(3)"] * 4)
MT_SALAD = ("副業である映画は焼肉は選び方でヘアアレンジであるスイーツするです。育児である音楽にブログと。"
            "ドライブの音楽であるスイーツは選び方をデメリットするファッションいるます。猫する投資にです。"
            "ホテルは予約をです。結婚式が和食であるキャンプとます。")


@pytest.mark.parametrize("rule, junk, code", [
    (BareTokens(hi=0.5), TAG_CLOUD, "bare_tokens"),
    (BrokenEndings(hi=0.3), MT_SALAD, "broken_endings"),
], ids=["bare_tokens", "broken_endings"])
def test_new_rules_reject_their_junk_and_keep_prose(rule, junk, code):
    assert rule.apply(_doc(junk))[0] == code
    assert rule.apply(_doc(PROSE)) is None


def test_bare_tokens_spares_enumerations_inside_prose_and_verse():
    wiki = ("東北地方は青森県、岩手県、宮城県、秋田県、山形県、福島県の六県からなる。" * 3
            + "この地方は冬の寒さが厳しく、日本海側は豪雪地帯として知られており、稲作が盛んである。")
    assert BareTokens(hi=0.5).measure(_doc(wiki)) < 0.5
    song = "\n".join(["日ハ君臨シ カガヤキハ", "白金ノアメ ソソギタリ", "ワレラハ黒キ ツチニ俯シ",
                      "マコトノクサノ タネマケリ"] * 3)
    assert BareTokens(hi=0.5).apply(_doc(song))[0] == "bare_tokens"
    assert BareTokens(hi=0.5, exempt_verse=True).apply(_doc(song)) is None


@pytest.mark.parametrize("text", ["それはそうです。ほんとうです。一つです。すぐです。行くのです。ありますです。",
                                  "ますます寒くなります。そういうことです。大丈夫です。近くです。見たいです。",
                                  "もう死にます。耳を澄ます。用を済ます。また逢いに来ます。待っていられます。"])
def test_broken_endings_counts_no_correct_ending(text):
    assert BrokenEndings(min_count=1).measure(_doc(text)) == 0.0


def test_broken_endings_measures_known_values():
    assert BrokenEndings(min_count=1).measure(_doc("食べるです。いるます。それはそうです。見ます。")) == 0.5
    assert BrokenEndings().measure(_doc("するです。")) == 0.0  # fewer than min_count=4 です/ます
