"""Every client mistake is a 4xx in OpenAI's error shape and the server keeps serving; a wrong API key is 401; a
full queue is 503 with Retry-After; a chat request to a tokenizer without a chat template is a clear 400; a damaged
model directory is refused naming the file; SIGTERM lets the answer in flight finish."""

from __future__ import annotations

import json
import shutil
import signal

import pytest
from app_helpers import load_app
from serve_helpers import app_server, running_server, tiny_chat_model

openai = pytest.importorskip("openai")
pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from jpmoe.serve import load_chat_model  # noqa: E402
from jpmoe.serve.app import create_app  # noqa: E402

NAME = "tiny"
MSG = [{"role": "user", "content": "こんにちは"}]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, data_dir):
    return tiny_chat_model(tmp_path_factory.mktemp("serve_model"), data_dir)


@pytest.fixture(scope="module")
def url(model_dir):
    with app_server(create_app(load_chat_model(model_dir, name=NAME))) as u:
        yield u


def ok(**kw) -> dict:
    return {"model": NAME, "messages": MSG, "max_tokens": 4} | kw


CASES = [  # (id, raw body or dict, status, param)
    ("bad-json", b'{"model": "tiny", "messages": [', 400, None),
    ("not-an-object", b"[1, 2]", 400, None),
    ("no-model", {"messages": MSG}, 400, "model"),
    ("unknown-model", ok(model="gpt-4"), 404, "model"),
    ("unknown-role", ok(messages=[{"role": "bot", "content": "x"}]), 400, "messages[0].role"),
    ("content-int", ok(messages=[{"role": "user", "content": 3}]), 400, "messages[0].content"),
    ("messages-empty", ok(messages=[]), 400, "messages"),
    ("negative-max-tokens", ok(max_tokens=-1), 400, "max_tokens"),
    ("max-tokens-string", ok(max_tokens="10"), 400, "max_tokens"),
    ("zero-max-completion-tokens", ok(max_completion_tokens=0), 400, "max_completion_tokens"),
    ("temperature-word", ok(temperature="hot"), 400, "temperature"),
    ("temperature-too-high", ok(temperature=5), 400, "temperature"),
    ("top-p-bool", ok(top_p=True), 400, "top_p"),
    ("n-zero", ok(n=0), 400, "n"),
    ("n-over-batch", ok(n=17), 400, "n"),
    ("five-stops", ok(stop=["a", "b", "c", "d", "e"]), 400, "stop"),
    ("empty-stop", ok(stop=[""]), 400, "stop"),
    ("stream-not-bool", ok(stream="yes"), 400, "stream"),
    ("stream-options-without-stream", ok(stream_options={"include_usage": True}), 400, "stream_options"),
    ("logprobs", ok(logprobs=True), 400, "logprobs"),
    ("presence-penalty", ok(presence_penalty=0.5), 400, "presence_penalty"),
    ("prompt-over-context", ok(messages=[{"role": "user", "content": "梅雨" * 2000}]), 400, "messages"),
    ("max-tokens-over-context", ok(max_tokens=5000), 400, "messages"),
    ("seed-float", ok(seed=1.5), 400, "seed"),
]


