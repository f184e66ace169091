"""`make demo`: raw Japanese text to a Hugging Face model on CPU, in a few minutes, on the bundled samples.

    python apps/demo.py                 # or: make demo
    python apps/demo.py --steps 60      # a quicker look

curate (jpcurate `ja-web` preset) -> train a tokenizer -> token shards + a two-stage mixture -> pretrain the
`debug` MoE -> export to Hugging Face format -> load with transformers.AutoModelForCausalLM and generate a
Japanese continuation. Each stage is the app you would run by hand (shown as it runs); every output lies under
runs/demo/ (git-ignored). Training data: the Aozora Bunko works and the JSQuAD Wikipedia paragraphs only
(data/web_* are test-only; data/web_en is used solely to measure English characters per token).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from jpmoe.train import parse_args

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {"aozora": ROOT / "data/aozora/works.jsonl", "wiki": ROOT / "data/jglue/jsquad_paragraphs.jsonl"}
PROMPT = "メロスは激怒した。"
MARKER = ".jpllm-demo"


@dataclass
class Args:
    out_dir: str = "runs/demo"
    steps: int = 600
    vocab_size: int = 4000
    seq_len: int = 128
    micro_batch: int = 16
    lr: float = 1e-2  # a model this small trains best fast


def run(title: str, cmd: list[str]) -> None:
    """Run one pipeline stage as its own process, echoing the command line first."""
    print(f"\n== {title}\n$ {shlex.join(str(c) for c in cmd)}", flush=True)
    t0 = time.perf_counter()
    # Passive OpenMP waiting: on a busy 2-core machine spinning threads slow torch down tenfold.
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    subprocess.run([str(c) for c in cmd], cwd=ROOT, check=True, env=env)
    print(f"   ({time.perf_counter() - t0:.1f}s)", flush=True)


def fresh_dir(out: Path) -> Path:
    """Every demo starts from scratch; only a directory an earlier demo made (it has MARKER) is removed."""
    if out.exists():
        if not (out / MARKER).is_file():
            raise SystemExit(f"{out} exists and was not made by apps/demo.py; choose another --out_dir")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("made by apps/demo.py; removed by its next run\n")
    return out


def curate(out: Path) -> dict[str, Path]:
    """jpcurate ja-web on each bundled source; returns the kept-document directories."""
    kept = {}
    for name, path in SOURCES.items():
        dest = out / "curated" / name
        run(f"curate {name} (jpcurate ja-web)", [sys.executable, "-m", "jpcurate.cli", "filter", "--preset", "ja-web",
                                                 "--input", path, "--output", dest, "--quiet"])
        kept[name] = dest / "kept"
    return kept


def write_mixture(out: Path, tokens: int) -> Path:
    """Two stages that switch at an exact token count: literature-heavy first, then Wikipedia-heavy."""
    half = tokens // 2
    text = f"""# written by apps/demo.py
[sources]
aozora = "shards/aozora"
wiki = "shards/wiki"

[[stages]]
name = "literature-heavy"
tokens = {half}
weights = {{ aozora = 0.8, wiki = 0.2 }}

[[stages]]
name = "wiki-heavy"
tokens = {tokens - half}
weights = {{ aozora = 0.3, wiki = 0.7 }}
"""
    path = out / "mixture.toml"
    path.write_text(text)
    return path


def check_loss(metrics: Path) -> tuple[float, float]:
    losses = [json.loads(line)["loss"] for line in metrics.read_text().splitlines() if line.strip()]
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    if not last < first - 1.0:
        raise SystemExit(f"the loss did not fall clearly: first 10 steps {first:.3f}, last 10 {last:.3f}")
    return first, last


def generate_hf(hf_dir: Path) -> str:
    """Load the export with plain transformers (no jpmoe code) and continue a Japanese prompt."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(hf_dir)
    model = AutoModelForCausalLM.from_pretrained(hf_dir).eval()
    inputs = tok(PROMPT, return_tensors="pt")
    with torch.no_grad():
        # greedy; a tiny model loops without the repetition guards, and would often stop at once after "。"
        out = model.generate(**inputs, max_new_tokens=40, min_new_tokens=20, do_sample=False, repetition_penalty=1.3,
                             no_repeat_ngram_size=3, pad_token_id=tok.pad_token_id)
    print(f"\n== generate with transformers.{type(model).__name__} from {hf_dir}")
    return tok.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)


def check_args(args: Args) -> None:
    """Bad values stop here, not after curation and tokenizer training."""
    if args.steps < 20:  # check_loss compares the mean of the first 10 steps with that of the last 10
        raise ValueError(f"--steps must be >= 20, got {args.steps}")
    for name in ("micro_batch", "seq_len", "vocab_size"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(args, name)}")


def main(args: Args) -> None:
    check_args(args)
    t0 = time.perf_counter()
    out = fresh_dir(ROOT / args.out_dir)
    py = sys.executable
    kept = curate(out)
    tok_dir = out / "tokenizer"
    run("train the tokenizer", [py, "apps/train_tokenizer.py", "--input", ",".join(map(str, kept.values())),
                                "--out_dir", tok_dir, "--vocab_size", args.vocab_size, "--held_out_docs", 20,
                                "--held_out_en", ROOT / "data/web_en/dolma_test_cc_en.jsonl"])
    for name, src in kept.items():
        run(f"token shards: {name}", [py, "apps/prepare_data.py", "--input", src, "--tokenizer", tok_dir,
                                      "--out_dir", out / "shards" / name])
    mixture = write_mixture(out, args.steps * args.micro_batch * args.seq_len)
    pre = out / "pretrain"
    run("pretrain the debug MoE", [py, "apps/pretrain.py", "--config", "apps/configs/pretrain_demo.toml",
                                   "--tokenizer", tok_dir, "--mixture", mixture, "--out_dir", pre,
                                   "--max_steps", args.steps, "--seq_len", args.seq_len,
                                   "--micro_batch", args.micro_batch, "--lr", args.lr])
    first, last = check_loss(pre / "metrics.jsonl")
    text = generate_hf(pre / "hf")
    print(f"{PROMPT}|{text}")
    report = json.loads((tok_dir / "report.json").read_text())
    print(f"""
== done in {time.perf_counter() - t0:.0f}s: loss {first:.2f} (first 10 steps) -> {last:.2f} (last 10)
curated documents   {out / 'curated'}/<source>/kept (report and rejected/ beside them)
tokenizer           {tok_dir} (chars/token {report['chars_per_token']})
token shards        {out / 'shards'}
mixture             {mixture}
metrics             {pre / 'metrics.jsonl'} (TensorBoard: {pre / 'tensorboard'})
sample generations  {pre / 'samples.jsonl'}
loss curve          {pre / 'loss_curve.png'}
checkpoints         {pre / 'checkpoints'}
Hugging Face model  {pre / 'hf'}""", flush=True)


if __name__ == "__main__":
    main(parse_args(Args))
