"""Summaries from crafted records: scores, counted judge failures, shares; the report's tables and PNGs."""

import math

import pytest

from jpalign.eval.report import write_report
from jpalign.eval.summary import calibration, summarize


def _llmjp(model, task, i, score, *, gold="0", pred_value=None, fmt=True, mc=None, not_span=None):
    return {"kind": "llmjp", "model": model, "task": task, "id": str(i), "score": score, "gold": gold,
            "pred_value": pred_value, "format_ok": fmt, "mc_correct": mc, "mc_correct_norm": mc,
            "not_span": not_span, "finish": "stop"}


def _gen(model, suite, i, output, flags, ids=None):
    from jpalign.eval.repetition import repetition_stats
    return {"kind": "gen", "model": model, "suite": suite, "id": str(i), "turn": 1, "output": output,
            "token_ids": ids, "flags": flags, "rep": repetition_stats(output, ids)}


def _judge(model, suite, i, score, status, category="writing", turn=1):
    return {"kind": "judge", "model": model, "suite": suite, "id": str(i), "turn": turn, "judge": "j",
            "score": score, "status": status, "category": category}


@pytest.fixture
def records():
    flags = {"hit_max_tokens": True, "echo": False, "template_leak": True, "next_turn_leak": False}
    clean = {"hit_max_tokens": False, "echo": False, "template_leak": False, "next_turn_leak": False}
    return [
        _llmjp("a", "jnli", 1, 1.0, mc=True), _llmjp("a", "jnli", 2, 0.0, fmt=False, mc=False),
        _llmjp("a", "jsquad", 1, 0.5, not_span=True), _llmjp("a", "jsquad", 2, 1.0, not_span=False),
        _llmjp("a", "jsts", 1, None, gold="1.0", pred_value=1.0), _llmjp("a", "jsts", 2, None, gold="3.0",
                                                                          pred_value=None, fmt=False),
        _llmjp("a", "jsts", 3, None, gold="4.0", pred_value=4.0),
        _gen("a", "mt_bench", 1, "同じ同じ同じ同じ", flags, [1, 2, 1, 2]), _gen("a", "mt_bench", 2, "違う答え", clean),
        _judge("a", "mt_bench", 1, 8.0, "ok"), _judge("a", "mt_bench", 2, None, "unparseable"),
        _judge("a", "mt_bench", 1, 6.0, "ok", category="math", turn=2),
        _gen("b", "elyza", 1, "答え", clean), _judge("b", "elyza", 1, None, "out_of_range", category=None),
    ]


def test_summary_values(records):
    s = summarize(records)
    llm = s["a"]["llmjp"]
    assert llm["jnli"]["score"] == 0.5 and llm["jnli"]["format_fail"] == 0.5 and llm["jnli"]["mc_acc"] == 0.5
    assert llm["jsquad"]["score"] == 0.75 and llm["jsquad"]["not_span"] == 0.5
    assert llm["AVG"] == pytest.approx((0.5 + 0.75) / 2)  # JSTS outside the average
    assert llm["jsts"]["pearson"] == pytest.approx(0.3273268353539885)  # scipy, the unparseable answer as -2.0
    j = s["a"]["mt_bench"]["judge"]
    assert (j["judged"], j["ok"], j["unparseable"], j["mean"]) == (3, 2, 1, 7.0)  # never read as a score
    assert j["per_category"] == {"math": 6.0, "writing": 8.0} and j["per_turn"] == {1: 8.0, 2: 6.0}
    g = s["a"]["mt_bench"]["generation"]
    assert g["hit_max_tokens"] == 0.5 and g["template_leak"] == 0.5 and g["echo"] == 0.0
    assert g["tok_seq_rep_1"] == pytest.approx(0.5)  # only the answer with token ids counts
    eb = s["b"]["elyza"]["judge"]
    assert eb["out_of_range"] == 1 and math.isnan(eb["mean"])


def test_calibration():
    c = calibration([(8, 9), (5, 6), (2, 1)])
    assert c["spearman"] == pytest.approx(1.0) and c["mean_abs_diff"] == pytest.approx(1.0)


def test_report_tables_and_plots(records, tmp_path):
    s = summarize(records)
    path = write_report(tmp_path, s, records, models={"a": {"path": "runs/a", "contaminated": ["jsquad"]},
                                                      "b": {"path": "runs/b"}},
                        contamination={"corpus.jsonl": {"jsquad": {"examples": 2, "contaminated": 1, "share": 0.5,
                                                                   "mean_overlap": 0.6, "threshold": 0.5, "n": 13}}},
                        calibration={"n": 3, "spearman": 0.9, "pearson": 0.8, "mean_abs_diff": 1.2, "judge": "j"})
    text = path.read_text(encoding="utf-8")
    assert "## llm-jp-eval-style JGLUE" in text and "a ⚠ contaminated (jsquad)" in text
    assert "| a ⚠ contaminated (jsquad) | 0.625 |" in text
    assert "## Japanese MT-Bench" in text and "## ELYZA-tasks-100" in text and "## Contamination" in text
    assert "## Judge calibration" in text and "| 3 | 0.900 | 0.800 | 1.200 |" in text
    for png in ("llmjp_scores.png", "mt_bench_categories.png", "repetition.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"