@pytest.mark.parametrize(("body", "status", "param"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_client_mistakes_are_4xx_json(url, body, status, param):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = httpx.post(url + "/chat/completions", content=raw, headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"] and err["type"]
    assert err["param"] == param


def test_completion_mistakes_and_routes(url):
    for body, param in (({"model": NAME, "prompt": 5}, "prompt"), ({"model": NAME, "prompt": [[]]}, "prompt"),
                        ({"model": NAME, "prompt": "x", "suffix": "y"}, "suffix"),
                        ({"model": NAME, "prompt": [1, 10**9]}, "prompt")):
        r = httpx.post(url + "/completions", json=body, timeout=30)
        assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text
    r = httpx.post(url + "/embeddings", json={}, timeout=30)
    assert r.status_code == 404 and "message" in r.json()["error"]
    r = httpx.get(url + "/chat/completions", timeout=30)
    assert r.status_code == 405 and "message" in r.json()["error"]
    # still serving after all of that
    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
    assert client.chat.completions.create(model=NAME, messages=MSG, max_tokens=3).usage.completion_tokens >= 1


def test_developer_role_and_text_parts_are_accepted(url):
    """OpenAI's newer shapes: a developer message (read as system) and content as a list of text parts."""
    msgs = [{"role": "developer", "content": "丁寧に"},
            {"role": "user", "content": [{"type": "text", "text": "こんに"}, {"type": "text", "text": "ちは"}]}]
    r = httpx.post(url + "/chat/completions", json=ok(messages=msgs, temperature=0), timeout=30)
    plain = [{"role": "system", "content": "丁寧に"}, {"role": "user", "content": "こんにちは"}]
    want = httpx.post(url + "/chat/completions", json=ok(messages=plain, temperature=0), timeout=30)
    assert r.status_code == 200 and r.json()["choices"] == want.json()["choices"]
    assert r.json()["usage"] == want.json()["usage"]


def test_api_key(model_dir):
    with app_server(create_app(load_chat_model(model_dir, name=NAME), api_key="s3cret")) as u:
        with pytest.raises(openai.AuthenticationError) as e:
            openai.OpenAI(base_url=u, api_key="wrong", max_retries=0).models.list()
        assert e.value.status_code == 401 and e.value.body["code"] == "invalid_api_key"
        assert httpx.post(u + "/chat/completions", json=ok(), timeout=30).status_code == 401  # no key at all
        assert [m.id for m in openai.OpenAI(base_url=u, api_key="s3cret").models.list().data] == [NAME]


def test_queue_full_is_503_with_retry_after(model_dir):
    app = create_app(load_chat_model(model_dir, name=NAME), max_batch=1, max_queue=0)
    with app_server(app) as u:
        body = ok(max_tokens=900, stream=True, temperature=0)
        with httpx.stream("POST", u + "/chat/completions", json=body, timeout=30) as first:
            lines = first.iter_lines()  # kept: a dropped iterator closes the response (and cancels the row)
            next(lines)  # the first row holds the only slot (queued, prefilling or running)
            r = httpx.post(u + "/chat/completions", json=ok(), timeout=30)
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
            assert r.json()["error"]["code"] == "queue_full"


def test_max_len_caps_the_served_context(model_dir):
    with app_server(create_app(load_chat_model(model_dir, name=NAME), max_len=64)) as u:
        assert httpx.get(u + "/models", timeout=30).json()["data"][0]["max_model_len"] == 64
        r = httpx.post(u + "/chat/completions", json=ok(max_tokens=60), timeout=30)
        assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"
        r = httpx.post(u + "/chat/completions", json=ok(temperature=0), timeout=30)
        assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] <= 4


def test_chat_without_template_is_400_completions_work(model_dir, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(model_dir, bare)
    (bare / "chat_template.jinja").unlink(missing_ok=True)
    cfg = json.loads((bare / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    (bare / "tokenizer_config.json").write_text(json.dumps(cfg))
    with app_server(create_app(load_chat_model(bare, name=NAME))) as u:
        r = httpx.post(u + "/chat/completions", json=ok(), timeout=30)
        assert r.status_code == 400 and r.json()["error"]["code"] == "no_chat_template"
        assert "chat_template" in r.json()["error"]["message"]
        r = httpx.post(u + "/completions", json={"model": NAME, "prompt": "梅雨", "max_tokens": 3}, timeout=30)
        assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 3


@pytest.mark.parametrize("damage", ["config", "weights"])
def test_damaged_model_is_refused_naming_the_file(model_dir, tmp_path, damage, capsys):
    bad = tmp_path / "bad"
    shutil.copytree(model_dir, bad)
    target = bad / "config.json" if damage == "config" else next(bad.glob("*.safetensors"))
    target.write_bytes(b"{broken" if damage == "config" else b"not safetensors")
    app = load_app("serve")
    with pytest.raises(SystemExit) as e:
        app.main(app.Args(model=str(bad), port=0))
    out = capsys.readouterr()
    assert e.value.code == 2 and target.name in out.err and "serving" not in out.out


def test_sigterm_finishes_the_answer_in_flight(model_dir):
    with running_server(model_dir, "--name", NAME) as (u, proc):
        body = ok(max_tokens=400, stream=True, stream_options={"include_usage": True}, temperature=0)
        lines = []
        with httpx.stream("POST", u + "/chat/completions", json=body, timeout=60) as r:
            for line in r.iter_lines():
                if len(lines) == 3:
                    proc.send_signal(signal.SIGTERM)
                if line:
                    lines.append(line)
        assert lines[-1] == "data: [DONE]"
        assert json.loads(lines[-2].removeprefix("data: "))["usage"]["completion_tokens"] == 400
        assert proc.wait(60) == 0
        assert "server stopped" in proc.stdout.read()


def test_a_server_bug_is_a_500_in_openai_shape_and_serving_goes_on(model_dir):
    cm = load_chat_model(model_dir, name=NAME)

    def broken(text: str) -> list[int]:
        raise RuntimeError("simulated bug")

    cm.encode_text = broken
    with app_server(create_app(cm)) as u:
        r = httpx.post(u + "/completions", json={"model": NAME, "prompt": "x", "max_tokens": 2}, timeout=30)
        assert r.status_code == 500 and r.json()["error"]["type"] == "server_error"
        assert "simulated" not in r.text  # no internals leak to the client
        assert httpx.post(u + "/chat/completions", json=ok(), timeout=30).status_code == 200
