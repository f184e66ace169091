"""The bundled chat suites: MT-Bench interleaves its categories under a limit, references only where FastChat uses
them; ELYZA items carry their grading notes; --contaminated parsing."""

from pathlib import Path

import pytest

from jpalign.eval.suites import chat_items, judged_answers, mt_bench_items, parse_contaminated

DATA = Path(__file__).resolve().parents[3] / "data"


def test_mt_bench_items():
    items = mt_bench_items(DATA)
    assert len(items) == 80 and all(len(it["turns"]) == 2 for it in items)
    first8 = mt_bench_items(DATA, 8)
    assert sorted(it["category"] for it in first8) == sorted(
        ["coding", "extraction", "humanities", "math", "reasoning", "roleplay", "stem", "writing"])
    for it in items:
        has_ref = it["category"] in ("math", "reasoning", "coding")
        assert (it["references"] is not None and len(it["references"]) == 2) == has_ref


def test_elyza_and_calibration_sets():
    items = chat_items("elyza", DATA, 3)
    assert len(items) == 3 and items[0]["eval_aspect"] and items[0]["reference"]
    rows = judged_answers(DATA)
    assert len(rows) == 480 and all(1 <= r["gpt4_score"] <= 10 for r in rows)
    with pytest.raises(ValueError, match="unknown chat suite"):
        chat_items("vicuna", DATA)
    with pytest.raises(FileNotFoundError, match="evaluation data file missing"):
        mt_bench_items(DATA / "nowhere")


def test_parse_contaminated():
    assert parse_contaminated(["sft=jsquad+jnli", "dpo"], ["sft", "dpo", "base"]) == {
        "sft": ["jsquad", "jnli"], "dpo": ["all"]}
    with pytest.raises(ValueError, match="not among the models"):
        parse_contaminated(["x=jsquad"], ["sft"])
