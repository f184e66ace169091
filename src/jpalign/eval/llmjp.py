"""llm-jp-eval-style tasks on the bundled JGLUE sets: its instruction template, per-task instructions and output
lengths, few-shot prompts and answer post-processing.

Sources (see /work/shared/anchors/posttrain-eval-anchors.md, section 1): the template is llm-jp-eval v1.x
`get_evaluation_prompt`; the JSQuAD and JCommonsenseQA instructions and output lengths are from its v1.0 dataset
processors (HF `llm-book/llm-jp-eval`); the JNLI instruction matches copies of its processor in public code; the
JSTS instruction is the one llm-jp-eval and lighteval's Japanese tasks share. JNLI/JSTS output lengths (3) are
from memory of the processors, not re-read.

Differences from llm-jp-eval, forced by the bundled data: llm-jp-eval takes few-shots from the train split; only
the valid sets are bundled, so the first `num_few_shots` examples of each file are the shots and are left out of
the scored samples (for JSQuAD, every question on the shots' paragraphs is left out too).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from jpalign.eval.metrics import normalize

PREAMBLE = "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。"


@dataclass(frozen=True)
class Task:
    name: str
    instruction: str
    output_length: int  # max new tokens
    metric: str  # "exact_match", "char_f1" or "correlation" (JSTS: pearson/spearman, outside the average)
    file: str  # under data/jglue/


@dataclass(frozen=True)
class Example:
    id: str
    input: str
    output: str  # gold answer as llm-jp-eval stores it
    choices: tuple[str, ...] = ()  # continuations scored by log-likelihood (the harness way), gold index = label
    label: int = -1
    context: str = ""  # JSQuAD paragraph: a grounded answer is a span of it
    answers: tuple[str, ...] = field(default=())  # JSQuAD: every gold answer string


TASKS: dict[str, Task] = {t.name: t for t in (
    Task("jcommonsenseqa",
         "質問と回答の選択肢を入力として受け取り、選択肢から回答を選択してください。なお、回答は選択肢の番号(例:0)"
         "でするものとします。 回答となる数値をint型で返し、他には何も含めないことを厳守してください。",
         1, "exact_match", "jcommonsenseqa_valid.jsonl"),
    Task("jnli",
         "前提と仮説の関係をentailment、contradiction、neutralの中から回答してください。"
         "それ以外には何も含めないことを厳守してください。\n\n制約：\n"
         "- 前提から仮説が、論理的知識や常識的知識を用いて導出可能である場合はentailmentと出力\n"
         "- 前提と仮説が両立しえない場合はcontradictionと出力\n"
         "- そのいずれでもない場合はneutralと出力",
         3, "exact_match", "jnli_valid.jsonl"),
    Task("jsquad",
         "質問に対する回答を文章から一言で抽出してください。回答は名詞で答えてください。 "
         "それ以外には何も含めないことを厳守してください。",
         25, "char_f1", "jsquad_paragraphs.jsonl"),
    Task("jsts",
         "日本語の文ペアの意味がどのくらい近いかを判定し、類似度を0.0〜5.0までの間の値で付与してください。"
         "0.0に近いほど文ペアの意味が異なり、5.0に近いほど文ペアの意味が似ていることを表しています。"
         "整数値のみを返し、それ以外には何も含めないことを厳守してください。",
         3, "correlation", "jsts_valid.jsonl"),
)}
NLI_LABELS = ("entailment", "contradiction", "neutral")


def build_prompt(instruction: str, shots: list[Example], input: str) -> str:
    """llm-jp-eval's Japanese prompt: preamble, ### 指示, one ### 入力/### 応答 pair per shot, then the input and
    an open ### 応答: (ends with a newline)."""
    text = f"{PREAMBLE}\n\n### 指示:\n{instruction}"
    for s in shots:
        text += f"\n\n### 入力:\n{s.input}\n\n### 応答:\n{s.output}"
    return text + f"\n\n### 入力:\n{input}\n\n### 応答:\n"


def postprocess(output: str) -> str:
    """The answer llm-jp-eval scores: the text before the first blank line, NFKC, stripped."""
    return normalize(output.split("\n\n")[0]).strip()


def _read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _jcommonsenseqa(rows: list[dict]) -> list[Example]:
    out = []
    for r in rows:
        choices = tuple(r[f"choice{i}"] for i in range(5))
        listed = ",".join(f"{i}.{c}" for i, c in enumerate(choices))
        out.append(Example(str(r["q_id"]), f"質問：{r['question']}\n選択肢：{listed}", str(r["label"]),
                           choices=choices, label=int(r["label"])))
    return out


def _jnli(rows: list[dict]) -> list[Example]:
    return [Example(str(r["sentence_pair_id"]), f"前提：{r['sentence1']}\n仮説：{r['sentence2']}", r["label"],
                    choices=NLI_LABELS, label=NLI_LABELS.index(r["label"])) for r in rows]


def _jsts(rows: list[dict]) -> list[Example]:
    return [Example(str(r["sentence_pair_id"]), f"文1：{r['sentence1']}\n文2：{r['sentence2']}", str(r["label"]))
            for r in rows]


def _jsquad(rows: list[dict]) -> list[Example]:
    out = []
    for r in rows:
        if r.get("split", "valid") != "valid":
            continue
        context = f"{r['title']} [SEP] {r['text']}"  # JSQuAD's own context string
        for qa in r["qas"]:
            out.append(Example(qa["id"], f"文章：{context}\n質問：{qa['question']}", qa["answers"][0],
                               context=r["text"], answers=tuple(qa["answers"])))
    return out


_LOADERS = {"jcommonsenseqa": _jcommonsenseqa, "jnli": _jnli, "jsquad": _jsquad, "jsts": _jsts}


def load_task(name: str, data_dir: str | Path, *, num_few_shots: int = 4,
              limit: int | None = None) -> tuple[list[Example], list[Example]]:
    """-> (shots, samples) of one task from `data_dir` (the folder holding the JGLUE files)."""
    if name not in TASKS:
        raise ValueError(f"unknown llm-jp task {name!r}; known: {sorted(TASKS)}")
    path = Path(data_dir) / TASKS[name].file
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the {name} data file is missing")
    examples = _LOADERS[name](_read_jsonl(path))
    shots: list[Example] = []
    for e in examples:  # JSQuAD: one shot per paragraph
        if len(shots) < num_few_shots and not (e.context and any(e.context == s.context for s in shots)):
            shots.append(e)
    shot_ids = {s.id for s in shots}
    shot_contexts = {s.context for s in shots if s.context}
    samples = [e for e in examples if e.id not in shot_ids and not (e.context and e.context in shot_contexts)]
    return shots, samples[:limit] if limit is not None else samples
