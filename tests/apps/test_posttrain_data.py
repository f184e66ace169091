"""data/posttrain: rebuilding gives the committed bytes, the sources exclude evaluation sets, the records are valid."""

from __future__ import annotations

import json

import pytest
from app_helpers import ROOT, load_app

from jpalign.posttrain_data import (
    CLOSED_SUFFIX,
    DEGRADATIONS,
    EVAL_ONLY,
    SOURCES,
    anti_repetition_pairs,
    check_sources,
    degrade,
    sentences,
    ud_records,
)
from jpalign.templates import validate_messages

# ruff: noqa: E501  (expected Japanese strings are kept one per line)

app = load_app("build_posttrain_data")
BUNDLED = ROOT / "data" / "posttrain"


def _jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_rebuild_gives_the_committed_files(tmp_path, data_dir):
    app.main(app.Args(data_dir=str(data_dir), out_dir=str(tmp_path)))
    for name in ("sft.jsonl", "dpo.jsonl", "stats.json"):
        assert (tmp_path / name).read_bytes() == (BUNDLED / name).read_bytes(), f"{name} differs: rebuild and commit"


def test_sources_never_include_evaluation_or_web_data(tmp_path, data_dir):
    assert {"jglue", "elyza_tasks_100", "japanese_mt_bench", "web_ja", "web_en"} <= set(EVAL_ONLY)
    for rel in SOURCES.values():
        assert not any(part in EVAL_ONLY or part.startswith("web_") for part in rel.split("/")), rel
    stats = json.loads((BUNDLED / "stats.json").read_text(encoding="utf-8"))
    assert stats["sources"] == SOURCES
    for bad in ("jglue/jsquad_paragraphs.jsonl", "elyza_tasks_100/test.jsonl", "japanese_mt_bench/question.jsonl",
                "web_ja/fineweb2_edu_ja_sample.jsonl"):
        with pytest.raises(ValueError, match="evaluation/test-only"):
            check_sources(data_dir, {"x": bad})


def test_no_evaluation_text_leaks_into_the_bundle(data_dir):
    sft, dpo = _jsonl(BUNDLED / "sft.jsonl"), _jsonl(BUNDLED / "dpo.jsonl")
    texts = "\n".join([m["content"] for r in sft for m in r["messages"]]
                      + [p[k] for p in dpo for k in ("prompt", "chosen", "rejected")])
    probes = [r["input"][:40] for r in _jsonl(data_dir / "elyza_tasks_100/test.jsonl")]
    probes += [r["turns"][0][:40] for r in _jsonl(data_dir / "japanese_mt_bench/question.jsonl")]
    assert len(probes) == 180 and not [p for p in probes if p in texts]


def test_bundled_records_are_valid_training_records():
    sft, dpo = _jsonl(BUNDLED / "sft.jsonl"), _jsonl(BUNDLED / "dpo.jsonl")
    assert 250 <= len(sft) <= 600 and 250 <= len(dpo) <= 600
    for r in sft:
        validate_messages(r["messages"], ("system", "user", "assistant"), allow_open=False)
        assert r["meta"]["license"] in ("public-domain", "CC-BY-SA-4.0", "CC0-1.0")
        assert max(len(m["content"]) for m in r["messages"]) <= 1200  # short: the demo trains on 2 CPU cores
    for p in dpo:
        assert isinstance(p["prompt"], str) and p["chosen"].strip() and p["rejected"].strip() != p["chosen"].strip()
    kinds = {p["meta"].get("degradation", "debate") for p in dpo}
    assert kinds == {*DEGRADATIONS, "debate"}


def test_degradations_exact():
    q, a = "「羅生門」を書いたのは誰ですか。", "芥川龍之介です。短編です。"
    oq, oa = "次の文章の続きを書いてください。\n\n本文", "続きです。"
    assert degrade("loop", q, a, oq, oa, 0) == a * 3
    assert degrade("loop", q, a, oq, oa, 1) == a + "短編です。" * 4
    assert degrade("echo_question", q, a, oq, oa, 0) == f"{q}\n\n{q}"
    assert degrade("echo_question", q, a, oq, oa, 1) == f"{q}\n{a}"
    assert degrade("hash_section", q, a, oq, oa) == f"{a}\n\n### 指示:\n次の文章の続きを書いてください。\n\n### 応答:\n続きです。"
    assert degrade("role_tags", q, a, oq, oa, 1) == f"{a}\nUSER: 次の文章の続きを書いてください。\nASSISTANT: 続きです。"
    assert degrade("next_turn", q, a, oq, oa) == f"{a}\n\n次の文章の続きを書いてください。"
    with pytest.raises(ValueError, match="unknown degradation"):
        degrade("shout", q, a, oq, oa)
    recs = [{"messages": [{"role": "user", "content": f"問{i}"}, {"role": "assistant", "content": f"答{i}。"}],
             "meta": {"source": "t"}} for i in range(5)]
    pairs = anti_repetition_pairs(recs)
    assert [p["meta"]["degradation"] for p in pairs] == list(DEGRADATIONS)
    assert [p["chosen"] for p in pairs] == [f"答{i}。" for i in range(5)] and pairs[0]["rejected"] == "答0。" * 3


def test_sentence_split_keeps_quotes_whole_and_ud_closed_qa():
    assert sentences("「待て。行くな。」と彼は言った。雨だ！") == ["「待て。行くな。」", "と彼は言った。", "雨だ！"]
    rows = [{"id": "a", "text": "この会社は1998年に設立され、社員は30人である。"},
            {"id": "b", "text": "短い。"}, {"id": "c", "text": "1990年と2000年の二回、大会が開かれた。"}]
    recs = ud_records(rows)
    assert [(r["meta"]["task"], r["meta"]["sentence"], r["messages"][1]["content"]) for r in recs] == [
        ("year", "a", "1998年"), ("numbers", "a", "1998、30"), ("numbers", "c", "1990、2000")]
    assert recs[0]["messages"][0]["content"] == f"次の文に書かれている年を答えてください。{CLOSED_SUFFIX}\n\n{rows[0]['text']}"
