"""Every rejection code of every step of every preset, triggered by a crafted string through the preset's own
step object (so with the preset's thresholds)."""

import pytest
from curate_helpers import PROSE

from jpcurate.document import Document
from jpcurate.presets import PRESETS, build_preset

ZH = "我们今天去北京大学参观，这里的学生非常努力学习中文和数学。" * 5
EN = ("The committee met on Tuesday and agreed that the new library would open in the spring. "
      "Residents have waited years for it, and the mayor said that the building will have a large reading room "
      "with windows facing the river, a children's section and a small cafe. ") * 2
ADULT = "エロ動画と無修正のアダルトビデオ、人妻と熟女のセックス。"
SAME_LINE = "同じ行が何度も繰り返されます。"
KEYWORDS = "東京 大阪 名古屋 福岡 札幌 ホテル 格安 予約 最安値 比較 ランキング 口コミ 評判 おすすめ 人気 "
NO_PUNCT_LINES = "\n".join(f"格安航空券の比較と予約ならこちらのサイトで最安値をチェック{i}番" for i in range(8))
ADS = "送料無料！最安値！激安！特価セール！期間限定！数量限定！クーポン！お買い得！税込！在庫あり！今すぐ購入！"
BBS = "名無しさん 返信 レス スレ主 スレッド ワロタ 禿同 kwsk 通報しました コメント欄 "
ELEVEN = "one two three four five six seven eight nine ten eleven "

# code -> text (or (text, meta)); preset-specific overrides in OVERRIDES[(preset, code)].
TRIGGERS: dict[str, object] = {
    "too_long": "あ" * 1_000_001,
    "empty": "",
    "min_chars": "短い文です。",
    "lang": ZH,
    "mojibake": PROSE + "縺薙ｌ縺ｯ譁�ｭ怜喧縺代〒縺吶" * 3,
    "kana_frac": "本日営業時間変更告知。臨時休業日程確認。" * 10,
    "katakana_frac": "アイウエオカキクケコサシスセソ。" * 10,
    "symbols": PROSE + "★☆■□◆◇※→←↑↓" * 10,
    "digits": PROSE + "0123456789" * 20,
    "short_lines": "\n".join(["ホーム", "会社概要", "製品", "採用", "問合せ", "ブログ"] * 3) + "\n" + PROSE,
    "line_end_punct": NO_PUNCT_LINES,
    "max_sentence": "あ、" * 2100,
    "code": "\n".join(["function foo(x) {", "  var a = x + 1;", "  return a;", "}", "これはコードです。"]),
    "dup_lines": "\n".join([PROSE] + [SAME_LINE] * 5),
    "top_3gram": "あいう" * 100,
    "dup_10gram": PROSE * 3,
    "ngwords.adult": PROSE + ADULT * 2,
    "ngwords.discrimination": PROSE + "キチガイ、池沼、土人、キチガイ、池沼。",
    "ngwords.violence": PROSE + "覚醒剤と大麻とコカインの密売。覚醒剤。",
    "ngwords.ads": ADS + PROSE,
    "ngwords.bbs": BBS + "名無しさん 返信 レス 投稿者 " + PROSE,
    "ngwords.ng": PROSE + ADULT * 3,
    "ads.ads": ADS + "割引 税抜 返品 " + PROSE,
    "bbs.bbs": BBS * 2 + PROSE,
    "url.blocked_domain": (PROSE, {"url": "https://hayabusa.5ch.net/test/read.cgi/news/1"}),
    "url.pattern": (PROSE, {"url": "https://shop.example.com/cart/add?id=3"}),
    "url.invalid": (PROSE, {"url": "not a url"}),
    "url.tld": (PROSE, {"url": "https://example.ru/page"}),
    "perplexity": KEYWORDS * 5,
    "num_letters": PROSE,
    "num_ja_letters": "abc " * 150 + PROSE,
    "hiragana_frac": "東京タワー展望台営業時間案内。" * 5,
    "ja_frac": PROSE + "abcdefghij" * 50,
    "sentence_len": "はい。" * 50,
    "ellipsis": "そして…。" * 10,
    "dup_paragraphs": "\n".join([PROSE] + [SAME_LINE] * 5),
    "dup_paragraph_chars": "\n".join([PROSE] + [SAME_LINE * 3] * 5),
    "dup_sentences": "同じ文です。" * 10,
    "dup_sentence_chars": "同じ文です。" * 10,
    "top_2gram": "あいう" * 100,
    "top_4gram": "あいう" * 100,
    **{f"dup_{n}gram": PROSE * 3 for n in range(5, 11)},
    "kana_prefix": "東京都千代田区丸内一丁目" * 5 + PROSE,
    "kuten": "これは句点のない長い文章です" * 30,
    "compression": "あ" * 2000,
    "doc_length": "短い。",
    "char_run": "あ" * 250 + PROSE,
    "char_repetition": "あいう" * 100,
    "ellipsis_lines": "\n".join(["続きは…"] * 10),
    "special_chars": "!!!???***" * 20 + "あ",
    "dup_line_frac": "\n".join(["the same line again"] * 10),
    "dup_para_frac": "\n\n".join(["same paragraph here"] * 5),
    "dup_line_char_frac": "\n".join(["the same line again"] * 10),
    "dup_para_char_frac": "\n\n".join(["same paragraph here"] * 5),
    "top_word_2gram": "of the " * 100,
    "top_word_3gram": "one two three " * 50,
    "top_word_4gram": "one two three four " * 50,
    **{f"dup_word_{n}gram": ELEVEN * 5 for n in range(5, 11)},
    "word_count": "Too few words here.",
    "mean_word_len": "a b c d e f g " * 20,
    "symbol_word_ratio": "# # # word " * 30,
    "bullet_lines": "\n".join(["• item number one"] * 20),
    "alpha_words": "123 456 789 " * 30 + "word",
    "stop_words": "Quick brown foxes jump over lazy dogs repeatedly. " * 10,
    "line_punct_ratio": NO_PUNCT_LINES,
    "char_dup_ratio": "\n".join([PROSE] + [SAME_LINE] * 5),
    "newline_ratio": "\n".join(["単語"] * 50),
    "noun_ratio": "東京 大阪 名古屋 福岡 札幌 ホテル 旅館 温泉 空港 駅 " * 5,
    "word_repetition": "猫が走る。" * 40,
    "bare_tokens": "タグ: " + " ".join(["旅行", "グルメ", "温泉(12)", "カフェ", "ランチ", "DIY", "釣り", "猫(3)"] * 4),
    "broken_endings": "ホテルは予約するです。温泉にいるます。東京をです。結婚式がます。カフェは選び方である。" * 2,
}
OVERRIDES = {
    ("swallow", "max_sentence"): "あいうえお、" * 50,
    ("fineweb2-ja", "word_count"): "短い文。",
    ("fineweb2-ja", "mean_word_len"): "アイウエオカキクケコサシスセソタチツテト " * 20,
    ("fineweb2-ja", "stop_words"): "東京タワー 大阪城 名古屋城 " * 20,
    ("fineweb2-ja", "alpha_words"): "123 456 789 " * 30 + "単語",
    ("fineweb2-ja", "lang"): PROSE + "Tokyo Osaka Nagoya Fukuoka " * 3,
    ("fineweb2-ja", "dup_line_frac"): "\n".join([SAME_LINE] * 10),
    ("fineweb2-ja", "top_word_2gram"): "猫と犬" * 200,
    ("fineweb2-ja", "top_word_3gram"): "猫と犬が" * 200,
    ("fineweb2-ja", "top_word_4gram"): "猫と犬が" * 200,
    **{("fineweb2-ja", f"dup_word_{n}gram"): PROSE * 3 for n in range(5, 11)},
    ("fineweb2-ja", "symbol_word_ratio"): "#タグ #名前 #猫 " * 30,
    ("fineweb2-ja", "bullet_lines"): "\n".join(["・項目です"] * 20),
    ("fineweb2-ja", "ellipsis_lines"): "\n".join(["続きは…"] * 10),
    ("gopher-en", "empty"): "",
    ("hojichar", "ngwords.adult"): PROSE + "エロ",
    ("hojichar", "ngwords.discrimination"): PROSE + "池沼",
    ("hojichar", "ngwords.violence"): PROSE + "大麻",
    ("llmjp-v1", "ngwords.adult"): PROSE + ADULT * 2,
}


