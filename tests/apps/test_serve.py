"""The OpenAI-compatible server through the official `openai` client on a free loopback port: greedy answers equal
jpmoe.generate (streaming and not, chat and completions), stop / max_tokens / n / seed as OpenAI documents them,
16 concurrent clients batched together and each answered correctly, cancellation on disconnect."""

from __future__ import annotations

import threading
import time

import pytest
from serve_helpers import app_server, tiny_chat_model

openai = pytest.importorskip("openai")
pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from jpmoe.generate import SamplingParams, generate  # noqa: E402
from jpmoe.serve import load_chat_model  # noqa: E402
from jpmoe.serve.app import create_app  # noqa: E402

NAME = "tiny"
QUESTION = [{"role": "system", "content": "あなたは日本語のアシスタントです。"},
            {"role": "user", "content": "梅雨はいつ来ますか？"}]


@pytest.fixture(scope="module")
def served(tmp_path_factory, data_dir):
    cm = load_chat_model(tiny_chat_model(tmp_path_factory.mktemp("serve_model"), data_dir), name=NAME)
    with app_server(create_app(cm, max_batch=16)) as url:
        yield cm, url, openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=60)


def expected(cm, ids: list[int], max_tokens: int) -> tuple[str, str, int]:
    """(text, finish_reason, completion tokens) of jpmoe.generate's greedy answer, as the API reports it."""
    toks = generate(cm.model, [ids], SamplingParams(max_new_tokens=max_tokens, stop_token_ids=cm.stop_ids))[0]
    if toks[-1] in cm.stop_ids:
        return cm.decode(toks[:-1]), "stop", len(toks)
    return cm.decode(toks), "length", len(toks)


def stream_text(stream) -> tuple[list[str], list[str | None], object]:
    texts, finishes, use = {}, {}, None
    for ch in stream:
        if ch.usage is not None:
            use = ch.usage
        for c in ch.choices:
            part = c.delta.content if hasattr(c, "delta") else c.text
            texts[c.index] = texts.get(c.index, "") + (part or "")
            finishes[c.index] = c.finish_reason or finishes.get(c.index)
    return [texts[i] for i in sorted(texts)], [finishes[i] for i in sorted(finishes)], use


