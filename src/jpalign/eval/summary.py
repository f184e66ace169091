"""Scores per model and suite from the evaluation records (see `store.py`): llm-jp-eval task scores and AVG
(JSTS outside it), log-likelihood multiple-choice accuracy beside them, judge means with counted failures,
generation-quality shares and repetition, JSQuAD grounding, and judge calibration against GPT-4."""

from __future__ import annotations

import math
from collections import defaultdict

from jpalign.eval.metrics import JSTS_UNPARSEABLE, mean, pearson, spearman
from jpalign.eval.repetition import distinct_n

GEN_FLAGS = ("hit_max_tokens", "echo", "template_leak", "next_turn_leak")


def _share(values: list) -> float:
    known = [v for v in values if v is not None]
    return sum(bool(v) for v in known) / len(known) if known else math.nan


def llmjp_summary(records: list[dict]) -> dict:
    by_task = defaultdict(list)
    for r in records:
        by_task[r["task"]].append(r)
    out: dict = {}
    for task, rs in sorted(by_task.items()):
        s: dict = {"n": len(rs), "format_fail": _share([not r["format_ok"] for r in rs]),
                   "hit_max_tokens": _share([r.get("finish") == "length" if r.get("finish") else None for r in rs]),
                   "truncated": _share([r.get("truncated") for r in rs]),
                   "shots": mean([r["shots"] for r in rs if r.get("shots") is not None])}
        if task == "jsts":
            golds = [float(r["gold"]) for r in rs]
            preds = [r["pred_value"] if r["pred_value"] is not None else JSTS_UNPARSEABLE for r in rs]
            s |= {"pearson": pearson(preds, golds), "spearman": spearman(preds, golds)}
        else:
            s["score"] = mean([r["score"] for r in rs])
        mc = [r["mc_correct"] for r in rs if r.get("mc_correct") is not None]
        if mc:
            s["mc_acc"] = sum(mc) / len(mc)
            s["mc_acc_norm"] = mean([float(r["mc_correct_norm"]) for r in rs if r.get("mc_correct_norm") is not None])
        if task == "jsquad":
            s["not_span"] = _share([r.get("not_span") for r in rs])
        out[task] = s
    scored = [v["score"] for k, v in out.items() if "score" in v]
    out["AVG"] = mean(scored) if scored else math.nan  # one metric per task, JSTS excluded (llm-jp-eval AVG)
    return out


def judge_summary(judgements: list[dict]) -> dict:
    """Mean score over valid judgements, per category and per turn; failures counted, never scored."""
    ok = [j for j in judgements if j["status"] == "ok"]
    out = {"judged": len(judgements), "ok": len(ok),
           "unparseable": sum(j["status"] == "unparseable" for j in judgements),
           "out_of_range": sum(j["status"] == "out_of_range" for j in judgements),
           "error": sum(j["status"] == "error" for j in judgements),
           "mean": mean([j["score"] for j in ok])}
    cats = defaultdict(list)
    turns = defaultdict(list)
    for j in ok:
        cats[j.get("category") or "all"].append(j["score"])
        turns[j.get("turn") or 1].append(j["score"])
    out["per_category"] = {c: mean(v) for c, v in sorted(cats.items())}
    out["per_turn"] = {t: mean(v) for t, v in sorted(turns.items())}
    return out


def generation_summary(gens: list[dict]) -> dict:
    """Shares of runaway / echoing / leaking answers, mean seq-rep-1..4 and corpus distinct-1/2 (chars, tokens)."""
    out: dict = {"n": len(gens), "truncated": _share([g.get("truncated") for g in gens])}
    for flag in GEN_FLAGS:
        out[flag] = _share([g["flags"].get(flag) for g in gens])
    for unit in ("char", "tok"):
        for n in range(1, 5):
            vals = [g["rep"][f"{unit}_seq_rep_{n}"] for g in gens if f"{unit}_seq_rep_{n}" in g["rep"]]
            out[f"{unit}_seq_rep_{n}"] = mean(vals) if vals else math.nan
    texts = [g["output"] for g in gens]
    ids = [g["token_ids"] for g in gens if g.get("token_ids") is not None]
    for n in (1, 2):
        out[f"char_distinct_{n}"] = distinct_n(texts, n) if texts else math.nan
        out[f"tok_distinct_{n}"] = distinct_n(ids, n) if ids else math.nan
    return out


def summarize(records: list[dict]) -> dict:
    """{model: {"llmjp": ..., "mt_bench": {"judge", "generation"}, "elyza": {...}}} from every record."""
    per_model: dict = defaultdict(lambda: defaultdict(list))
    for r in records:
        per_model[r["model"]][r["kind"]].append(r)
    out = {}
    for model, kinds in per_model.items():
        m: dict = {}
        if kinds["llmjp"]:
            m["llmjp"] = llmjp_summary(kinds["llmjp"])
        for suite in ("mt_bench", "elyza"):
            gens = [g for g in kinds["gen"] if g["suite"] == suite]
            judged = [j for j in kinds["judge"] if j["suite"] == suite]
            if gens or judged:
                m[suite] = {"generation": generation_summary(gens), "judge": judge_summary(judged) if judged else None}
        out[model] = m
    return out


def calibration(pairs: list[tuple[float, float]]) -> dict:
    """Agreement of a judge with GPT-4 on the same answers: Spearman, Pearson, mean absolute difference."""
    ours, ref = [p[0] for p in pairs], [p[1] for p in pairs]
    return {"n": len(pairs), "spearman": spearman(ours, ref) if len(pairs) > 1 else math.nan,
            "pearson": pearson(ours, ref) if len(pairs) > 1 else math.nan,
            "mean_abs_diff": mean([abs(a - b) for a, b in pairs])}
