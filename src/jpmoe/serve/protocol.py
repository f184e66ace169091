"""The OpenAI request checks and response shapes, torch-free: a request body either becomes a `GenRequest` or an
`APIError` whose body is OpenAI's `{"error": {"message", "type", "param", "code"}}` with a 4xx status.

Accepted: `model`, `messages` / `prompt`, `max_tokens` / `max_completion_tokens`, `temperature`, `top_p`, `n`,
`stop`, `seed`, `stream`, `stream_options.include_usage`, and (as vLLM, outside OpenAI's set) `top_k` and
`repetition_penalty`. Fields this server cannot honour (logprobs, tools, logit_bias, non-zero presence/frequency
penalties, suffix, best_of > n, a JSON response_format) are a 400 naming the field, never silently ignored;
informational fields (`user`, `metadata`, ...) and unknown fields are ignored, as vLLM does.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from dataclasses import dataclass, field

ROLES = ("system", "developer", "user", "assistant")
MAX_STOPS = 4


class APIError(Exception):
    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def bad(param: str | None, message: str, code: str | None = None) -> APIError:
    return APIError(400, message, param=param, code=code)


@dataclass
class GenRequest:
    kind: str  # "chat" or "completion"
    model: str
    messages: list[dict] = field(default_factory=list)  # chat: [{"role", "content": str}]
    prompts: list[str | list[int]] = field(default_factory=list)  # completions: text or token ids
    max_tokens: int | None = None  # None: up to the end of the context
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    n: int = 1
    stop: tuple[str, ...] = ()
    seed: int | None = None
    stream: bool = False
    include_usage: bool = False
    echo: bool = False


def parse_json(raw: bytes) -> dict:
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise bad(None, f"the request body is not valid JSON: {e}") from None
    if not isinstance(body, dict):
        raise bad(None, f"the request body must be a JSON object, got {type(body).__name__}")
    return body


def _number(body: dict, name: str, default: float, lo: float, hi: float) -> float:
    v = body.get(name)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise bad(name, f"{name} must be a number, got {v!r}")
    if not lo <= v <= hi:
        raise bad(name, f"{name} must be between {lo} and {hi}, got {v}")
    return float(v)


def _int(body: dict, name: str, default: int | None, lo: int | None = None, hi: int | None = None) -> int | None:
    v = body.get(name)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, int):
        raise bad(name, f"{name} must be an integer, got {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise bad(name, f"{name} must be {'>= ' + str(lo) if hi is None else f'between {lo} and {hi}'}, got {v}")
    return v


def _bool(body: dict, name: str) -> bool:
    v = body.get(name, False)
    if v is None:
        return False
    if not isinstance(v, bool):
        raise bad(name, f"{name} must be true or false, got {v!r}")
    return v


def _unsupported(body: dict) -> None:
    checks = {
        "logprobs": lambda v: v not in (None, False, 0), "top_logprobs": lambda v: v not in (None, 0),
        "tools": lambda v: bool(v), "functions": lambda v: bool(v), "logit_bias": lambda v: bool(v),
        "presence_penalty": lambda v: v not in (None, 0, 0.0), "frequency_penalty": lambda v: v not in (None, 0, 0.0),
        "suffix": lambda v: bool(v),
        "response_format": lambda v: v not in (None, {"type": "text"}),
    }
    for name, used in checks.items():
        if name in body and used(body[name]):
            hint = " (use repetition_penalty)" if name.endswith("_penalty") else ""
            raise bad(name, f"{name} is not supported by this server{hint}", code="unsupported_parameter")


def _sampling(body: dict, kind: str, model: str) -> GenRequest:
    _unsupported(body)
    max_tokens = _int(body, "max_tokens", None, lo=1)
    max_tokens = _int(body, "max_completion_tokens", max_tokens, lo=1)
    stop = body.get("stop")
    if stop is None:
        stop = []
    elif isinstance(stop, str):
        stop = [stop]
    if (not isinstance(stop, list) or len(stop) > MAX_STOPS
            or any(not isinstance(s, str) or not s for s in stop)):
        raise bad("stop", f"stop must be a non-empty string or a list of at most {MAX_STOPS} non-empty strings")
    stream = _bool(body, "stream")
    opts = body.get("stream_options")
    if opts is not None and (not stream or not isinstance(opts, dict)):
        raise bad("stream_options", "stream_options is an object, allowed only when stream is true")
    include_usage = bool(opts and opts.get("include_usage"))
    top_k = _int(body, "top_k", 0, lo=-1)
    top_p = _number(body, "top_p", 1.0, 0.0, 1.0)
    if top_p == 0.0:  # OpenAI accepts 0: only the most likely token
        top_p, top_k = 1.0, 1
    req = GenRequest(
        kind=kind, model=model, max_tokens=max_tokens, temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
        top_p=top_p, top_k=max(top_k, 0), repetition_penalty=_number(body, "repetition_penalty", 1.0, 1e-6, 100.0),
        n=_int(body, "n", 1, lo=1, hi=128), stop=tuple(stop), seed=_int(body, "seed", None), stream=stream,
        include_usage=include_usage, echo=_bool(body, "echo"),
    )
    if kind == "completion" and _int(body, "best_of", req.n, lo=1) != req.n:
        raise bad("best_of", "best_of other than n is not supported by this server", code="unsupported_parameter")
    return req


def _model(body: dict, served: str) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad("model", "model is required: a string naming the served model (GET /v1/models)")
    if model != served:
        raise APIError(404, f"The model `{model}` does not exist; this server serves `{served}`", param="model",
                       code="model_not_found")
    return model


def _content(i: int, m: dict) -> str:
    c = m.get("content")
    if isinstance(c, str):
        return c
    if c is None and m["role"] == "assistant":
        return ""
    if isinstance(c, list) and all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
                                   for p in c):
        return "".join(p["text"] for p in c)
    raise bad(f"messages[{i}].content", f"messages[{i}].content must be a string or a list of text parts")


def parse_chat(body: dict, served: str) -> GenRequest:
    model = _model(body, served)
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise bad("messages", "messages must be a non-empty list of {role, content} objects")
    out = []
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            raise bad(f"messages[{i}]", f"messages[{i}] must be an object with role and content")
        role = m.get("role")
        if role not in ROLES:
            raise bad(f"messages[{i}].role", f"messages[{i}].role {role!r} is not one of {', '.join(ROLES)}")
        out.append({"role": "system" if role == "developer" else role, "content": _content(i, m)})
    req = _sampling(body, "chat", model)
    req.messages = out
    if req.echo:
        raise bad("echo", "echo is a completions field", code="unsupported_parameter")
    return req


def parse_completion(body: dict, served: str) -> GenRequest:
    model = _model(body, served)
    p = body.get("prompt")
    if isinstance(p, str) or (isinstance(p, list) and p and all(isinstance(t, int) and not isinstance(t, bool)
                                                                for t in p)):
        prompts = [p]
    elif isinstance(p, list) and p and all(isinstance(x, str) or (
            isinstance(x, list) and x and all(isinstance(t, int) and not isinstance(t, bool) for t in x))
            for x in p):
        prompts = list(p)
    else:
        raise bad("prompt", "prompt must be a string, a list of strings, a list of token ids or a list of such lists")
    req = _sampling(body, "completion", model)
    req.prompts = prompts
    return req


def new_id(kind: str) -> str:
    return ("chatcmpl-" if kind == "chat" else "cmpl-") + uuid.uuid4().hex[:24]


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def response(req: GenRequest, rid: str, texts: list[str], finishes: list[str], use: dict) -> dict:
    """The whole (non-streaming) answer; texts and finishes in choice order."""
    if req.kind == "chat":
        choices = [{"index": i, "message": {"role": "assistant", "content": t}, "logprobs": None,
                    "finish_reason": f} for i, (t, f) in enumerate(zip(texts, finishes))]
        obj = "chat.completion"
    else:
        choices = [{"index": i, "text": t, "logprobs": None, "finish_reason": f}
                   for i, (t, f) in enumerate(zip(texts, finishes))]
        obj = "text_completion"
    return {"id": rid, "object": obj, "created": int(time.time()), "model": req.model, "choices": choices,
            "usage": use, "system_fingerprint": None}


def chunk(req: GenRequest, rid: str, index: int | None, text: str | None = None, finish: str | None = None,
          use: dict | None = None, first: bool = False) -> str:
    """One SSE event: a text delta (or the role opening / the finish of choice `index`), or the usage chunk."""
    if index is None:
        choices = []
    elif req.kind == "chat":
        delta = {"role": "assistant", "content": ""} if first else ({} if text is None else {"content": text})
        choices = [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}]
    else:
        choices = [{"index": index, "text": text or "", "logprobs": None, "finish_reason": finish}]
    obj = "chat.completion.chunk" if req.kind == "chat" else "text_completion"
    d = {"id": rid, "object": obj, "created": int(time.time()), "model": req.model, "choices": choices}
    if use is not None:
        d["usage"] = use
    return f"data: {json.dumps(d, ensure_ascii=False)}\n\n"


DONE = "data: [DONE]\n\n"
