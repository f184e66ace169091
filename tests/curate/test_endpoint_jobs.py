"""jpcurate.generation (rephrase / answer / cot) against the scripted loopback server: outputs re-filtered,
every input accounted for, chunks joined in order."""

from __future__ import annotations

import pytest

pytest.importorskip("httpx")  # the jpcurate[llm] extra

from curate_helpers import PROSE  # noqa: E402

from jpcurate import Document, Malformed  # noqa: E402
from jpcurate.endpoint import EndpointClient  # noqa: E402
from jpcurate.endpoint_fake import FakeChatServer  # noqa: E402
from jpcurate.generation import JobOptions, agrees, final_answer, plan, run, split_paragraphs  # noqa: E402

JUNK = "Buy cheap watches now!!! Click here. " * 8
LINES = [PROSE[i:i + 60] + "。" for i in range(0, 180, 60)]  # three "paragraphs"


def rephrase_reply(messages):
    """Echo the chunk back (a perfect rephrase), junk for a chunk that asks for it."""
    chunk = messages[-1]["content"].split("文章：\n", 1)[1]
    return JUNK if "ジャンク" in chunk else chunk.replace("[500x9]", "")


def client_for(server, tmp_path, **kw):
    return EndpointClient(server.base_url, "fake", cache_dir=tmp_path / "cache", backoff_base=0.01, timeout=10.0, **kw)


def test_split_paragraphs_and_join_order():
    text = "\n".join(LINES)
    assert split_paragraphs(text, 130) == ["\n".join(LINES[:2]), LINES[2]]
    assert split_paragraphs(text, 10) == LINES  # a line longer than the limit is its own chunk
    assert split_paragraphs("一\n\n二", 1) == ["一", "二"]  # blank lines make no empty requests


def test_rephrase_refilters_and_accounts_for_every_document(tmp_path):
    docs = [Document(id="good", text=PROSE), Document(id="long", text="\n".join(LINES)),
            Document(id="junk", text="ジャンクにしてください。" + PROSE),
            Document(id="down", text="[500x9]" + PROSE),
            Malformed(source="in.jsonl", position=5, reason="malformed JSON", raw="{")]
    o = JobOptions(style="plain", max_chars=130)
    job = plan("rephrase", docs, o)
    assert [len(r) for r in job.requests] == [1, 2, 1, 1]
    assert job.requests[0][0].messages[0]["content"].startswith("次の文章を、専門知識のない読者にも分かる")
    with FakeChatServer(rephrase_reply) as server:
        result = run(job, client_for(server, tmp_path, max_retries=1), o)
        sent = len(server.log)
    assert [r["id"] for r in result.records] == ["good", "long"]
    assert result.records[1]["text"] == "\n".join(LINES) and result.records[1]["rephrase"]["chunks"] == 2
    assert [(r["id"], r["reason"]) for r in result.rejected] == [("junk", "filter:lang")]
    assert result.rejected[0]["output"] == JUNK
    assert [(f["id"], f["reason"]) for f in result.failures] == [("in.jsonl:5", "malformed"),
                                                                   ("down", "generation_failed")]
    s = result.stats
    assert (s["inputs"], s["requests"], s["kept"], s["rejected"], s["failures"]) == (5, 5, 2, 1, 2)
    assert s["rejected_by_reason"] == {"filter:lang": 1}
    assert s["failures_by_reason"] == {"generation_failed": 1, "malformed": 1}
    assert sent == 4 + 2  # the failing request was tried twice (max_retries=1)
    with FakeChatServer(rephrase_reply) as server:  # a rerun sends only the failed request again
        again = run(plan("rephrase", docs, o), client_for(server, tmp_path, max_retries=0), o)
        assert len(server.log) == 1
    assert again.records == result.records