def _cases():
    for preset in sorted(PRESETS):
        for mecab in (False, True):
            if mecab and preset not in ("hojichar", "ja-web"):
                continue
            steps = build_preset(preset, mecab=mecab) if not mecab else None
            names = [s.name for s in steps] if steps is not None else ["noun_ratio", "word_repetition"]
            for name in names:
                yield preset, mecab, name


def _step(preset, mecab, name):
    return next(s for s in build_preset(preset, mecab=mecab) if s.name == name)


@pytest.mark.parametrize("preset, mecab, name", list(_cases()))
def test_every_reason_is_triggered(preset, mecab, name):
    if mecab:
        pytest.importorskip("fugashi")
        pytest.importorskip("unidic_lite")
        if preset == "ja-web" and name == "word_repetition":
            pytest.skip("ja-web has no word-repetition rule")
    step = _step(preset, mecab, name)
    for code in step.reasons():
        case = OVERRIDES.get((preset, code), TRIGGERS.get(code))
        assert case is not None, f"no crafted input for {preset}:{code}"
        text, meta = case if isinstance(case, tuple) else (case, {})
        doc = Document("x", text, dict(meta))
        verdict = step.apply_batch([doc])[0]
        assert verdict is not None and verdict[0] == code, (preset, code, verdict, doc.values)
        assert verdict[1], "a rejection carries a readable detail"


def test_the_natural_text_passes_every_ja_web_step():
    doc = Document("n", PROSE * 1 + "\n" + "彼は静かに本を閉じて、窓の外を眺めた。雨はまだ降り続いていた。")
    for step in build_preset("ja-web"):
        assert step.apply_batch([doc])[0] is None, step.name
