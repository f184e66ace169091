"""make demo's chat stage (jpmoe.pipeline_report.chat) against a stand-in apps/serve.py: a minimal OpenAI-compatible
server on the free loopback port it is given. The stage waits for the 'serving' line, holds two turns with the
official client (the second request carries the first exchange), writes the transcript and stops the server."""

from __future__ import annotations

import json
import os
import sys
import textwrap

import pytest

from jpmoe.pipeline_report import chat

FAKE_SERVE = textwrap.dedent('''
    import json, sys
    from http.server import BaseHTTPRequestHandler, HTTPServer
    args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    assert args["--host"] == "127.0.0.1"
    seen = open(args["--model"] + "/requests.jsonl", "a")

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def reply(self, body):
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self.reply({"object": "list", "data": [{"id": "demo-model", "object": "model", "created": 0,
                                                     "owned_by": "me"}]})

        def do_POST(self):
            req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.write(json.dumps(req, ensure_ascii=False) + "\\n"); seen.flush()
            n = len(req["messages"])
            self.reply({"id": "x", "object": "chat.completion", "created": 0, "model": req["model"],
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": f"答え{n}"}}],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

    server = HTTPServer(("127.0.0.1", int(args["--port"])), H)
    print("loading...", flush=True)
    print(f"serving demo-model at http://127.0.0.1:{args['--port']}/v1", flush=True)
    server.serve_forever()
''')


@pytest.fixture
def fake_root(tmp_path):
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps/serve.py").write_text(FAKE_SERVE)
    model = tmp_path / "model"
    model.mkdir()
    return tmp_path, model


def test_chat_holds_two_turns_with_history_and_stops_the_server(fake_root, capsys):
    pytest.importorskip("openai")
    root, model = fake_root
    summary = chat(sys.executable, root, str(model), root / "chat", ready_timeout_s=60)
    assert summary.startswith("2 turns; first reply: '答え1'")
    requests = [json.loads(x) for x in (model / "requests.jsonl").read_text().splitlines()]
    assert [len(r["messages"]) for r in requests] == [1, 3]  # the second turn carries the first exchange
    assert requests[1]["messages"][1] == {"role": "assistant", "content": "答え1"}
    transcript = json.loads((root / "chat/transcript.json").read_text())
    assert transcript["served_as"] == "demo-model" and len(transcript["messages"]) == 4
    assert "**assistant**: 答え3" in (root / "chat/transcript.md").read_text()
    assert "serving demo-model" in (root / "chat/server.log").read_text()
    assert "serving demo-model" in capsys.readouterr().out


def test_a_server_that_exits_before_serving_fails_the_stage(fake_root):
    pytest.importorskip("openai")
    root, model = fake_root
    (root / "apps/serve.py").write_text("import sys; print('error: cannot load the model'); sys.exit(2)")
    with pytest.raises(RuntimeError, match="exited with status 2 before serving"):
        chat(sys.executable, root, str(model), root / "chat", ready_timeout_s=60)
    assert "cannot load the model" in (root / "chat/server.log").read_text()


def test_a_server_that_never_says_serving_times_out_and_is_stopped(fake_root):
    pytest.importorskip("openai")
    root, model = fake_root
    (root / "apps/serve.py").write_text("import time, os\nopen('pid', 'w').write(str(os.getpid()))\ntime.sleep(60)")
    with pytest.raises(TimeoutError, match="no 'serving' line in 5 s"):
        chat(sys.executable, root, str(model), root / "chat", ready_timeout_s=5)
    pid = int((root / "pid").read_text())
    with pytest.raises(ProcessLookupError):  # terminated and reaped in the finally
        os.kill(pid, 0)
