"""ja-web keeps verse and old prose and still removes the line-shaped junk: the verse detector, the exemptions it
drives, and the perplexity second chances (katakana folded to hiragana, a wider limit for verse)."""

import pytest
from curate_helpers import PROSE

from jpcurate import Document, build_preset, run_pipeline
from jpcurate.steps.charstats import ClassFraction
from jpcurate.steps.lines import LineEndPunct, ShortLines
from jpcurate.steps.naturalness import NaturalnessFilter, fold_katakana
from jpcurate.steps.normalize import normalize_text
from jpcurate.steps.repetition import DupLines
from jpcurate.steps.verse import is_verse, verse_score

TANKA = ("その子二十櫛にながるる黒髪のおごりの春のうつくしきかな\n\n"
         "清水へ祇園をよぎる桜月夜こよひ逢ふ人みなうつくしき\n\n"
         "やは肌のあつき血汐にふれも見でさびしからずや道を説く君\n\n髪五尺ときなば水にやはらかき少女ごころは秘めて放たじ")
POEM = ("幾時代かがありまして\n茶色い戦争ありました\n\n幾時代かがありまして\n冬は疾風吹きました\n\n"
        "幾時代かがありまして\n"
        "今夜此処での一と殷盛り\n今夜此処での一と殷盛り\n\nサーカス小屋は高い梁\nそこに一つのブランコだ\n見えるともないブランコだ")
KATAKANA_POEM = ("雨ニモマケズ\n風ニモマケズ\n雪ニモ夏ノ暑サニモマケヌ\n丈夫ナカラダヲモチ\n慾ハナク\n決シテ瞋ラズ\n"
                 "イツモシヅカニワラッテヰル\n一日ニ玄米四合ト\n味噌ト少シノ野菜ヲタベ\nアラユルコトヲ\n"
                 "ジブンヲカンジョウニ入レズニ\nヨクミキキシワカリ\nソシテワスレズ")
CHORUS = "ありがとう ありがとう\n出会えた奇跡に\nありがとう ありがとう\n君と過ごした日々に"
LYRICS = (f"桜舞う校庭で\n最後のチャイムが鳴る\n泣かないと決めたのに\n頬をつたう春の雨\n\n{CHORUS}\n\n"
          f"それぞれの道を行く\n振り返らずに進もう\nこの空がつながってる\nいつかまた会えるまで\n\n{CHORUS}")
OLD_KANA = ("私はその日、久しぶりに故郷の町を歩いてゐた。川のほとりには昔と変らぬ柳が並び、子供たちが水際で遊んでゐる。"
            "あの頃のやうに、母が呼ぶ声が聞えて来るやうな気がして、私は思はず立ち止つた。さうして暫くの間、夕日に染まる"
            "山の端を眺めてゐたのである。")
SOROBUN = ("仰の如く近來和歌は一向に振ひ不申候。正直に申し候へば萬葉以來實朝以來一向に振ひ不申候。"
           "實朝といふ人は三十にも"
           "足らでいざ是からといふ處にてあへなき最期を遂げられ誠に殘念致し候。あの人をして今十年も活かして置いたならどんなに"
           "名歌を澤山殘したかも知れ不申候。")
MENU = "\n".join(["ホーム", "カート", "ポイント", "ログイン", "マイページ", "お知らせ", "会社概要", "サイトマップ"])
TAGS = "\n".join(["旅行 グルメ 温泉", "カフェ ランチ ディナー", "釣り キャンプ 登山", "猫 犬 ペット",
                  "映画 音楽 ライブ"])
LISTING = "\n".join(f"【東京都】中央区 {i}LDK 家賃8.5万円 駅徒歩{i}分" for i in range(1, 9))


def _doc(text):
    return Document("x", normalize_text(text))


@pytest.mark.parametrize("text", [TANKA, POEM, KATAKANA_POEM, LYRICS], ids=["tanka", "poem", "katakana", "lyrics"])
def test_verse_is_detected(text):
    assert verse_score(_doc(text)) == (True, "verse")


@pytest.mark.parametrize("text, why", [(MENU, "particles"), (TAGS, "particles"), (LISTING, "script"),
                                       (PROSE, "lines"), ("\n".join([PROSE[:16]] * 6), "closed")],
                         ids=["menu", "tags", "listing", "prose", "repeated-sentences"])
def test_menus_lists_and_prose_are_not_verse(text, why):
    assert verse_score(_doc(text)) == (False, why)


@pytest.mark.parametrize("text", [TANKA, POEM, KATAKANA_POEM, LYRICS, OLD_KANA, SOROBUN],
                         ids=["tanka", "poem", "katakana", "lyrics", "old-kana", "sorobun"])
