"""apps/generate_data.py against the scripted loopback server: dry run sends nothing, outputs + failures files,
a finished job reruns for free."""

from __future__ import annotations

import json

import pytest
from app_helpers import load_app

pytest.importorskip("httpx")

from jpcurate.endpoint_fake import FakeChatServer  # noqa: E402

app = load_app("generate_data")


def echo_chunk(messages):
    return messages[-1]["content"].split("文章：\n", 1)[1]


def test_generate_rephrase_dry_run_then_run_then_rerun(tmp_path, data_dir, capsys):
    docs = tmp_path / "docs.jsonl"
    works = [json.loads(x) for x in (data_dir / "aozora/works.jsonl").read_text(encoding="utf-8").splitlines()]
    with open(docs, "w", encoding="utf-8") as f:
        for w in works[2:4]:  # 羅生門 (5.7k chars), 蜘蛛の糸 (2.9k)
            f.write(json.dumps({"id": w["id"], "text": w["text"][:2500]}, ensure_ascii=False) + "\n")
        f.write("not json\n")
    out = tmp_path / "gen" / "rephrased.jsonl"
    with FakeChatServer(echo_chunk) as server:
        argv = ["--job", "rephrase", "--input", str(docs), "--out", str(out), "--base-url", server.base_url,
                "--model", "fake", "--style", "wikipedia", "--max-chars", "800", "--show", "1"]
        dry = app.main(app.parse([*argv, "--dry-run"]))
        printed = capsys.readouterr().out
        assert server.log == [] and not out.exists()
        assert dry == {"requests": dry["requests"], "pending": dry["requests"], "malformed": 1} and dry["requests"] >= 6
        assert printed.startswith("--- user\n次の文章を、Wikipediaの記事のような")
        assert f"2 inputs (1 malformed), {dry['requests']} requests, 0 cached" in printed
        stats = app.main(app.parse(argv))
        assert len(server.log) == dry["requests"] == stats["requests"]
        again = app.main(app.parse(argv))
        assert len(server.log) == dry["requests"]  # the finished job reran from the cache
    assert (stats["kept"], stats["rejected"], stats["failures"]) == (2, 0, 1)
    assert again["usage"]["cache_hits"] == dry["requests"] and again["usage"]["requests"] == 0
    kept = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in kept] == [w["id"] for w in works[2:4]]
    assert all(r["rephrase"]["chunks"] >= 3 for r in kept)
    failures = [json.loads(x) for x in (tmp_path / "gen/rephrased.failures.jsonl").read_text().splitlines()]
    assert [f["reason"] for f in failures] == ["malformed"]
    assert json.loads((tmp_path / "gen/rephrased.stats.json").read_text())["kept"] == 2


def test_generate_missing_input_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="--input"):
        app.main(app.parse(["--job", "cot", "--input", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "o")]))
