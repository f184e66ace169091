"""The OpenAI-compatible HTTP app (FastAPI on uvicorn: the ASGI stack vLLM's own OpenAI server uses, with SSE
streaming, client-disconnect detection and graceful shutdown built in).

    app = create_app(load_chat_model("runs/demo/sft/hf"), api_key=None)
    uvicorn.run(app, host="127.0.0.1", port=8000)

Routes: GET /v1/models, POST /v1/chat/completions, POST /v1/completions, GET /health. Every error is OpenAI's
JSON shape; client mistakes are 4xx (400 bad field, 401 key, 404 model or route, 503 queue full + Retry-After).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from jpmoe.sampling import SamplingParams
from jpmoe.serve.engine import Engine, Job, QueueFull
from jpmoe.serve.host import ChatModel, NoChatTemplate
from jpmoe.serve.protocol import (
    DONE,
    APIError,
    GenRequest,
    bad,
    chunk,
    new_id,
    parse_chat,
    parse_completion,
    parse_json,
    response,
    usage,
)

DISCONNECT_POLL_S = 0.5
log = logging.getLogger("jpmoe.serve")


def error_response(e: APIError) -> JSONResponse:
    return JSONResponse(e.body(), status_code=e.status, headers=e.headers)


def create_app(host: ChatModel, *, api_key: str | None = None, max_batch: int = 16, max_queue: int = 64,
               max_len: int | None = None, retry_after_s: int = 1) -> FastAPI:
    """max_len: the context served (prompt + completion), at most the model's max_seq_len (default); the static KV
    cache holds max_batch x max_len positions."""
    engine = Engine(host.model, host.tokenizer, max_batch=max_batch, max_queue=max_queue, max_len=max_len)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        loop = asyncio.get_running_loop()

        def fanout(events: list[tuple[Job, tuple]]) -> None:  # runs in the event loop
            for job, ev in events:
                job.emit(ev)

        engine.deliver = lambda events: loop.call_soon_threadsafe(fanout, events)  # one wake-up per step
        engine.start()
        yield
        await asyncio.to_thread(engine.stop)  # uvicorn has let in-flight requests finish; drain the rest

    app = FastAPI(title="jpmoe OpenAI-compatible server", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.engine = engine

    @app.exception_handler(APIError)
    async def api_error(_: Request, e: APIError):
        return error_response(e)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, e: StarletteHTTPException):
        kind = "not_found_error" if e.status_code == 404 else "invalid_request_error"
        return error_response(APIError(e.status_code, str(e.detail), type=kind))

    @app.exception_handler(Exception)
    async def internal_error(_: Request, e: Exception):  # a server bug: still OpenAI's shape, never a traceback
        log.exception("request failed")
        return error_response(APIError(500, f"internal error: {type(e).__name__}", type="server_error"))

    async def check_key(request: Request) -> None:
        """A route dependency, not an HTTP middleware: Starlette's BaseHTTPMiddleware hides the client's
        disconnect from the route, and a request whose client left must stop decoding."""
        if api_key is not None:
            got = request.headers.get("authorization", "")
            if not hmac.compare_digest(got.encode(), f"Bearer {api_key}".encode()):
                raise APIError(401, "Incorrect API key provided", code="invalid_api_key")

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(check_key)])

    @app.get("/health")
    async def health():
        return {"status": "ok", **engine.status()}

    @v1.get("/models")
    async def models():
        return {"object": "list", "data": [{
            "id": host.name, "object": "model", "created": int(time.time()), "owned_by": "jpmoe",
            "root": str(host.path), "parent": None, "max_model_len": engine.max_len}]}

    @v1.post("/chat/completions")
    async def chat(request: Request):
        req = parse_chat(parse_json(await request.body()), host.name)
        try:
            prompts = [host.encode_chat(req.messages)]
        except NoChatTemplate as e:
            raise bad("messages", str(e), code="no_chat_template") from None
        except Exception as e:  # a Jinja template that raises on these messages (turn order, roles)
            raise bad("messages", f"the chat template rejected these messages: {e}") from None
        return await run(request, req, prompts)

    @v1.post("/completions")
    async def completions(request: Request):
        req = parse_completion(parse_json(await request.body()), host.name)
        prompts = [host.encode_text(p) if isinstance(p, str) else p for p in req.prompts]
        return await run(request, req, prompts)

    async def run(request: Request, req: GenRequest, prompts: list[list[int]]):
        params = sampling_params(req, prompts)
        queue = asyncio.Queue()
        job = Job(prompts, params, req.n, queue.put_nowait, stops=req.stop, seed=req.seed)  # via engine.deliver
        try:
            engine.submit(job)
        except QueueFull as e:
            raise APIError(503, f"the server is busy: {e}; retry later", type="server_busy", code="queue_full",
                           headers={"Retry-After": str(retry_after_s)}) from None
        except ValueError as e:
            raise bad("n", str(e)) from None
        prompt_tokens = sum(len(p) for p in prompts)
        echo = [(p if isinstance(p, str) else host.decode(p)) if req.echo else "" for p in req.prompts
                for _ in range(req.n)] if req.kind == "completion" else [""] * job.size
        if req.stream:
            return StreamingResponse(stream(req, job, queue, prompt_tokens, echo), media_type="text/event-stream")
        return await collect(request, req, job, queue, prompt_tokens, echo)

    def sampling_params(req: GenRequest, prompts: list[list[int]]) -> SamplingParams:
        longest = max(len(p) for p in prompts)
        param = "messages" if req.kind == "chat" else "prompt"
        if any(not p for p in prompts):
            raise bad(param, "the prompt encodes to no tokens")
        V = host.config.vocab_size
        if any(t < 0 or t >= V for p in prompts for t in p):
            raise bad(param, f"token ids must be in [0, {V})")
        room = engine.max_len - longest
        if room < 1 or (req.max_tokens or 0) > room:
            raise bad(param, f"This model's maximum context length is {engine.max_len} tokens. However, you "
                      f"requested {longest + (req.max_tokens or 1)} tokens ({longest} in the "
                      f"{param}, {req.max_tokens or 1} for the completion). Please reduce the length of the "
                      f"{param} or the completion.", code="context_length_exceeded")
        return SamplingParams(max_new_tokens=req.max_tokens or room, temperature=req.temperature,
                              top_k=req.top_k, top_p=req.top_p, repetition_penalty=req.repetition_penalty,
                              stop_token_ids=host.stop_ids)

    async def collect(request, req, job, queue, prompt_tokens, echo):
        texts, finishes = list(echo), [None] * job.size
        done, completion = 0, 0
        next_check = time.monotonic() + DISCONNECT_POLL_S
        try:
            while done < job.size:
                try:  # the cheap path first: wait_for costs a task per call
                    ev = queue.get_nowait() if not queue.empty() else await asyncio.wait_for(queue.get(),
                                                                                             DISCONNECT_POLL_S)
                except TimeoutError:
                    ev = None
                if time.monotonic() >= next_check:  # events may never pause long enough for a timeout
                    next_check = time.monotonic() + DISCONNECT_POLL_S
                    if await request.is_disconnected():
                        job.cancel()
                        return JSONResponse({}, status_code=499)
                if ev is None:
                    continue
                if ev[0] == "delta":
                    texts[ev[1]] += ev[2]
                elif ev[0] == "done":
                    finishes[ev[1]], done, completion = ev[2], done + 1, completion + ev[3]
                else:
                    raise APIError(500, ev[1], type="server_error")
        finally:
            if done < job.size:
                job.cancel()
        return response(req, rid_of(req), texts, finishes, usage(prompt_tokens, completion))

    async def stream(req, job, queue, prompt_tokens, echo):
        rid, done, completion = rid_of(req), 0, 0
        try:
            for i in range(job.size):
                if req.kind == "chat":
                    yield chunk(req, rid, i, first=True)
                elif echo[i]:
                    yield chunk(req, rid, i, echo[i])
            failed = False
            while done < job.size and not failed:
                events = [await queue.get()]
                while not queue.empty():  # whatever else is ready goes out in the same write
                    events.append(queue.get_nowait())
                out = []
                for ev in events:
                    if ev[0] == "delta":
                        out.append(chunk(req, rid, ev[1], ev[2]))
                    elif ev[0] == "done":
                        done, completion = done + 1, completion + ev[3]
                        out.append(chunk(req, rid, ev[1], finish=ev[2]))
                    else:  # as vLLM: the error as a data event, then the end of the stream
                        out.append(f"data: {json.dumps(APIError(500, ev[1], type='server_error').body())}\n\n")
                        failed = True
                        break
                yield "".join(out)
            if req.include_usage:
                yield chunk(req, rid, None, use=usage(prompt_tokens, completion))
            yield DONE
        finally:  # the client went away (the generator is closed) or the answer is complete
            if done < job.size:
                job.cancel()

    def rid_of(req: GenRequest) -> str:
        return new_id(req.kind)

    app.include_router(v1)
    return app
