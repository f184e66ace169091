"""The in-process steps of `make demo` (apps/demo.py): the loss check, a two-turn chat through the
OpenAI-compatible server with the official `openai` client, and runs/demo/report.md linking every stage's output."""

from __future__ import annotations

import json
import os
import queue
import re
import socket
import subprocess
import threading
import time
from pathlib import Path

# questions in the style of the bundled SFT records (the demo model knows nothing else); the second needs the first
CHAT_TURNS = ("「坊っちゃん」を書いたのは誰ですか。", "その人のほかの作品をひとつ挙げてください。")
# what each stage leaves for the report: (label, path relative to runs/demo)
STAGE_FILES = {
    "raw": [("documents per kind", "raw/summary.json"), ("held-out text", "raw/heldout.jsonl")],
    "curate": [("filter report, classics", "curated/classics/report.md"),
               ("filter report, general", "curated/general/report.md"),
               ("dedup stats, classics", "deduped/classics/stats.json"),
               ("dedup stats, general", "deduped/general/stats.json")],
    "tokenizer": [("chars/token report", "tokenizer/report.json")],
    "shards": [("classics shards", "shards/classics/meta.json"), ("general shards", "shards/general/meta.json"),
               ("curriculum mixture", "mixture.toml")],
    "pretrain": [("loss curve", "pretrain/loss_curve.png"), ("metrics", "pretrain/metrics.jsonl"),
                 ("samples", "pretrain/samples.jsonl"), ("HF model", "pretrain/hf")],
    "sft": [("loss curve", "sft/loss_curve.png"), ("metrics", "sft/metrics.jsonl"), ("HF model", "sft/hf")],
    "dpo": [("loss curve", "dpo/loss_curve.png"), ("metrics", "dpo/metrics.jsonl"), ("HF model", "dpo/hf")],
    "chat": [("transcript", "chat/transcript.md"), ("server log", "chat/server.log")],
    "eval": [("evaluation report", "eval/report.md"), ("results", "eval/results.json")],
    "ablate": [("ablation report", "ablate/report.md"), ("plot", "ablate/ablation.png")],
}


def loss_summary(run_dir: Path) -> str:
    """'loss A -> B' over the first and last 10 logged steps; an error when the loss did not clearly fall."""
    losses = [json.loads(line)["loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    if len(losses) < 20:
        raise ValueError(f"{run_dir}/metrics.jsonl has {len(losses)} steps; the check needs >= 20")
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    if not last < first - 1.0:
        raise ValueError(f"the loss did not fall clearly: first 10 steps {first:.3f}, last 10 {last:.3f}")
    return f"loss {first:.2f} (first 10 steps) -> {last:.2f} (last 10)"


def loss_line(run_dir: Path) -> str:
    """'loss A -> B (N steps)' from a training run's metrics.jsonl, without judging it (post-training runs are short
    and start low); '' when there are no metrics."""
    path = run_dir / "metrics.jsonl"
    losses = [json.loads(x)["loss"] for x in path.read_text().splitlines() if x.strip()] if path.is_file() else []
    if not losses:
        return ""
    k = max(1, min(10, len(losses) // 4))
    return f"loss {sum(losses[:k]) / k:.2f} -> {sum(losses[-k:]) / k:.2f} ({len(losses)} steps)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chat(py: str, root: Path, model: str, out_dir: Path, *, ready_timeout_s: float = 300.0,
         turns: tuple[str, ...] = CHAT_TURNS) -> str:
    """Start apps/serve.py on a free loopback port, wait for its 'serving' line, hold a multi-turn chat with the
    official openai client, save chat/transcript.{json,md}; the server is stopped in a `finally`."""
    from openai import OpenAI

    out_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cmd = [py, "apps/serve.py", "--model", model, "--port", str(port), "--host", "127.0.0.1"]
    print(f"$ {' '.join(cmd)}", flush=True)
    log = (out_dir / "server.log").open("w", encoding="utf-8")
    server = subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              errors="replace", bufsize=1, env=os.environ.copy())
    lines: queue.Queue = queue.Queue()

    def drain():  # the server's output goes to server.log for as long as it runs; lines are passed on until ready
        for line in server.stdout:
            log.write(line)
            log.flush()
            lines.put(line)
        lines.put(None)

    threading.Thread(target=drain, daemon=True).start()
    try:
        deadline = time.monotonic() + ready_timeout_s
        while True:
            try:
                line = lines.get(timeout=max(0.1, min(5.0, deadline - time.monotonic())))
            except queue.Empty:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"apps/serve.py printed no 'serving' line in {ready_timeout_s:.0f} s") from None
                print("   [chat] waiting for the server", flush=True)
                continue
            if line is None:
                raise RuntimeError(f"apps/serve.py exited with status {server.wait()} before serving "
                                   f"(see {out_dir / 'server.log'})")
            print(f"   {line.rstrip()}", flush=True)
            if "serving" in line:
                break
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="demo", timeout=120.0, max_retries=0)
        name = client.models.list().data[0].id
        messages: list[dict] = []
        for turn in turns:
            messages.append({"role": "user", "content": turn})
            reply = client.chat.completions.create(model=name, messages=messages, max_tokens=48, temperature=0.0)
            messages.append({"role": "assistant", "content": reply.choices[0].message.content or ""})
            print(f"   user: {turn}\n   assistant: {messages[-1]['content']}", flush=True)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
    (out_dir / "transcript.json").write_text(json.dumps({"model": model, "served_as": name, "messages": messages},
                                                        ensure_ascii=False, indent=1) + "\n")
    md = [f"Model `{model}` served by `apps/serve.py`, called with the official `openai` client (greedy, 48 tokens).",
          ""]
    md += [f"**{m['role']}**: {m['content']}" + "  " for m in messages]
    (out_dir / "transcript.md").write_text("\n".join(md) + "\n")
    return f"{len(turns)} turns; first reply: {messages[1]['content'][:40]!r}"