def test_ja_web_keeps_verse_and_old_prose(text):
    kept, rejected, _ = run_pipeline(build_preset("ja-web"), [Document("x", text)])
    assert kept, (rejected[0].reason, rejected[0].detail)


@pytest.mark.parametrize("rule, text", [
    (ShortLines(hi=0.5, exempt_verse=True), KATAKANA_POEM),
    (LineEndPunct(lo=0.3, chars_weighted=True, exempt_verse=True), TANKA),
    (ClassFraction(("katakana",), ("hiragana", "katakana", "kanji"), hi=0.5, name="katakana_frac",
                   exempt_verse=True), KATAKANA_POEM),
    (DupLines(hi=0.3, verse_hi=0.6), LYRICS),
], ids=["short_lines", "line_end_punct", "katakana_frac", "dup_lines"])
def test_exemptions_keep_verse_that_the_plain_rule_rejects(rule, text):
    plain = type(rule).__new__(type(rule))
    plain.__dict__.update(rule.__dict__, exempt_verse=False, verse_hi=None)
    assert plain.apply(_doc(text)) is not None  # the rule alone rejects this verse
    doc = _doc(text)
    assert rule.apply(doc) is None and doc.values["verse"] == 1


@pytest.mark.parametrize("rule, text, code", [
    (ShortLines(hi=0.5, exempt_verse=True), MENU, "short_lines"),
    (LineEndPunct(lo=0.3, chars_weighted=True, exempt_verse=True), LISTING, "line_end_punct"),
    (DupLines(hi=0.3, verse_hi=0.6), "\n".join(["春の日の夕暮は静かです"] * 8), "dup_lines"),
], ids=["menu", "listing", "repeated-line"])
def test_exempt_rules_still_reject_junk(rule, text, code):
    assert rule.apply(_doc(text))[0] == code


def test_dup_lines_leaves_out_scene_separators():
    text = "\n×\n".join([PROSE[:60], PROSE[60:120], PROSE[120:180], PROSE[180:]])
    assert DupLines(hi=0.3).apply(_doc(text))[0] == "dup_lines"  # 2 of 7 lines repeat "×"
    assert DupLines(hi=0.3, min_len=2).apply(_doc(text)) is None


def test_kana_fold_scores_katakana_okurigana_as_the_hiragana_text_it_is():
    assert fold_katakana("雨ニモマケズ、ホテル") == "雨にもまけず、ほてる"
    model = NaturalnessFilter().model
    text = normalize_text(KATAKANA_POEM)
    raw, folded = model.perplexity(text), model.perplexity(fold_katakana(text))
    assert folded < raw / 2  # measured 5x lower with the shipped model
    limit = (raw * folded) ** 0.5
    assert NaturalnessFilter(max_ppl=limit).apply(_doc(text))[0] == "perplexity"
    doc = _doc(text)
    assert NaturalnessFilter(max_ppl=limit, kana_fold=True).apply(doc) is None
    assert doc.values["ppl"] == pytest.approx(folded, rel=1e-3)


def test_verse_factor_widens_the_limit_for_verse_only():
    model = NaturalnessFilter().model
    verse, prose = normalize_text(TANKA), normalize_text(OLD_KANA)
    limit = model.perplexity(verse) / 1.5
    assert model.perplexity(prose) > limit / 10  # both scored by the same model
    assert NaturalnessFilter(max_ppl=limit).apply(_doc(verse))[0] == "perplexity"
    assert NaturalnessFilter(max_ppl=limit, verse_factor=2.0).apply(_doc(verse)) is None
    junk = "\n".join(["格安 ホテル 予約", "最安値 比較 口コミ", "温泉 旅館 ランキング", "東京 大阪 名古屋"])
    lim_junk = model.perplexity(normalize_text(junk)) / 1.5
    assert not is_verse(_doc(junk))
    assert NaturalnessFilter(max_ppl=lim_junk, verse_factor=2.0).apply(_doc(junk))[0] == "perplexity"
    with pytest.raises(ValueError, match="verse_factor"):
        NaturalnessFilter(verse_factor=0.5)


def test_a_paragraph_line_counts_as_a_sentence_with_long_line():
    essay = normalize_text(OLD_KANA.replace("。", "、") + "\n――(一九二八・四)――")  # no 。 at all, a date last
    assert LineEndPunct(lo=0.25, chars_weighted=True).apply(_doc(essay))[0] == "line_end_punct"
    assert LineEndPunct(lo=0.25, chars_weighted=True, long_line=100).apply(_doc(essay)) is None
    listing = "\n".join(f"格安航空券の比較と予約ならこちらのサイトで最安値をチェック{i}番" for i in range(8))
    assert LineEndPunct(lo=0.25, chars_weighted=True, long_line=100).apply(_doc(listing))[0] == "line_end_punct"
