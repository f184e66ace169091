"""Judge prompts as the peers publish them, and rating parsing (good, malformed, out of range)."""

import json

import pytest

from jpalign.eval.judge import (
    ELYZA_PROMPT,
    MT_BENCH_TEMPERATURE,
    NEED_REF_CATS,
    elyza_judge_messages,
    mt_bench_judge_messages,
    parse_elyza_grade,
    parse_mt_bench_rating,
)

# swallow-evaluation-instruct japanese_mt_bench/judge_prompt_templates.py @acf733e, single-v1, written out
SWALLOW_SINGLE_V1 = (
    "[Instruction]\nPlease act as an impartial judge and evaluate the quality of the response provided by an AI "
    "assistant to the user question displayed below. Your evaluation should consider factors such as the helpfulness, "
    "relevance, accuracy, depth, creativity, and level of detail of the response. Begin your evaluation by providing a "
    "short explanation. Be as objective as possible. The expected language is Japanese. Responses in languages other "
    "than Japanese will incur score deductions unless specifically required. Failure to use Japanese at all will "
    "result in the lowest evaluation. However, using Japanese is not mandatory when providing only Python scripts or "
    "calculation results, where Japanese is not essential. Additionally, your explanation of judgement should be in "
    "Japanese. After providing your explanation, you must rate the response on a scale of 1 to 10 by strictly "
    "following this format: \"[[rating]]\", for example: \"Rating: [[5]]\".\n\n[Question]\nQ\n\n"
    "[The Start of Assistant's Answer]\nA\n[The End of Assistant's Answer]"
)


def test_mt_bench_turn1_prompt_is_the_published_one():
    msgs = mt_bench_judge_messages(["Q", "Q2"], ["A", "A2"], 1)
    assert msgs[0] == {"role": "system", "content": "You are a helpful assistant."}
    assert msgs[1]["content"] == SWALLOW_SINGLE_V1


def test_mt_bench_reference_and_multi_turn_prompts():
    msgs = mt_bench_judge_messages(["Q1", "Q2"], ["A1", "A2"], 1, references=["R1", "R2"])
    assert "[The Start of Reference Answer]\nR1\n[The End of Reference Answer]" in msgs[1]["content"]
    assert "comparing the assistant's answer with the reference answer" in msgs[1]["content"]
    two = mt_bench_judge_messages(["Q1", "Q2"], ["A1", "A2"], 2)
    assert "focus on the assistant's answer to the second user question" in two[0]["content"]
    assert "The expected language is Japanese." in two[0]["content"]
    assert two[1]["content"] == ("<|The Start of Assistant A's Conversation with User|>\n\n### User:\nQ1\n\n"
                                 "### Assistant A:\nA1\n\n### User:\nQ2\n\n### Assistant A:\nA2\n\n"
                                 "<|The End of Assistant A's Conversation with User|>")
    ref2 = mt_bench_judge_messages(["Q1", "Q2"], ["A1", "A2"], 2, references=["R1", "R2"])
    assert ref2[1]["content"].startswith("<|The Start of Reference Answer|>\n\n### User:\nQ1\n\n### Reference "
                                         "answer:\nR1\n\n### User:\nQ2\n\n### Reference answer:\nR2")
    with pytest.raises(ValueError, match="turn"):
        mt_bench_judge_messages(["Q1"], ["A1"], 2)


def test_fastchat_settings():
    assert NEED_REF_CATS == ("math", "reasoning", "coding")
    assert MT_BENCH_TEMPERATURE["writing"] == 0.7 and MT_BENCH_TEMPERATURE["math"] == 0.0
    assert MT_BENCH_TEMPERATURE["stem"] == 0.1 and len(MT_BENCH_TEMPERATURE) == 8


@pytest.mark.parametrize("text,score,status", [
    ("説明...評価：[[7]]", 7.0, "ok"),
    ("Rating: [[8.5]]", 8.5, "ok"),
    ("[[10]]", 10.0, "ok"),
    ("評価は[6]です", 6.0, "ok"),  # FastChat's backup pattern
    ("[[3]] と思ったが [[9]]", 3.0, "ok"),  # the first match, as re.search
    ("評価：7点", None, "unparseable"),
    ("[[seven]]", None, "unparseable"),
    ("", None, "unparseable"),
    ("[[0]]", None, "out_of_range"),
    ("[[11]]", None, "out_of_range"),
])
def test_parse_mt_bench_rating(text, score, status):
    r = parse_mt_bench_rating(text)
    assert (r.score, r.status) == (score, status)


def test_elyza_prompt_is_gpt4_autoeval_prompt_eval_txt():
    msgs = elyza_judge_messages("問", "正解", "- 採点基準", "回答")
    assert len(msgs) == 1 and msgs[0]["role"] == "user"
    text = msgs[0]["content"]
    assert text.startswith("あなたは言語モデルの採点者です。\n\n"
                           "問題, 正解例, 採点基準, 言語モデルが生成した回答が与えられます。")
    assert ("# 問題\n問\n\n# 正解例\n正解\n\n# 採点基準\n基本的な採点基準\n"
            "- 1点: 誤っている、 指示に従えていない\n") in text
    assert "問題固有の採点基準\n- 採点基準\n\n# 言語モデルの回答\n回答\n\n# 評価フォーマット\n" in text
    assert text.endswith('{"reason": "(採点基準に照らした評価内容)", "grade": (採点結果、1～5の5段階評価)}\n')
    assert ELYZA_PROMPT.count("{") == 6  # four fields and the escaped JSON brace "{{"


@pytest.mark.parametrize("text,score,status", [
    (json.dumps({"reason": "良い", "grade": 4}, ensure_ascii=False), 4.0, "ok"),
    ('```json\n{"reason": "r", "grade": 5}\n```', 5.0, "ok"),
    ('{"reason": "r", "grade": 0}', None, "out_of_range"),
    ('{"reason": "r", "grade": 6}', None, "out_of_range"),
    ('{"reason": "r", "grade": "4"}', None, "unparseable"),  # the peer's schema wants an int
    ('{"reason": "r", "grade": 4.5}', None, "unparseable"),
    ('{"grade": 3}', None, "unparseable"),  # no reason
    ("評価: 4", None, "unparseable"),
    ('{"reason": "r", "grade": true}', None, "unparseable"),
])
def test_parse_elyza_grade(text, score, status):
    r = parse_elyza_grade(text)
    assert (r.score, r.status) == (score, status)