def _link(out: Path, rel: str) -> str:
    p = out / rel
    return f"[{rel}]({rel})" if p.exists() else f"{rel} (missing)"


def _section(out: Path, rel: str, title: str, fallback: str) -> list[str]:
    """A stage's own markdown report inlined: its headings nested, its relative links made relative to out."""
    p = out / rel
    if not p.is_file():
        return [f"## {title}", "", fallback, ""]
    body = p.read_text(encoding="utf-8").strip()
    body = re.sub(r"^(#+) ", r"##\1 ", body, flags=re.M)  # under this report's "## section" heading
    body = re.sub(r"\]\((?!https?:|/|#)([^)]+)\)", lambda m: f"]({Path(rel).parent / m.group(1)})", body)
    return [f"## {title}", "", body, ""]


def write_report(out: Path, results, total_s: float, stages: list[str] = ()) -> Path:
    """runs/demo/report.md: stage table (status, wall time, summary, links), scores, chat, ablation. A stage of
    `stages` without a result is listed as not run."""
    lines = ["# `make demo` report", "",
             f"Written {time.strftime('%F %T')}; this run took {total_s:.0f} s (reused stages keep the wall time of "
             "the run that made them). Each stage's log: `stages/<stage>.log`; rerun one alone with "
             "`python apps/demo.py --only STAGE`.", "",
             "| stage | status | wall time (s) | summary | outputs |", "|---|---|---:|---|---|"]
    by_name = {r.name: r for r in results}
    for name in list(stages) + [n for n in by_name if n not in stages]:
        if (r := by_name.get(name)) is None:
            lines.append(f"| {name} | not run | | | |")
            continue
        links = ", ".join(f"{label}: {_link(out, rel)}" for label, rel in STAGE_FILES.get(r.name, []))
        lines.append(f"| {r.name} | {r.status} | {r.wall_s:.1f} | {r.summary.replace('|', '/')} | {links} |")
    total = sum(r.wall_s for r in results)
    lines += [f"| **all stages** | | **{total:.1f}** | | |", ""]
    if (out / "pretrain/loss_curve.png").exists():
        lines += ["![pretraining loss](pretrain/loss_curve.png)", ""]
    lines += _section(out, "eval/report.md", "Base vs SFT vs DPO (apps/evaluate.py)",
                      "The eval stage has not run (see its row above).")
    lines += _section(out, "chat/transcript.md", "Chat transcript", "The chat stage has not run.")
    lines += _section(out, "ablate/report.md", "Ablation: curated vs raw pretraining text", "The ablation has not run.")
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
