"""One client for every job that calls a model through an OpenAI-compatible `/v1/chat/completions` endpoint.

Rephrasing, answer and chain-of-thought generation, and the evaluation judge all go through `EndpointClient`:

    from jpcurate.endpoint import ChatRequest, EndpointClient
    client = EndpointClient("http://127.0.0.1:8000/v1", "my-model", cache_dir="runs/gen-cache", rpm=600)
    results = client.chat([ChatRequest([{"role": "user", "content": "日本の首都は？"}])])
    results[0].text, results[0].error, client.usage

Built on httpx (the `jpcurate[llm]` extra), not the `openai` package: one small dependency, and the retry
policy stays in one place (the `openai` client retries on its own, which would hide attempts from the request
count and from the rate limit); the wire format is plain JSON either way, so vLLM, `apps/serve.py` and OpenAI
itself all work. Never imports torch.

- Bounded concurrency (`concurrency` requests in flight) and an optional requests-per-minute limit (`rpm`;
  attempts are paced `60/rpm` seconds apart, retries included).
- Retries with exponential backoff and jitter on 429, 5xx, timeouts and connection errors; a `Retry-After`
  header is honoured (waited at least). Other 4xx fail at once. A request that still fails is a `ChatResult`
  with `error` set: `chat` never raises for a request and never drops one; results come back in request order.
- Every successful result is cached in `cache_dir/chat.jsonl` under a hash of (model, messages, parameters),
  one line appended and fsynced per result: a killed job reruns only what had not finished, a finished job
  reruns without sending anything. A torn last line (killed mid-write) is skipped and counted.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import json
import os
import random
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

CACHE_FILE = "chat.jsonl"
RETRY_STATUS = frozenset({408, 409, 429}) | frozenset(range(500, 600))


@dataclass
class ChatRequest:
    """One chat completion: OpenAI `messages` (role/content dicts) and sampling parameters."""

    messages: list[dict]
    temperature: float = 0.0
    max_tokens: int = 512
    top_p: float = 1.0
    stop: list[str] | str | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.messages, list) or not self.messages:
            raise ValueError("ChatRequest.messages must be a non-empty list of {'role', 'content'} dicts")
        for m in self.messages:
            if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
                raise ValueError(f"ChatRequest.messages: every message needs string 'role' and 'content', got {m!r}")

    def params(self) -> dict:
        """The request body fields other than `model` and `messages`, in a fixed order."""
        body = {"temperature": self.temperature, "max_tokens": self.max_tokens, "top_p": self.top_p}
        if self.stop is not None:
            body["stop"] = self.stop
        if self.seed is not None:
            body["seed"] = self.seed
        return body


@dataclass(frozen=True)
class ChatResult:
    """What came back for one request: `text` on success, `error` (and `text=None`) after the last retry."""

    text: str | None
    error: str | None
    finish_reason: str | None
    usage: dict
    cached: bool


@dataclass
class Usage:
    """Running totals of one client: tokens from successful responses, HTTP attempts, cache hits, failures."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    requests: int = 0  # HTTP attempts sent, retries included
    retries: int = 0
    cache_hits: int = 0
    failures: int = 0  # requests that ended with an error after all retries
    torn_cache_lines: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def request_key(model: str, request: ChatRequest) -> str:
    """The cache key: sha256 of the canonical JSON of (model, messages, parameters)."""
    blob = json.dumps({"model": model, "messages": request.messages, **request.params()},
                      ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def chat_url(base_url: str) -> str:
    """`http://host:port` -> `http://host:port/v1/chat/completions`; a URL with a path keeps it (`.../v1`)."""
    base = base_url.rstrip("/")
    if urlsplit(base).path in ("", "/"):
        base += "/v1"
    return base + "/chat/completions"


class _Pacer:
    """Spaces request starts `60/rpm` seconds apart (no bursts), so no 60-second window holds more than rpm."""

    def __init__(self, rpm: float) -> None:
        self.interval = 60.0 / rpm if rpm and rpm > 0 else 0.0
        self.next_start = 0.0
        self.lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.interval:
            return
        async with self.lock:
            now = time.monotonic()
            start = max(now, self.next_start)
            self.next_start = start + self.interval
        await asyncio.sleep(start - now)


class _Cache:
    """Append-only JSONL of successful results keyed by `request_key`; one fsynced line per result."""

    def __init__(self, cache_dir: str | os.PathLike | None, usage: Usage) -> None:
        self.path = Path(cache_dir) / CACHE_FILE if cache_dir is not None else None
        self.entries: dict[str, dict] = {}
        self.lock = threading.Lock()
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            return
        raw = self.path.read_bytes()
        for line in raw.split(b"\n"):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                self.entries[entry["key"]] = entry
            except (ValueError, KeyError, TypeError):
                usage.torn_cache_lines += 1
        if raw and not raw.endswith(b"\n"):  # a torn tail: start the next line cleanly
            with open(self.path, "ab") as f:
                f.write(b"\n")

    def get(self, key: str) -> dict | None:
        return self.entries.get(key)

    def put(self, key: str, model: str, result: ChatResult) -> None:
        entry = {"key": key, "model": model, "text": result.text, "finish_reason": result.finish_reason,
                 "usage": result.usage}
        self.entries[key] = entry
        if self.path is None:
            return
        line = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
        with self.lock, open(self.path, "ab") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())


def _retry_after(headers: httpx.Headers) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date), or None."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time()) if when is not None else None


