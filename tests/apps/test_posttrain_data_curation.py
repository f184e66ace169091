"""jpcurate.instructions + apps/curate_instructions.py on a crafted messy set: exact counts and records."""

from __future__ import annotations

import json

from app_helpers import ROOT, load_app

from jpcurate.instructions import CLOSED_QA_INSTRUCTION, classify, curate, normalize

# ruff: noqa: E501  (Japanese records are kept one per line)

app = load_app("curate_instructions")
MESSY = ROOT / "data" / "posttrain" / "examples" / "messy_instructions.jsonl"


def test_messy_set_exact_counts_and_records(tmp_path):
    stats = app.main(app.parse(["--input", str(MESSY), "--out_dir", str(tmp_path)]))
    assert stats["read"] == 21 and stats["kept"] == 6 and stats["pairs"] == 1 and stats["rejected"] == 15
    assert stats["rejected_by_reason"] == {"duplicate": 2, "empty_answer": 1, "empty_question": 1, "identical_pair": 1,
                                           "malformed": 5, "ngwords.adult": 1, "not_japanese": 3, "too_long": 1}
    assert (stats["open"], stats["closed"]) == (4, 2)
    rejected = [json.loads(x) for x in (tmp_path / "rejected.jsonl").read_text(encoding="utf-8").splitlines()]
    by_line = {r["id"].split(":")[1]: r["reason"] for r in rejected}
    assert by_line == {"6": "empty_question", "7": "empty_answer", "8": "too_long", "9": "not_japanese",
                       "10": "not_japanese", "11": "not_japanese", "12": "ngwords.adult", "13": "duplicate",
                       "15": "duplicate", "16": "malformed", "17": "malformed", "18": "malformed", "19": "malformed",
                       "20": "malformed", "21": "identical_pair"}
    assert [r["detail"].split(": ", 2)[-1] for r in rejected if r["reason"] == "duplicate"] == [
        "exact_duplicate of messy_instructions.jsonl:1", "near_duplicate of messy_instructions.jsonl:14"]
    sft = [json.loads(x) for x in (tmp_path / "sft.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["meta"]["id"].split(":")[1] for r in sft] == ["1", "2", "3", "4", "5", "14"]
    assert sft[0]["messages"][1]["content"] == ("日本には春、夏、秋、冬の四つの季節があります。\n春は桜が咲き、夏は暑く湿度が高くなります。"
                                                "\n\n秋は紅葉が美しく、冬は北の地方で雪が多く降ります。")
    assert sft[1] == {"messages": [
        {"role": "user", "content": f"次の文の主語を答えてください。\n\n猫が庭で寝ている。\n{CLOSED_QA_INSTRUCTION}"},
        {"role": "assistant", "content": "猫"}], "meta": {"id": "messy_instructions.jsonl:2", "format": "alpaca", "qa": "closed"}}
    assert [m["role"] for m in sft[2]["messages"]] == ["system", "user", "assistant", "user", "assistant"]
    assert sft[4]["meta"] == {"id": "messy_instructions.jsonl:5", "format": "arena", "qa": "open", "extra": {"source": "arena-ja"}}
    (pair,) = [json.loads(x) for x in (tmp_path / "pairs.jsonl").read_text(encoding="utf-8").splitlines()]
    assert (pair["prompt"], pair["chosen"], pair["rejected"]) == (
        f"富士山の高さは何メートルですか。\n{CLOSED_QA_INSTRUCTION}", "3776メートルです。", "約1000メートルです。")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    app.main(app.parse(["--input", str(MESSY), "--out_dir", str(tmp_path)]))
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_open_closed_rule():
    assert [classify(a) for a in ("猫", "1998年", "3776メートルです。", "東京", "はい")] == ["closed"] * 5
    assert [classify(a) for a in ("春です。夏です。", "一行目\n二行目", "あ" * 31, "def f():\n    return 1")] == ["open"] * 4
    assert classify("あ" * 40, closed_max_chars=50) == "closed"


def test_closed_instruction_not_added_twice_and_optional():
    rec = ("r:1", {"question": f"日本の首都はどこですか。\n{CLOSED_QA_INSTRUCTION}", "answer": "東京"})
    (out,) = curate([rec]).sft
    assert out["messages"][0]["content"] == f"日本の首都はどこですか。\n{CLOSED_QA_INSTRUCTION}"
    from jpcurate.instructions import CurateOptions

    (plain,) = curate([("r:1", {"question": "日本の首都はどこですか。", "answer": "東京"})],
                      CurateOptions(add_closed_instruction=False)).sft
    assert plain["messages"][0]["content"] == "日本の首都はどこですか。" and plain["meta"]["qa"] == "closed"


def test_dedup_keeps_the_longest_question_and_normalize_is_idempotent():
    q = "日本で一番高い山について、その高さと場所、名前の由来、登山の季節をそれぞれ詳しく教えてください。"
    recs = [("a:1", {"question": q, "answer": "富士山です。静岡県と山梨県の境にあります。"}),
            ("a:2", {"question": q + "お願い", "answer": "富士山は静岡県と山梨県にまたがっています。高さは3776メートルです。"})]
    out = curate(recs)
    assert [r["meta"]["id"] for r in out.sft] == ["a:2"] and out.rejected[0]["id"] == "a:1"
    messy = "\ufeff一行目  \r\n\r\n\r\n\r\n\t字下げ\u200b\r二行目\x07 "
    assert normalize(messy) == "一行目\n\n\t字下げ\n二行目" and normalize(normalize(messy)) == normalize(messy)
    assert normalize("！１", nfkc=True) == "!1" and normalize("！１") == "！１"


def test_curate_app_input_errors(tmp_path):
    import pytest

    with pytest.raises(FileNotFoundError, match="nothing.jsonl"):
        app.main(app.Args(input=[str(tmp_path / "nothing.jsonl")], out_dir=str(tmp_path)))


def test_normalize_is_idempotent_and_curate_never_raises_on_any_record():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    texts = st.text(max_size=60)
    records = st.one_of(st.fixed_dictionaries({"instruction": texts, "output": texts}),
                        st.fixed_dictionaries({"question": texts, "answer": st.one_of(texts, st.integers())}),
                        st.dictionaries(st.sampled_from(["messages", "question", "chosen"]),
                                        st.one_of(texts, st.lists(st.dictionaries(texts, texts), max_size=3))),
                        st.lists(texts, max_size=2))

    @settings(max_examples=30, deadline=None)  # each curate() call builds the word lists
    @given(texts, st.lists(records, max_size=4))
    def check(text, recs):
        assert normalize(normalize(text)) == normalize(text)
        out = curate([(f"r:{i}", r) for i, r in enumerate(recs)])
        assert out.stats["kept"] + out.stats["rejected"] == len(recs)  # every record accounted for

    check()
