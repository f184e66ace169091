"""A scripted OpenAI-compatible chat server for tests and dry plumbing runs (stdlib only, loopback only, bounded).

    python -m jpcurate.endpoint_fake --port 8011     # demo replies (see demo_reply), until Ctrl-C

    with FakeChatServer(reply=lambda messages: "はい。") as server:
        client = EndpointClient(server.base_url, "fake")

The last user message may carry fault markers that the server obeys, counted per distinct message list:
`[429x2]` answers 429 (with `Retry-After: 0`) to the first two attempts, `[500x1]` answers 500 once,
`[400]` always answers 400, `[sleep0.5]` waits 0.5 s before answering. `server.log` records every request
(arrival time, the last user message, the status sent). After `max_requests` the server answers 503 to
everything, so a runaway client loop in a test ends.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULT = re.compile(r"\[(429|500)x(\d+)\]|\[(400)\]|\[sleep([\d.]+)\]")


def echo_reply(messages: list[dict]) -> str:
    return "応答: " + messages[-1]["content"]


def demo_reply(messages: list[dict]) -> str:
    """Stand-in answers for the generation jobs: a rephrase request gets its text back unchanged, a CoT request
    a short reasoning ending in the hint, anything else a fixed sentence."""
    content = messages[-1]["content"]
    if "\n文章：\n" in content:
        return content.split("\n文章：\n", 1)[1]
    if "模範解答：" in content:
        hint = content.split("模範解答：", 1)[1].split("\n", 1)[0]
        return f"問題の条件を順に確かめます。\n答え：{hint}"
    return "はい、承知しました。ご質問の内容について順を追って説明します。"


class FakeChatServer:
    def __init__(self, reply: Callable[[list[dict]], str] = echo_reply, *, api_key: str | None = None,
                 max_requests: int = 2000, port: int = 0) -> None:
        self.reply, self.api_key, self.max_requests, self.port = reply, api_key, max_requests, port
        self.log: list[dict] = []
        self.attempts: dict[str, int] = {}
        self.lock = threading.Lock()
        self.httpd: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def contents(self, status: int | None = 200) -> list[str]:
        """Last user messages of the logged requests with this status (None: all)."""
        return [r["content"] for r in self.log if status is None or r["status"] == status]

    def start(self) -> FakeChatServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def _send(self, status: int, body: dict, headers: dict | None = None) -> None:
                data = json.dumps(body, ensure_ascii=False).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/v1/models":
                    self._send(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length))
                    if not isinstance(body["messages"][-1]["content"], str):
                        raise TypeError("content")
                except (ValueError, KeyError, IndexError, TypeError):
                    self._send(400, {"error": {"message": "bad request body", "type": "invalid_request_error"}})
                    return
                status, headers, text = server._decide(self.path, self.headers.get("Authorization"), body)
                if status == 200:
                    self._send(200, server._completion(body, text))
                else:
                    self._send(status, {"error": {"message": f"injected {status}", "type": "fake", "code": status}},
                               headers)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    def _decide(self, path: str, auth: str | None, body: dict) -> tuple[int, dict, str]:
        messages = body["messages"]
        content = messages[-1]["content"]
        key = json.dumps([messages, body.get("seed")], ensure_ascii=False, sort_keys=True)
        with self.lock:
            attempt = self.attempts[key] = self.attempts.get(key, 0) + 1
            n = len(self.log)
            entry = {"t": time.monotonic(), "content": content, "attempt": attempt, "status": 200}
            self.log.append(entry)
        status, headers, text = 200, {}, ""
        if n >= self.max_requests:
            status = 503
        elif path.rstrip("/") != "/v1/chat/completions":
            status = 404
        elif self.api_key is not None and auth != f"Bearer {self.api_key}":
            status = 401
        else:
            for m in FAULT.finditer(content):
                if m.group(1) and attempt <= int(m.group(2)) and status == 200:  # the first fault wins
                    status = int(m.group(1))
                    headers = {"Retry-After": "0"} if status == 429 else {}
                elif m.group(3) and status == 200:
                    status = 400
                elif m.group(4):
                    time.sleep(float(m.group(4)))
            if status == 200:
                text = self.reply(messages)
        entry["status"] = status
        return status, headers, text

    @staticmethod
    def _completion(body: dict, text: str) -> dict:
        prompt = sum(len(m.get("content", "")) for m in body["messages"])
        return {
            "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": len(text), "total_tokens": prompt + len(text)},
        }

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(timeout=5)

    def __enter__(self) -> FakeChatServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()



if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="scripted OpenAI-compatible server on 127.0.0.1 (demo replies)")
    parser.add_argument("--port", type=int, default=8011)
    fake = FakeChatServer(demo_reply, max_requests=1_000_000, port=parser.parse_args().port).start()
    print(f"serving fake chat completions on {fake.base_url} (Ctrl-C stops)", flush=True)
    try:
        fake.thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
