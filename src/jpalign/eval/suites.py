"""The bundled chat suites as items, and the calibration set: Japanese MT-Bench (questions + reference answers for
the categories FastChat grades against a reference), ELYZA-tasks-100, and GPT-4-judged MT-Bench first turns."""

from __future__ import annotations

import json
from pathlib import Path

from jpalign.eval.judge import NEED_REF_CATS

MT_BENCH_DIR = "japanese_mt_bench"
REFERENCES = "reference_answer_gpt4o_human_annotated.jsonl"


def _jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: evaluation data file missing")
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def references(data_dir: str | Path) -> dict[int, list[str]]:
    return {r["question_id"]: r["turns"] for r in _jsonl(Path(data_dir) / MT_BENCH_DIR / REFERENCES)}


def mt_bench_items(data_dir: str | Path, limit: int | None = None) -> list[dict]:
    """{id, category, turns, references (math/reasoning/coding only)}; with `limit`, the categories are taken in
    turn (question 1 of each, then question 2 of each, ...) so that a small limit covers all eight."""
    refs = references(data_dir)
    items = [{"id": str(q["question_id"]), "category": q["category"], "turns": q["turns"],
              "references": refs.get(q["question_id"]) if q["category"] in NEED_REF_CATS else None}
             for q in _jsonl(Path(data_dir) / MT_BENCH_DIR / "question.jsonl")]
    rank = {it["id"]: sum(o["category"] == it["category"] for o in items[:i]) for i, it in enumerate(items)}
    items.sort(key=lambda it: rank[it["id"]])
    return items[:limit] if limit is not None else items


def elyza_items(data_dir: str | Path, limit: int | None = None) -> list[dict]:
    """{id, category None, turns [input], reference, eval_aspect}."""
    items = [{"id": str(r["id"]), "category": None, "turns": [r["input"]], "reference": r["output"],
              "eval_aspect": r["eval_aspect"]} for r in _jsonl(Path(data_dir) / "elyza_tasks_100" / "test.jsonl")]
    return items[:limit] if limit is not None else items


def chat_items(suite: str, data_dir: str | Path, limit: int | None = None) -> list[dict]:
    if suite == "mt_bench":
        return mt_bench_items(data_dir, limit)
    if suite == "elyza":
        return elyza_items(data_dir, limit)
    raise ValueError(f"unknown chat suite {suite!r}; known: mt_bench, elyza")


def judged_answers(data_dir: str | Path, limit: int | None = None) -> list[dict]:
    """GPT-4-judged first-turn answers for calibration: {question_id, category, prompt, model, response,
    gpt4_score, references (when the category is graded against one)}."""
    refs = references(data_dir)
    rows = _jsonl(Path(data_dir) / MT_BENCH_DIR / "judged_answers_turn1.jsonl")[:limit]
    return [r | {"references": refs.get(r["question_id"]) if r["category"] in NEED_REF_CATS else None} for r in rows]


def parse_contaminated(specs: list[str], models: list[str]) -> dict[str, list[str]]:
    """`--contaminated NAME=task+task` (or `NAME`: every set) -> {name: [tasks]}; unknown names are an error."""
    out = {}
    for spec in specs:
        name, eq, tasks = spec.partition("=")
        out[name] = tasks.split("+") if eq else ["all"]
    unknown = sorted(set(out) - set(models))
    if unknown:
        raise ValueError(f"--contaminated names {unknown} are not among the models {sorted(models)}")
    return out
