"""Serve a jpmoe checkpoint or a Hugging Face Llama/Mixtral directory over OpenAI's API (chat + completions, SSE).

    python apps/serve.py --model runs/demo/sft/hf --port 8000
    python apps/serve.py --model runs/demo/sft/hf --port 8000 --api-key secret --name jp-chat
    curl http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' \
        -d '{"model": "hf", "messages": [{"role": "user", "content": "日本の首都は？"}], "max_tokens": 64}'

Requests that arrive together share one forward per decoding step (up to --max_batch rows); more wait in a queue
of --max_queue rows, beyond which a request gets 503 with Retry-After. Binds to 127.0.0.1 unless --host says
otherwise. Ctrl-C / SIGTERM finishes the requests in flight, then exits. On a GPU, vLLM serves the same export
faster (docs/chat.md).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from dataclasses import dataclass

import torch

from jpmoe.serve import load_chat_model
from jpmoe.train import parse_args


@dataclass
class Args:
    config: str = ""  # TOML file with any of these keys
    model: str = ""  # jpmoe export / HF directory / training checkpoint or run directory
    host: str = "127.0.0.1"
    port: int = 8000  # 0: a free port (the ready line says which)
    name: str = ""  # served model id; default: the model directory's name
    api_key: str = ""  # when set, every /v1 request needs "Authorization: Bearer KEY"
    max_batch: int = 16  # rows decoded together (prompts x n)
    max_queue: int = 64  # rows waiting beyond that before 503
    max_len: int = 0  # context served (prompt + completion); 0: the model's max_seq_len. KV cache = max_batch x this
    device: str = "auto"  # "auto": cuda when available, else cpu
    dtype: str = "auto"  # "auto": bfloat16 on cuda, float32 on cpu; or float32 / bfloat16 / float16
    threads: int = 0  # torch CPU threads; 0: torch's default


def main(args: Args) -> None:
    import uvicorn

    from jpmoe.serve.app import create_app

    if not args.model:
        raise SystemExit("error: --model PATH is required")
    if args.max_batch < 1 or args.max_queue < 0 or args.max_len < 0:
        raise SystemExit("error: --max_batch must be >= 1, --max_queue and --max_len >= 0")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = None if args.dtype == "auto" and device == "cpu" else getattr(
        torch, "bfloat16" if args.dtype == "auto" else args.dtype)
    try:
        host = load_chat_model(args.model, name=args.name or None, device=device, dtype=dtype)
    except (OSError, ValueError, KeyError) as e:
        print(f"error: cannot load {args.model}: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    app = create_app(host, api_key=args.api_key or None, max_batch=args.max_batch, max_queue=args.max_queue,
                     max_len=args.max_len or None)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=600)
    server = uvicorn.Server(config)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    async def announce():
        while not server.started:
            await asyncio.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        print(f"serving {host.name} ({host.config.num_params() / 1e6:.1f}M params, {device}) at "
              f"http://{args.host}:{port}/v1", flush=True)

    async def run():
        task = asyncio.create_task(announce())
        await server.serve()
        task.cancel()

    # uvicorn restores these handlers and re-raises the signal once in-flight requests are done: end quietly then
    signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    print("server stopped", flush=True)


if __name__ == "__main__":
    main(parse_args(Args))
