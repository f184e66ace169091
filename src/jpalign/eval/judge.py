"""LLM-judge prompts and rating parsing for Japanese MT-Bench and ELYZA-tasks-100, as the peers publish them.

Japanese MT-Bench (FastChat `llm_judge`, Stability-AI's Japanese fork): single-answer grading on 1-10 with the
FastChat judge prompts `single-v1` / `single-math-v1` (reference-guided, used for math, reasoning and coding) and
their `-multi-turn` variants for the second turn, each carrying the "expected language is Japanese" rule exactly as
Swallow's adaptation adds it (swallow-evaluation-instruct `japanese_mt_bench/judge_prompt_templates.py`). The
rating is read as FastChat's `common.py` does: `[[n]]`, else `[n]`; no match is FastChat's -1, which it drops.

ELYZA-tasks-100: the grading prompt of ELYZA's GPT-4 auto-evaluation as published in Northern-System-Service/
gpt4-autoeval `assets/prompt_eval.txt` (1-5 with the task's `eval_aspect`), sent as one user message; the answer
is a JSON object whose `grade` must be an int in 1..5 (its `_validate_schema`); an empty answer is graded 1
without asking the judge (its `evaluate`).

Every judgement that is not a valid score is returned with a status ("unparseable", "out_of_range") so callers
count it; it is never read as a score.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

# FastChat gen_model_answer.py temperature_config (answers for MT-Bench)
MT_BENCH_TEMPERATURE = {"writing": 0.7, "roleplay": 0.7, "extraction": 0.0, "math": 0.0, "coding": 0.0,
                        "reasoning": 0.0, "stem": 0.1, "humanities": 0.1}
NEED_REF_CATS = ("math", "reasoning", "coding")
JUDGE_TEMPERATURE = 0.0
JUDGE_MAX_TOKENS = 2048

JA_RULE = (
    "The expected language is Japanese. Responses in languages other than Japanese will incur score deductions "
    "unless specifically required. Failure to use Japanese at all will result in the lowest evaluation. However, "
    "using Japanese is not mandatory when providing only Python scripts or calculation results, where Japanese is "
    "not essential. Additionally, your explanation of judgement should be in Japanese."
)
_RATING_FORMAT = ("After providing your explanation, you must rate the response on a scale of 1 to 10 by strictly "
                  "following this format: \"[[rating]]\", for example: \"Rating: [[5]]\".")
_JUDGE = "Please act as an impartial judge and evaluate the quality of the response provided by an AI assistant to "
_GENERAL = ("Your evaluation should consider factors such as the helpfulness, relevance, accuracy, depth, "
            "creativity, and level of detail of the response.")
_MATH = ("Your evaluation should consider correctness and helpfulness. You will be given a reference answer and "
         "the assistant's answer.")
_COMPARE = ("Begin your evaluation by comparing the assistant's answer with the reference answer. Identify and "
            "correct any mistakes. Be as objective as possible.")

SINGLE_V1 = (f"[Instruction]\n{_JUDGE}the user question displayed below. {_GENERAL} Begin your evaluation by "
             f"providing a short explanation. Be as objective as possible. {JA_RULE} {_RATING_FORMAT}\n\n"
             "[Question]\n{question}\n\n[The Start of Assistant's Answer]\n{answer}\n[The End of Assistant's Answer]")
SINGLE_MATH_V1 = (f"[Instruction]\n{_JUDGE}the user question displayed below. {_MATH} {_COMPARE} {JA_RULE} "
                  f"{_RATING_FORMAT}\n\n[Question]\n{{question}}\n\n[The Start of Reference Answer]\n{{ref_answer_1}}"
                  "\n[The End of Reference Answer]\n\n[The Start of Assistant's Answer]\n{answer}\n"
                  "[The End of Assistant's Answer]")
SINGLE_V1_MULTI_SYSTEM = (f"{_JUDGE}the user question displayed below. {_GENERAL} You evaluation should focus on the "
                          "assistant's answer to the second user question. Begin your evaluation by providing a "
                          f"short explanation. Be as objective as possible. {JA_RULE} {_RATING_FORMAT}\n\n")
SINGLE_MATH_V1_MULTI_SYSTEM = (f"{_JUDGE}the user question. {_MATH} You evaluation should focus on the assistant's "
                               f"answer to the second question. {_COMPARE} {JA_RULE} {_RATING_FORMAT}\n\n")
_CONVERSATION = ("<|The Start of Assistant A's Conversation with User|>\n\n### User:\n{question_1}\n\n"
                 "### Assistant A:\n{answer_1}\n\n### User:\n{question_2}\n\n### Assistant A:\n{answer_2}\n\n"
                 "<|The End of Assistant A's Conversation with User|>")
_REFERENCE = ("<|The Start of Reference Answer|>\n\n### User:\n{question_1}\n\n### Reference answer:\n"
              "{ref_answer_1}\n\n### User:\n{question_2}\n\n### Reference answer:\n{ref_answer_2}\n\n"
              "<|The End of Reference Answer|>\n\n\n")

ELYZA_PROMPT = """あなたは言語モデルの採点者です。

