"""A tiny chat model for the serving and chat tests: a SentencePiece tokenizer trained on a few bundled Japanese
paragraphs (with jpmoe.tokenizer's chat template) and a random 2-layer Llama exported next to it as a Hugging Face
directory. Built once per session; plus a server on a free loopback port, always stopped."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from app_helpers import ENV, ROOT

_BUILT: dict[str, Path] = {}


def tiny_chat_model(base: Path, data_dir: Path) -> Path:
    """-> HF directory (config.json, safetensors, tokenizer with chat_template); cached per session."""
    if "hf" in _BUILT:
        return _BUILT["hf"]
    import torch

    from jpmoe import ModelConfig, Transformer
    from jpmoe.hf import save_hf
    from jpmoe.tokenizer import export_hf_tokenizer, train_sentencepiece

    texts = [json.loads(line)["text"] for line in (data_dir / "jglue/jsquad_paragraphs.jsonl").open()][:60]
    tok_dir = export_hf_tokenizer(train_sentencepiece(texts, base / "spm", vocab_size=1500), base / "tokenizer")
    from transformers import AutoTokenizer

    vocab = len(AutoTokenizer.from_pretrained(str(tok_dir)))
    config = ModelConfig(vocab_size=vocab, hidden_size=64, intermediate_size=96, num_layers=2, num_heads=4,
                         num_kv_heads=2, max_seq_len=1024, init_std=0.2, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(0)
    save_hf(Transformer(config).state_dict(), config, base / "hf", tokenizer_dir=tok_dir)
    _BUILT["hf"] = base / "hf"
    return base / "hf"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(model: Path, *extra: str, timeout: float = 60.0):
    """apps/serve.py in a subprocess on 127.0.0.1:<free port>; yields (base_url, process); always stopped."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "apps/serve.py"), "--model", str(model), "--port", str(port),
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if "serving" in line:
                break
            if not line and proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
        else:
            raise TimeoutError("server did not start")
        yield f"http://127.0.0.1:{port}/v1", proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def app_server(app, timeout: float = 30.0):
    """An ASGI app under uvicorn in a thread of this process, on 127.0.0.1:<free port>; yields the /v1 base URL."""
    import threading

    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise TimeoutError("in-process server did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout)