def wait_until_idle(health: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while (h := httpx.get(health).json())["running"] or h["waiting"]:
        assert time.monotonic() < deadline, h
        time.sleep(0.05)
    return h


def test_models_and_greedy_chat_equals_generate(served):
    cm, _, client = served
    assert [m.id for m in client.models.list().data] == [NAME]
    want, finish, n_tok = expected(cm, cm.encode_chat(QUESTION), 40)
    assert len(want) > 10
    r = client.chat.completions.create(model=NAME, messages=QUESTION, max_tokens=40, temperature=0)
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-")
    assert (r.choices[0].message.content, r.choices[0].finish_reason) == (want, finish)
    assert r.choices[0].message.role == "assistant"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (len(cm.encode_chat(QUESTION)), n_tok)
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    s = client.chat.completions.create(model=NAME, messages=QUESTION, max_tokens=40, temperature=0, stream=True,
                                       stream_options={"include_usage": True})
    texts, finishes, use = stream_text(s)
    assert (texts, finishes) == ([want], [finish])
    assert use.completion_tokens == n_tok


def test_completions_and_echo(served):
    cm, _, client = served
    want, finish, _ = expected(cm, cm.encode_text("梅雨は"), 24)
    r = client.completions.create(model=NAME, prompt="梅雨は", max_tokens=24, temperature=0)
    assert r.object == "text_completion" and (r.choices[0].text, r.choices[0].finish_reason) == (want, finish)
    texts, _, _ = stream_text(client.completions.create(model=NAME, prompt="梅雨は", max_tokens=24, temperature=0,
                                                        stream=True))
    assert texts == [want]
    r = client.completions.create(model=NAME, prompt=["梅雨は", "台風は"], max_tokens=8, temperature=0, echo=True)
    assert [c.index for c in r.choices] == [0, 1]
    assert r.choices[0].text.startswith("梅雨は") and r.choices[1].text.startswith("台風は")


def test_max_tokens_and_stop_as_openai(served):
    cm, _, client = served
    full, _, _ = expected(cm, cm.encode_chat(QUESTION), 40)
    r = client.chat.completions.create(model=NAME, messages=QUESTION, max_completion_tokens=5, temperature=0)
    assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 5
    assert full.startswith(r.choices[0].message.content)
    stop = full[12:14]
    cut = full[: full.index(stop)]  # OpenAI: the text ends before the stop sequence, which is not returned
    for stream in (False, True):
        r = client.chat.completions.create(model=NAME, messages=QUESTION, max_tokens=40, temperature=0,
                                           stop=["@@never@@", stop], stream=stream)
        text, finish = (r.choices[0].message.content, r.choices[0].finish_reason) if not stream else \
            tuple(x[0] for x in stream_text(r)[:2])
        assert (text, finish) == (cut, "stop")


def test_n_and_seed(served):
    _, _, client = served
    kw = dict(model=NAME, messages=QUESTION, max_tokens=12, n=3, temperature=1.0, seed=11)
    a, b = client.chat.completions.create(**kw), client.chat.completions.create(**kw)
    assert [c.index for c in a.choices] == [0, 1, 2]
    assert [c.message.content for c in a.choices] == [c.message.content for c in b.choices]  # reproducible
    assert len({c.message.content for c in a.choices}) > 1  # n independent samples, not one copied
    assert [c.finish_reason for c in a.choices] == ["length"] * 3 and a.usage.completion_tokens == 36
    c = client.chat.completions.create(**(kw | {"seed": 12}))
    assert [x.message.content for x in c.choices] != [x.message.content for x in a.choices]
    greedy = client.chat.completions.create(model=NAME, messages=QUESTION, max_tokens=12, n=2, temperature=0)
    assert greedy.choices[0].message.content == greedy.choices[1].message.content


def test_16_concurrent_clients_are_batched_and_each_answer_is_its_own(served):
    cm, url, client = served
    questions = [[{"role": "user", "content": f"{i}番目の質問：梅雨について{'教えて' * (i % 4 + 1)}"}]
                 for i in range(16)]
    want = [expected(cm, cm.encode_chat(q), 24)[0] for q in questions]
    got: dict[int, str] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(16)

    def ask(i: int) -> None:
        try:
            barrier.wait(10)
            if i % 2:
                r = client.chat.completions.create(model=NAME, messages=questions[i], max_tokens=24, temperature=0)
                got[i] = r.choices[0].message.content
            else:
                s = client.chat.completions.create(model=NAME, messages=questions[i], max_tokens=24, temperature=0,
                                                   stream=True)
                got[i] = stream_text(s)[0][0]
        except BaseException as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    before = httpx.get(url.removesuffix("/v1") + "/health").json()
    threads = [threading.Thread(target=ask, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:2]
    assert [got[i] for i in range(16)] == want  # none lost, none mixed up
    health = httpx.get(url.removesuffix("/v1") + "/health").json()
    assert health["peak_batch"] > 1 and health["steps"] - before["steps"] < 16 * 24  # rows shared forwards


def test_disconnect_stops_the_row(served):
    _, url, _ = served
    health = url.removesuffix("/v1") + "/health"
    before = httpx.get(health).json().get("cancelled", 0)
    body = {"model": NAME, "messages": QUESTION, "max_tokens": 900, "temperature": 0, "stream": True}
    with httpx.stream("POST", url + "/chat/completions", json=body, timeout=30) as r:
        for i, _ in enumerate(r.iter_lines()):
            if i >= 4:
                break
    h = wait_until_idle(health)
    assert h.get("cancelled", 0) == before + 1


def test_non_streaming_client_that_leaves_stops_its_rows(served):
    _, url, _ = served
    health = url.removesuffix("/v1") + "/health"
    before = httpx.get(health).json().get("cancelled", 0)
    body = {"model": NAME, "messages": QUESTION, "max_tokens": 900, "n": 16, "temperature": 1.0, "seed": 3}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(url + "/chat/completions", json=body, timeout=httpx.Timeout(30, read=0.3))
    h = wait_until_idle(health)
    assert h.get("cancelled", 0) > before  # stopped by the disconnect poll, not run to the end