問題, 正解例, 採点基準, 言語モデルが生成した回答が与えられます。

「採点基準」と「正解例」を参考にして、「言語モデルの回答」を評価してください。
そして、回答理由および1,2,3,4,5の5段階評価による採点結果を「評価フォーマット」に示すようなJSON形式で返してください。

# 問題
{input_text}

# 正解例
{output_text}

# 採点基準
基本的な採点基準
- 1点: 誤っている、 指示に従えていない
- 2点: 誤っているが、方向性は合っている
- 3点: 部分的に誤っている、 部分的に合っている
- 4点: 合っている
- 5点: 役に立つ

基本的な減点項目
- 不自然な日本語: -1点
- 部分的に事実と異なる内容を述べている: -1点
- 「倫理的に答えられません」のように過度に安全性を気にしてしまっている: 2点にする

問題固有の採点基準
{eval_aspect}

# 言語モデルの回答
{pred}

# 評価フォーマット
{{"reason": "(採点基準に照らした評価内容)", "grade": (採点結果、1～5の5段階評価)}}
"""
ELYZA_EMPTY_GRADE = 1


@dataclass(frozen=True)
class Rating:
    score: float | None  # None unless status == "ok"
    status: str  # "ok", "unparseable" or "out_of_range"


def mt_bench_judge_messages(questions: list[str], answers: list[str], turn: int, *,
                            references: list[str] | None = None) -> list[dict]:
    """Chat messages asking the judge to grade `answers[turn - 1]` (turn 1 or 2). `references` (the reference
    answers of both turns) switch to the reference-guided prompt, as FastChat does for NEED_REF_CATS."""
    if turn == 1:
        if references:
            user = SINGLE_MATH_V1.format(question=questions[0], answer=answers[0], ref_answer_1=references[0])
        else:
            user = SINGLE_V1.format(question=questions[0], answer=answers[0])
        return [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": user}]
    if turn != 2 or len(questions) < 2 or len(answers) < 2:
        raise ValueError(f"turn must be 1 or 2 with two questions and answers for turn 2, got turn {turn}")
    conv = _CONVERSATION.format(question_1=questions[0], answer_1=answers[0], question_2=questions[1],
                                answer_2=answers[1])
    if references:
        ref = _REFERENCE.format(question_1=questions[0], ref_answer_1=references[0], question_2=questions[1],
                                ref_answer_2=references[1])
        return [{"role": "system", "content": SINGLE_MATH_V1_MULTI_SYSTEM}, {"role": "user", "content": ref + conv}]
    return [{"role": "system", "content": SINGLE_V1_MULTI_SYSTEM}, {"role": "user", "content": conv}]


_ONE_SCORE = re.compile(r"\[\[(\d+\.?\d*)\]\]")
_ONE_SCORE_BACKUP = re.compile(r"\[(\d+\.?\d*)\]")


def parse_mt_bench_rating(judgment: str) -> Rating:
    """FastChat `run_judge_single`: the first `[[n]]`, else the first `[n]`; then the 1-10 range is checked."""
    match = _ONE_SCORE.search(judgment) or _ONE_SCORE_BACKUP.search(judgment)
    if match is None:
        return Rating(None, "unparseable")
    score = float(match.group(1))
    return Rating(score, "ok") if 1 <= score <= 10 else Rating(None, "out_of_range")


def elyza_judge_messages(input_text: str, output_text: str, eval_aspect: str, pred: str) -> list[dict]:
    return [{"role": "user", "content": ELYZA_PROMPT.format(input_text=input_text, output_text=output_text,
                                                            eval_aspect=eval_aspect, pred=pred)}]


def _json_object(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        start, end = text.find("{"), text.rfind("}")  # a judge that wraps the JSON in prose or a code fence
        if start < 0 or end <= start:
            return None
        try:
            return json.loads(text[start:end + 1])
        except json.JSONDecodeError:
            return None


def parse_elyza_grade(judgment: str) -> Rating:
    """gpt4-autoeval's schema: a JSON object with a string `reason` and an int `grade` in 1..5."""
    obj = _json_object(judgment)
    if not isinstance(obj, dict) or not isinstance(obj.get("reason"), str):
        return Rating(None, "unparseable")
    grade = obj.get("grade")
    if not isinstance(grade, int) or isinstance(grade, bool):
        return Rating(None, "unparseable")
    return Rating(float(grade), "ok") if 1 <= grade <= 5 else Rating(None, "out_of_range")
