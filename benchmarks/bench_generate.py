"""Generation speed on CPU: our decoder against transformers' `generate` on the same Hugging Face Llama directory,
and the OpenAI-compatible server's throughput as concurrent streaming clients grow.

Decode (batch 1, greedy, prompt 32 tokens, 128 new tokens, no early stop): tokens/s of `jpmoe.generate` (the static
slot cache of `jpmoe.decoder`), of the generator before it (the training forward with its KV cache, one
`model(...)` call per token, as `jpmoe.generate` was until this benchmark's change) and of
`LlamaForCausalLM.generate` (sdpa attention, its default DynamicCache), timed round-robin, median of repeats.
Engine: the batching scheduler alone, 1 / 4 / 16 rows submitted together (what the server can give at most).
Server: `apps/serve.py` in a subprocess, 1 / 4 / 16 client threads each streaming `--requests` chat completions
back to back (max_tokens 128, temperature 0): total completion tokens/s over the wall time, and p50/p95 time to
the first content chunk. Targets (issue 13): decode >= 2x transformers; 16 clients >= 4x one client.

The model is a random Llama with a SentencePiece tokenizer trained on the bundled JSQuAD paragraphs (~5M
parameters: hidden 256, 4 layers, vocabulary ~4k), where per-token overhead, not the matmuls, decides the rate.

    .venv/bin/python benchmarks/bench_generate.py               # ~2 minutes on 2 cores
    .venv/bin/python benchmarks/bench_generate.py --hidden 512 --layers 8
Writes benchmarks/results/generate-<date>-<machine>.md and .json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def build_model(out: Path, hidden: int, layers: int, vocab: int) -> Path:
    from transformers import AutoTokenizer

    from jpmoe import ModelConfig, Transformer
    from jpmoe.hf import save_hf
    from jpmoe.tokenizer import export_hf_tokenizer, train_sentencepiece

    texts = [json.loads(line)["text"] for line in (ROOT / "data/jglue/jsquad_paragraphs.jsonl").open()]
    tok_dir = export_hf_tokenizer(train_sentencepiece(texts, out / "spm", vocab_size=vocab), out / "tokenizer")
    n_vocab = len(AutoTokenizer.from_pretrained(str(tok_dir)))
    config = ModelConfig(vocab_size=n_vocab, hidden_size=hidden, intermediate_size=hidden * 8 // 3 // 16 * 16,
                         num_layers=layers, num_heads=hidden // 64, num_kv_heads=hidden // 64, max_seq_len=1024,
                         bos_token_id=1, eos_token_id=2)
    torch.manual_seed(0)
    save_hf(Transformer(config).state_dict(), config, out / "hf", tokenizer_dir=tok_dir)
    return out / "hf"


@torch.no_grad()
def generate_before(model, prompt: list[int], n: int) -> list[int]:
    """The generator before the static cache: the training forward (checks, 4-D mask, router statistics) per
    token on the growing KVCache, greedy, batch 1."""
    ids = torch.tensor([prompt])
    mask = torch.ones(1, len(prompt), dtype=torch.bool)
    cache = model.new_cache(1, len(prompt) + n)
    logits = model(ids, attention_mask=mask, cache=cache).logits[:, -1]
    out = []
    for _ in range(n):
        tok = logits.argmax(-1)
        out.append(int(tok))
        mask = torch.cat([mask, mask.new_ones(1, 1)], dim=1)
        logits = model(tok[:, None], attention_mask=mask, cache=cache).logits[:, -1]
    return out


def bench_decode(hf_dir: Path, prompt: list[int], n: int, repeats: int) -> dict:
    from transformers import LlamaForCausalLM

    from jpmoe.generate import SamplingParams, generate
    from jpmoe.load import load_pretrained

    ours = load_pretrained(hf_dir).model
    hf = LlamaForCausalLM.from_pretrained(str(hf_dir)).eval()
    params = SamplingParams(max_new_tokens=n)  # no stop ids: exactly n tokens
    ids = torch.tensor([prompt])
    runs = {
        "jpmoe.generate (static slot cache)": lambda: generate(ours, [prompt], params)[0],
        "jpmoe before (model.forward per token)": lambda: generate_before(ours, prompt, n),
        "transformers generate": lambda: hf.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                                                     pad_token_id=0)[0, len(prompt):].tolist(),
    }
    outs = {k: f() for k, f in runs.items()}  # warm-up, and the three must agree
    same = len({tuple(v) for v in outs.values()}) == 1
    times: dict[str, list[float]] = {k: [] for k in runs}
    with torch.no_grad():
        for _ in range(repeats):
            for k, f in runs.items():
                t = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t)
    return {"tokens_per_s": {k: n / statistics.median(v) for k, v in times.items()}, "same_tokens": same}


def stream_one(http, url: str, body: dict) -> tuple[float, int]:
    """-> (seconds to the first content chunk, completion tokens); `http` an httpx.Client made beforehand (a new
    client per request would time its own set-up, tens of ms of TLS context, as the server's latency)."""
    t0, ttft, tokens = time.perf_counter(), None, 0
    with http.stream("POST", url + "/chat/completions", json=body, timeout=600) as r:
        r.raise_for_status()
        for line in r.iter_lines():  # parse only what is measured: the clients share the CPU with the server
            if ttft is None and '"content": "' in line and '"content": ""' not in line:
                ttft = time.perf_counter() - t0
            elif line.startswith('data: {') and '"usage"' in line:
                tokens = json.loads(line[6:])["usage"]["completion_tokens"]
    return ttft if ttft is not None else time.perf_counter() - t0, tokens


def bench_engine(cm, questions: list[str], rows: list[int], n: int) -> list[dict]:
    """The batching engine without HTTP: `r` chat prompts submitted at once, n greedy tokens each (no early stop)."""
    from jpmoe.sampling import SamplingParams
    from jpmoe.serve.engine import Engine, Job

    out = []
    for r in [1, *rows]:  # the first pass warms up and is not reported
        engine = Engine(cm.model, cm.tokenizer, max_batch=max(rows))
        engine.start()
        finished, tokens = threading.Semaphore(0), []

        def emit(ev, tokens=tokens, finished=finished):
            if ev[0] == "done":
                tokens.append(ev[3])
                finished.release()

        t0 = time.perf_counter()
        for i in range(r):
            prompt = cm.encode_chat([{"role": "user", "content": questions[i % len(questions)]}])
            engine.submit(Job([prompt], SamplingParams(max_new_tokens=n), 1, emit))
        for _ in range(r):
            finished.acquire()
        wall = time.perf_counter() - t0
        engine.stop()
        out.append({"rows": r, "tokens": sum(tokens), "tokens_per_s": sum(tokens) / wall})
    return out[1:]


@contextmanager
def server_process(hf_dir: Path, threads: int):
    """apps/serve.py on 127.0.0.1 with a free port (--port 0; its ready line names it); always stopped."""
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen([sys.executable, str(ROOT / "apps/serve.py"), "--model", str(hf_dir), "--port", "0",
                             "--name", "bench", "--threads", str(threads)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        for line in proc.stdout:
            if "serving" in line:
                yield line.split(" at ")[-1].strip()
                break
        else:
            raise RuntimeError(f"the server exited with {proc.wait()}")
    finally:
        proc.terminate()
        proc.wait(60)


def bench_server(hf_dir: Path, questions: list[str], clients: list[int], requests: int, n: int,
                 threads: int) -> list[dict]:
    import httpx

    rows = []
    with server_process(hf_dir, threads) as url:
        for c in [1, *clients]:  # the first pass at 1 client warms the server up and is not reported
            ttfts, tokens, lock = [], [], threading.Lock()

            https = [httpx.Client() for _ in range(c)]

            def client(i: int, ttfts=ttfts, tokens=tokens, lock=lock, https=https) -> None:
                for j in range(requests):
                    q = questions[(i * requests + j) % len(questions)]
                    body = {"model": "bench", "messages": [{"role": "user", "content": q}], "max_tokens": n,
                            "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
                    t, k = stream_one(https[i], url, body)
                    with lock:
                        ttfts.append(t)
                        tokens.append(k)

            t0 = time.perf_counter()
            workers = [threading.Thread(target=client, args=(i,)) for i in range(c)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            wall = time.perf_counter() - t0
            for h in https:
                h.close()
            q = statistics.quantiles(ttfts, n=20) if len(ttfts) > 1 else ttfts * 19
            rows.append({"clients": c, "requests": len(ttfts), "tokens": sum(tokens), "wall_s": wall,
                         "tokens_per_s": sum(tokens) / wall, "ttft_p50_ms": 1e3 * statistics.median(ttfts),
                         "ttft_p95_ms": 1e3 * q[18]})
    return rows[1:]


def table(decode: dict, engine: list[dict], server: list[dict], meta: dict) -> str:
    tps = decode["tokens_per_s"]
    hf = tps["transformers generate"]
    lines = [f"# Generation, {meta['machine']}, {meta['date']}", "",
             f"torch {meta['torch']}, transformers {meta['transformers']}, {meta['threads']} torch thread(s), fp32; "
             f"random Llama {meta['params_m']:.1f}M params (hidden {meta['hidden']}, {meta['layers']} layers, "
             f"vocab {meta['vocab']}); load average at start {meta['load']}.", "",
             f"Decode, batch 1, prompt {meta['prompt_tokens']} tokens, {meta['new_tokens']} new tokens, median of "
             f"{meta['repeats']} round-robin repeats (identical tokens: {decode['same_tokens']}):", "",
             "| generator | tokens/s | vs transformers |", "|---|---|---|"]
    lines += [f"| {k} | {v:.0f} | {v / hf:.2f}x |" for k, v in tps.items()]
    lines += ["", f"Batching engine alone (`jpmoe.serve.engine.Engine`, no HTTP), rows submitted together, "
              f"{meta['new_tokens']} greedy tokens each:", "", "| rows | tokens/s | vs 1 row |", "|---|---|---|"]
    lines += [f"| {e['rows']} | {e['tokens_per_s']:.0f} | {e['tokens_per_s'] / engine[0]['tokens_per_s']:.2f}x |"
              for e in engine]
    one = server[0]["tokens_per_s"]
    lines += ["", f"Server (`apps/serve.py`, streaming chat, max_tokens {meta['new_tokens']}, temperature 0, "
              f"{meta['requests']} requests per client):", "",
              "| clients | requests | completion tokens | tokens/s | vs 1 client | TTFT p50 ms | TTFT p95 ms |",
              "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['clients']} | {r['requests']} | {r['tokens']} | {r['tokens_per_s']:.0f} | "
              f"{r['tokens_per_s'] / one:.2f}x | {r['ttft_p50_ms']:.0f} | {r['ttft_p95_ms']:.0f} |" for r in server]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=4000)
    ap.add_argument("--new_tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--requests", type=int, default=3, help="chat requests per client, back to back")
    ap.add_argument("--clients", default="1,4,16")
    ap.add_argument("--threads", type=int, default=1, help="torch threads, here and in the server")
    ap.add_argument("--machine", default=platform.machine() + f"-{os.cpu_count()}cpu")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load = f"{os.getloadavg()[0]:.1f}"
    import transformers

    from jpmoe.serve import load_chat_model

    with tempfile.TemporaryDirectory() as tmp:
        print("building the model and tokenizer ...", flush=True)
        hf_dir = build_model(Path(tmp), args.hidden, args.layers, args.vocab)
        cm = load_chat_model(hf_dir)
        texts = [json.loads(line) for line in (ROOT / "data/jglue/jsquad_paragraphs.jsonl").open()]
        questions = [qa["question"] for t in texts[:40] for qa in t["qas"]][:64]
        prompt = cm.encode_text(texts[0]["text"])[:32]
        print("decode, batch 1 ...", flush=True)
        decode = bench_decode(hf_dir, prompt, args.new_tokens, args.repeats)
        print("engine ...", flush=True)
        engine = bench_engine(cm, questions, [int(c) for c in args.clients.split(",")], args.new_tokens)
        print("server ...", flush=True)
        server = bench_server(hf_dir, questions, [int(c) for c in args.clients.split(",")], args.requests,
                              args.new_tokens, args.threads)
        meta = {"machine": args.machine, "date": datetime.date.today().isoformat(), "torch": torch.__version__,
                "transformers": transformers.__version__, "threads": args.threads, "hidden": args.hidden,
                "layers": args.layers, "vocab": cm.config.vocab_size, "params_m": cm.config.num_params() / 1e6,
                "prompt_tokens": len(prompt), "new_tokens": args.new_tokens, "repeats": args.repeats,
                "requests": args.requests, "load": load}
    md = table(decode, engine, server, meta)
    print(md)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"generate-{meta['date']}-{args.machine}"
    stem.with_suffix(".md").write_text(md)
    record = {"meta": meta, "decode": decode, "engine": engine, "server": server}
    stem.with_suffix(".json").write_text(json.dumps(record, indent=2))
    print(f"wrote {stem}.md and .json")


if __name__ == "__main__":
    main()
