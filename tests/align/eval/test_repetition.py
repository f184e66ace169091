"""Repetition, diversity, echo, leakage and grounding metrics on crafted texts."""

import pytest

from jpalign.eval.repetition import (
    distinct_n,
    echoes_prompt,
    generation_flags,
    leaks_next_turn,
    leaks_template,
    not_a_span,
    repetition_stats,
    seq_rep_n,
)


def test_seq_rep_n_welleck():
    assert seq_rep_n("abcd", 1) == 0.0
    assert seq_rep_n("aaaa", 1) == pytest.approx(0.75)  # 4 unigrams, 1 unique
    assert seq_rep_n("abab", 2) == pytest.approx(1 - 2 / 3)  # ab, ba, ab
    # a sentence said three times: most 4-grams repeat
    text = "今日は晴れです。" * 3
    grams = [text[i:i + 4] for i in range(len(text) - 3)]
    assert seq_rep_n(text, 4) == pytest.approx(1 - len(set(grams)) / len(grams))
    assert seq_rep_n(text, 4) > 0.6
    assert seq_rep_n("ab", 4) == 0.0  # shorter than n
    assert seq_rep_n([5, 6, 5, 6, 5, 6], 2) == pytest.approx(1 - 2 / 5)  # token ids work the same


def test_distinct_n_li_et_al_corpus_level():
    assert distinct_n(["abc", "abd"], 1) == pytest.approx(4 / 6)  # a b c d over 6 characters
    assert distinct_n(["abc", "abd"], 2) == pytest.approx(3 / 6)  # ab bc bd over 6 units (not over 4 bigrams)
    assert distinct_n([[1, 1, 1]], 1) == pytest.approx(1 / 3)
    assert distinct_n([], 1) == 0.0


def test_echo():
    q = "日本の首都はどこですか？理由も説明してください。"
    assert echoes_prompt("日本の首都はどこですか？理由も説明してください。東京です。", q)
    assert echoes_prompt("質問：日本の首都はどこですか？理由も説明してください", q)
    assert not echoes_prompt("東京です。政府機関が集まっているからです。", q)
    assert not echoes_prompt("首都", "首都は？")  # too short to judge


@pytest.mark.parametrize("answer,template,next_turn", [
    ("東京です。", False, False),
    ("東京です。\n\n### 指示:\n次の質問に答えて", True, True),
    ("東京です。\n### 応答:\n大阪", True, False),
    ("東京です。<|user|>\nありがとう", True, True),
    ("東京です。<|end|>", True, False),
    ("東京です。[/INST]", True, False),
    ("東京です。\nユーザー：ありがとう", True, True),
    ("東京です。\nアシスタント: どういたしまして", True, False),
    ("C#で書きます", False, False),  # one "#" is not a marker
])
def test_template_and_next_turn_leaks(answer, template, next_turn):
    assert leaks_template(answer) is template
    assert leaks_next_turn(answer) is next_turn


def test_not_a_span():
    ctx = "梅雨は東アジアの広範囲においてみられる気象現象である。"
    assert not not_a_span("東アジア", ctx)
    assert not not_a_span("東アジア", "梅雨は東アジア")  # NFKC on both sides (full-width letters would match too)
    assert not_a_span("ヨーロッパ", ctx)
    assert not_a_span("", ctx)
    assert not not_a_span("ＡＢ", "xxABxx")


def test_flags_and_stats():
    f = generation_flags("答え", "短い", finish_reason="length")
    assert f == {"hit_max_tokens": True, "echo": False, "template_leak": False, "next_turn_leak": False}
    assert generation_flags("答え", "q", finish_reason=None)["hit_max_tokens"] is None
    s = repetition_stats("aaaa", [1, 1, 1, 1])
    assert s["char_seq_rep_1"] == pytest.approx(0.75) and s["tok_seq_rep_1"] == pytest.approx(0.75)
    assert "tok_seq_rep_1" not in repetition_stats("aaaa")