def _error_message(response: httpx.Response) -> str:
    try:
        err = response.json().get("error")
        msg = err.get("message") if isinstance(err, dict) else err
    except (ValueError, AttributeError):
        msg = None
    return f"HTTP {response.status_code}: {msg or response.text[:200]}"


def _parse(body: object) -> ChatResult:
    try:
        choice = body["choices"][0]
        text = choice["message"]["content"]
        usage = body.get("usage") or {}
    except (KeyError, IndexError, TypeError):
        return ChatResult(None, f"malformed response: {str(body)[:200]}", None, {}, False)
    if not isinstance(text, str):
        return ChatResult(None, "response has no text content", choice.get("finish_reason"), {}, False)
    usage = {k: int(usage.get(k) or 0) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
    return ChatResult(text, None, choice.get("finish_reason"), usage, False)


class EndpointClient:
    """A cached, rate-limited, retrying client of one model behind an OpenAI-compatible endpoint."""

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None,
                 cache_dir: str | os.PathLike | None = None, concurrency: int = 8, rpm: float = 0,
                 max_retries: int = 5, timeout: float = 120.0, backoff_base: float = 0.5,
                 backoff_max: float = 60.0, progress: bool = False) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.url = chat_url(base_url)
        self.model = model
        self.headers = {"Content-Type": "application/json"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self.concurrency, self.rpm, self.max_retries, self.timeout = concurrency, rpm, max_retries, timeout
        self.backoff_base, self.backoff_max, self.progress = backoff_base, backoff_max, progress
        self.usage = Usage()
        self.cache = _Cache(cache_dir, self.usage)

    def chat(self, requests: list[ChatRequest]) -> list[ChatResult]:
        """Run every request (cache first) and return one result per request, in request order."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.achat(requests))
        # Called from inside a running event loop (a notebook): run ours in a thread.
        out: list = []
        worker = threading.Thread(target=lambda: out.append(asyncio.run(self.achat(requests))))
        worker.start()
        worker.join()
        return out[0]

    async def achat(self, requests: list[ChatRequest]) -> list[ChatResult]:
        """The async form of `chat`."""
        results: list[ChatResult | None] = [None] * len(requests)
        todo: dict[str, list[int]] = {}  # identical requests in one batch are sent once
        for i, req in enumerate(requests):
            key = request_key(self.model, req)
            hit = self.cache.get(key)
            if hit is not None:
                results[i] = ChatResult(hit["text"], None, hit.get("finish_reason"), hit.get("usage") or {}, True)
                self.usage.cache_hits += 1
            else:
                todo.setdefault(key, []).append(i)
        if todo:
            await self._send_all(requests, todo, results)
        return results  # type: ignore[return-value]

    async def _send_all(self, requests, todo: dict[str, list[int]], results: list) -> None:
        limit = asyncio.Semaphore(self.concurrency)
        pacer = _Pacer(self.rpm)
        done = 0
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        async with httpx.AsyncClient(timeout=self.timeout, limits=limits, headers=self.headers) as http:

            async def one(key: str, idx: list[int]) -> None:
                nonlocal done
                async with limit:
                    res = await self._send(http, pacer, requests[idx[0]])
                if res.error is None:
                    self.cache.put(key, self.model, res)
                    self.usage.prompt_tokens += res.usage.get("prompt_tokens", 0)
                    self.usage.completion_tokens += res.usage.get("completion_tokens", 0)
                    self.usage.total_tokens += res.usage.get("total_tokens", 0)
                else:
                    self.usage.failures += 1
                results[idx[0]] = res
                for j in idx[1:]:  # duplicates of a request in the same batch share its answer
                    results[j] = ChatResult(res.text, res.error, res.finish_reason, res.usage, res.error is None)
                    self.usage.cache_hits += res.error is None
                done += 1
                if self.progress and (done % max(1, len(todo) // 10) == 0 or done == len(todo)):
                    print(f"[endpoint] {done}/{len(todo)} sent requests finished, usage {self.usage.as_dict()}",
                          file=sys.stderr, flush=True)

            await asyncio.gather(*(one(k, v) for k, v in todo.items()))

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        backoff = min(self.backoff_max, self.backoff_base * 2**attempt)
        backoff = backoff / 2 + random.uniform(0, backoff / 2)  # jitter: spread the retries of a burst
        return max(backoff, min(retry_after, self.backoff_max * 10)) if retry_after is not None else backoff

    async def _send(self, http: httpx.AsyncClient, pacer: _Pacer, request: ChatRequest) -> ChatResult:
        body = {"model": self.model, "messages": request.messages, **request.params()}
        error = "not sent"
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.usage.retries += 1
            await pacer.wait()
            self.usage.requests += 1
            retry_after = None
            try:
                response = await http.post(self.url, json=body)
            except httpx.TimeoutException as e:
                error = f"timeout after {self.timeout}s ({type(e).__name__})"
            except httpx.TransportError as e:
                error = f"connection error: {type(e).__name__}: {e}"
            else:
                if response.status_code == 200:
                    try:
                        return _parse(response.json())
                    except ValueError:
                        return ChatResult(None, f"response is not JSON: {response.text[:200]}", None, {}, False)
                error = _error_message(response)
                if response.status_code not in RETRY_STATUS:
                    return ChatResult(None, error, None, {}, False)
                retry_after = _retry_after(response.headers)
            if attempt < self.max_retries:
                await asyncio.sleep(self._delay(attempt, retry_after))
        return ChatResult(None, f"{error} (gave up after {self.max_retries + 1} attempts)", None, {}, False)