def cot_reply(messages):
    q = messages[-1]["content"]
    if "壊れる質問" in q:
        return "よく分かりません。"
    hint = q.split("模範解答：", 1)[1].split("\n", 1)[0]
    if "逆らう質問" in q:
        return "順に考えます。\n答え：まったく別のもの"
    return f"まず問題文を読みます。次に条件を整理します。\n答え：{hint}です。"


def test_cot_keeps_only_agreeing_closed_answers(tmp_path):
    records = [("q:1", {"question": "日本の首都はどこですか。\n答えだけを書き、それ以外には何も含めないでください。",
                        "answer": "東京"}),
               ("q:2", {"question": "逆らう質問：一番大きな惑星は？", "answer": "木星"}),
               ("q:3", {"question": "壊れる質問：一年は何日ですか。", "answer": "365日"}),
               ("q:4", {"instruction": "逆らう質問：春の良さを説明してください。",
                        "output": "春は暖かくなり、花が咲き、新しい生活が始まる季節です。気持ちも明るくなります。"}),
               ("q:5", {"instruction": "欠けた記録"})]
    o = JobOptions()
    job = plan("cot", records, o)
    assert job.requests[0][0].messages[0]["content"].startswith(
        "次の質問に答えてください。段階を追って考え、その過程を書いてから、最後の行に「答え：」に続けて最終的な答えを書いてください。"
        "\n\n質問：\n日本の首都はどこですか。\n\n参考として模範解答を示します。\n模範解答：東京\n\n")
    assert "模範解答を見たことには触れず" in job.requests[0][0].messages[0]["content"]
    with FakeChatServer(cot_reply) as server:
        result = run(job, client_for(server, tmp_path), o)
    assert [(r["meta"]["id"], r["meta"]["qa"]) for r in result.records] == [("q:1", "closed"), ("q:4", "open")]
    assert result.records[0]["messages"] == [
        {"role": "user", "content": "日本の首都はどこですか。"},
        {"role": "assistant", "content": "まず問題文を読みます。次に条件を整理します。\n答え：東京です。"}]
    assert [(r["id"], r["reason"]) for r in result.rejected] == [("q:2", "cot_disagrees"),
                                                                  ("q:3", "cot_no_final_answer")]
    assert [(f["id"], f["reason"]) for f in result.failures] == [("q:5", "malformed")]


def test_answer_job_refilters_generated_answers(tmp_path):
    records = [("a:1", {"messages": [{"role": "system", "content": "丁寧に答えてください。"},
                                     {"role": "user", "content": "おすすめの散歩道を教えてください。"},
                                     {"role": "assistant", "content": "古い答え"}]}),
               ("a:2", {"question": "英語で答えてしまう質問です。", "answer": "元の答えです。"})]

    def reply(messages):
        if "英語" in messages[-1]["content"]:
            return "This answer is entirely written in English and is long enough to be checked."
        return "川沿いの遊歩道がおすすめです。"

    o = JobOptions()
    job = plan("answer", records, o)
    assert job.requests[0][0].messages == records[0][1]["messages"][:2]  # the conversation before the answer
    with FakeChatServer(reply) as server:
        result = run(job, client_for(server, tmp_path), o)
    assert [r["messages"][-1]["content"] for r in result.records] == ["川沿いの遊歩道がおすすめです。"]
    assert result.records[0]["meta"]["original_answer"] == "古い答え"
    assert [(r["id"], r["reason"]) for r in result.rejected] == [("a:2", "filter:not_japanese")]


def test_final_answer_and_agreement():
    assert final_answer("考える。\n答え：東京\n補足\n答え: 大阪です。") == "大阪です。"
    assert final_answer("答えは東京です。") is None
    assert agrees("「東京」です。", "東京") and agrees("３７７６メートル", "3776メートル")
    assert not agrees("大阪", "東京") and not agrees("", "東京")


def test_unknown_job_or_style_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown job"):
        plan("translate", [], JobOptions())
    with pytest.raises(ValueError, match="unknown style"):
        plan("rephrase", [], JobOptions(style="poem"))
