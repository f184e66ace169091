"""jpcurate.endpoint against a scripted OpenAI-compatible server on a loopback port (jpcurate.endpoint_fake)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

httpx = pytest.importorskip("httpx")  # the jpcurate[llm] extra; absent in the jpcurate isolation run

from jpcurate.endpoint import ChatRequest, EndpointClient, chat_url, request_key  # noqa: E402
from jpcurate.endpoint_fake import FakeChatServer  # noqa: E402


def ask(text: str, **kw) -> ChatRequest:
    return ChatRequest([{"role": "user", "content": text}], **kw)


def fast_client(url: str, **kw) -> EndpointClient:
    kw.setdefault("backoff_base", 0.01)
    kw.setdefault("timeout", 10.0)
    return EndpointClient(url, "fake-model", **kw)


def test_results_in_order_with_retries_on_429_and_500(tmp_path):
    texts = [f"質問{i}" + (" [429x2]" if i % 3 == 0 else "") + (" [500x1]" if i % 3 == 1 else "") for i in range(12)]
    with FakeChatServer() as server:
        client = fast_client(server.base_url, cache_dir=tmp_path, concurrency=4)
        results = client.chat([ask(t) for t in texts])
        log = list(server.log)
    assert [r.text for r in results] == ["応答: " + t for t in texts]
    assert all(r.error is None and r.finish_reason == "stop" and not r.cached for r in results)
    n429 = 2 * sum("[429x2]" in t for t in texts)
    n500 = sum("[500x1]" in t for t in texts)
    assert sum(e["status"] == 429 for e in log) == n429 and sum(e["status"] == 500 for e in log) == n500
    assert client.usage.requests == len(log) == 12 + n429 + n500
    assert client.usage.retries == n429 + n500 and client.usage.failures == 0
    assert client.usage.prompt_tokens == sum(len(t) for t in texts)
    assert client.usage.completion_tokens == sum(len("応答: " + t) for t in texts)
    assert client.usage.total_tokens == client.usage.prompt_tokens + client.usage.completion_tokens


def test_failures_are_results_never_exceptions_or_gaps(tmp_path):
    texts = ["良い質問", "だめな質問 [400]", "しつこい失敗 [500x99]", "もう一つ"]
    with FakeChatServer() as server:
        client = fast_client(server.base_url, cache_dir=tmp_path, max_retries=2)
        results = client.chat([ask(t) for t in texts])
        sent = server.contents(None)
    assert [r.text for r in results] == ["応答: 良い質問", None, None, "応答: もう一つ"]
    assert results[1].error.startswith("HTTP 400: injected 400")
    assert results[2].error.startswith("HTTP 500") and "gave up after 3 attempts" in results[2].error
    assert sent.count("だめな質問 [400]") == 1  # a 4xx other than 429 is not retried
    assert sent.count("しつこい失敗 [500x99]") == 3
    assert client.usage.failures == 2
    # failures are not cached: a rerun sends them again and nothing else
    with FakeChatServer() as server:
        client = fast_client(server.base_url, cache_dir=tmp_path, max_retries=0)
        again = client.chat([ask(t) for t in texts])
        assert sorted(set(server.contents(None))) == sorted(texts[1:3])
    assert [r.cached for r in again] == [True, False, False, True]


def test_kill_and_rerun_sends_no_finished_request_twice(tmp_path):
    texts = [f"文書{i}について説明してください。" + (" [429x1]" if i % 5 == 2 else "") for i in range(20)]
    with FakeChatServer() as server:
        first = fast_client(server.base_url, cache_dir=tmp_path).chat([ask(t) for t in texts[:10]])  # "killed" here
        assert all(r.error is None for r in first)
        with open(tmp_path / "chat.jsonl", "ab") as f:  # and killed in the middle of writing the 11th line
            f.write(b'{"key": "abc", "text": "ha')
        rerun = fast_client(server.base_url, cache_dir=tmp_path)
        results = rerun.chat([ask(t) for t in texts])
        sent_ok = server.contents(200)
    assert [r.text for r in results] == ["応答: " + t for t in texts]
    assert [r.cached for r in results] == [True] * 10 + [False] * 10
    assert sorted(sent_ok) == sorted(texts)  # every item answered exactly once over both runs
    assert rerun.usage.cache_hits == 10 and rerun.usage.torn_cache_lines == 1
    with FakeChatServer() as server:  # a finished job reruns for free
        again = fast_client(server.base_url, cache_dir=tmp_path)
        assert [r.text for r in again.chat([ask(t) for t in texts])] == [r.text for r in results]
        assert server.log == [] and again.usage.requests == 0 and again.usage.cache_hits == 20
    lines = (tmp_path / "chat.jsonl").read_text(encoding="utf-8").splitlines()
    assert sum(1 for ln in lines if ln.startswith('{"key": "abc"')) == 1 and len(lines) == 21


def test_cache_key_covers_model_messages_and_parameters(tmp_path):
    base = ask("東京について", temperature=0.0, seed=1)
    keys = {request_key("m", base), request_key("other", base), request_key("m", ask("東京について", seed=2)),
            request_key("m", ask("東京について", temperature=0.7, seed=1)),
            request_key("m", ask("東京について", max_tokens=10, seed=1)), request_key("m", ask("大阪について", seed=1))}
    assert len(keys) == 6 and request_key("m", ask("東京について", seed=1)) == request_key("m", base)
    with FakeChatServer() as server:
        client = fast_client(server.base_url, cache_dir=tmp_path)
        out = client.chat([ask("同じ質問"), ask("同じ質問"), ask("同じ質問", seed=7)])
        assert server.contents(200) == ["同じ質問", "同じ質問"]  # the duplicate in one batch went once
    assert [r.cached for r in out] == [False, True, False]


def test_rpm_limit_spaces_requests(tmp_path):
    import time

    with FakeChatServer() as server:
        client = fast_client(server.base_url, rpm=600, concurrency=8)  # one start every 0.1 s
        t0 = time.monotonic()
        client.chat([ask(f"速度{i}") for i in range(6)])
        elapsed = time.monotonic() - t0
        times = sorted(e["t"] for e in server.log)
    # starts are paced 0.1 s apart on the client; arrivals may jitter on a busy machine, so check the spans
    assert len(times) == 6 and elapsed >= 0.5 and times[-1] - t0 >= 0.5, (elapsed, times)
    assert times[-1] - times[0] > 0.35, times


def test_concurrency_is_bounded(tmp_path):
    with FakeChatServer() as server:
        client = fast_client(server.base_url, concurrency=2)
        client.chat([ask(f"遅い{i} [sleep0.2]") for i in range(4)])
        times = sorted(e["t"] for e in server.log)
    assert times[2] - times[0] > 0.15  # the third request waited for a slot


def test_timeouts_and_connection_errors_are_retried_then_reported(tmp_path):
    with FakeChatServer() as server:
        client = fast_client(server.base_url, timeout=0.2, max_retries=1)
        (r,) = client.chat([ask("遅すぎる [sleep0.6]")])
        assert r.error.startswith("timeout") and client.usage.requests == 2
    dead = fast_client(server.base_url, max_retries=1)  # the server is gone now
    (r,) = dead.chat([ask("誰もいない")])
    assert r.text is None and r.error.startswith("connection error") and dead.usage.failures == 1


def test_api_key_is_sent_and_base_url_forms():
    assert chat_url("http://127.0.0.1:8000") == "http://127.0.0.1:8000/v1/chat/completions"
    assert chat_url("http://127.0.0.1:8000/v1/") == "http://127.0.0.1:8000/v1/chat/completions"
    with FakeChatServer(api_key="sk-test") as server:
        ok = fast_client(server.base_url, api_key="sk-test").chat([ask("鍵あり")])
        bad = fast_client(server.base_url).chat([ask("鍵なし")])
    assert ok[0].text == "応答: 鍵あり" and bad[0].error.startswith("HTTP 401")


def test_bad_requests_are_a_clear_error():
    with pytest.raises(ValueError, match="role"):
        ChatRequest([{"content": "役割なし"}])
    with pytest.raises(ValueError, match="non-empty"):
        ChatRequest([])


def test_chat_inside_a_running_event_loop():
    import asyncio

    async def main():
        with FakeChatServer() as server:
            return fast_client(server.base_url).chat([ask("ループの中")])

    assert asyncio.run(main())[0].text == "応答: ループの中"


def test_import_jpcurate_does_not_load_the_client_or_torch():
    code = ("import sys, jpcurate; bad = [m for m in ('torch', 'httpx', 'jpcurate.endpoint', 'openai') "
            "if m in sys.modules]; print(json.dumps(bad))")
    out = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
    code = "import sys, jpcurate.endpoint, jpcurate.generation, jpcurate.instructions; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


JOB = """
import sys
from jpcurate.endpoint import ChatRequest, EndpointClient
reqs = [ChatRequest([{"role": "user", "content": f"項目{i} [sleep0.05]"}]) for i in range(30)]
EndpointClient(sys.argv[1], "fake-model", cache_dir=sys.argv[2], concurrency=2).chat(reqs)
"""


def test_sigkill_mid_job_then_rerun_sends_only_unfinished_requests(tmp_path):
    import time

    texts = [f"項目{i} [sleep0.05]" for i in range(30)]
    cache = tmp_path / "cache" / "chat.jsonl"
    with FakeChatServer() as server:
        proc = subprocess.Popen([sys.executable, "-c", JOB, server.base_url, str(cache.parent)])
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and proc.poll() is None:
                if cache.exists() and cache.read_bytes().count(b"\n") >= 6:
                    break
                time.sleep(0.01)
        finally:
            proc.kill()  # SIGKILL: no cleanup, possibly mid-write
            proc.wait(timeout=10)
        finished = {json.loads(x)["text"][len("応答: "):] for x in cache.read_text(encoding="utf-8").splitlines()
                    if x.endswith("}")}
        assert 6 <= len(finished) < 30, "the job should have been killed part-way"
        results = fast_client(server.base_url, cache_dir=cache.parent).chat([ask(t) for t in texts])
        answered = server.contents(200)
    assert [r.text for r in results] == ["応答: " + t for t in texts]
    assert all(answered.count(t) == 1 for t in finished)  # nothing finished was sent again
    assert len(answered) <= 30 + 2  # at most the two requests in flight at the kill were answered twice


def test_retry_after_is_parsed_and_honoured():
    import email.utils
    import time

    from jpcurate.endpoint import _retry_after

    assert _retry_after(httpx.Headers({"Retry-After": "2.5"})) == 2.5
    assert _retry_after(httpx.Headers({})) is None and _retry_after(httpx.Headers({"Retry-After": "soon"})) is None
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < _retry_after(httpx.Headers({"Retry-After": later})) <= 30
    client = EndpointClient("http://127.0.0.1:9", "m", backoff_base=0.01)
    assert all(client._delay(0, 2.0) >= 2.0 for _ in range(20))  # waits at least what the server asked
    assert all(0.005 <= client._delay(0, None) <= 0.01 for _ in range(20))  # jittered backoff
    assert all(0.04 <= client._delay(3, None) <= 0.08 for _ in range(20))  # doubling per attempt
