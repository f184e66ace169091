"""Curated vs raw pretraining text: the same model, tokenizer and token budget, compared on held-out clean text.

    python apps/ablate.py --config apps/configs/ablate_demo.toml --raw runs/demo/raw/classics.jsonl \
        --curated runs/demo/deduped/classics/kept --heldout runs/demo/raw/heldout.jsonl \
        --tokenizer runs/demo/tokenizer --out_dir runs/demo/ablate

For each arm (raw, curated): token shards (apps/prepare_data.py), a one-stage mixture of `steps x micro_batch x
seq_len` tokens, pretraining (apps/pretrain.py with `--config pretrain_config` and this run's sizes). Then, on the
held-out file (text in neither arm): perplexity over non-overlapping windows, and the repetition of greedy
continuations of fixed prompts and held-out openings (seq-rep-4 of Welleck et al. 2019 and distinct-2 of Li et al.
2016 on tokens, from jpalign.eval when it is installed). Writes results.json, report.md (a table) and ablation.png.
Scale it by config: a bigger `model` preset, more `steps`, another `pretrain_config`.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from jpmoe.load import load_pretrained
from jpmoe.train import SAMPLE_PROMPTS, greedy_continuations, parse_args

try:  # the evaluation package's definitions when present (same formulas as the fallbacks below)
    from jpalign.eval.repetition import distinct_n, seq_rep_n
except ImportError:
    def seq_rep_n(seq, n: int) -> float:
        """seq-rep-n (Welleck et al. 2019, arXiv:1908.04319): 1 - |unique n-grams| / |n-grams| of one sequence."""
        grams = [tuple(seq[i:i + n]) for i in range(len(seq) - n + 1)]
        return 0.0 if not grams else 1.0 - len(set(grams)) / len(grams)

    def distinct_n(seqs, n: int) -> float:
        """distinct-n (Li et al. 2016, arXiv:1510.03055): distinct n-grams over all sequences / generated units."""
        total = sum(len(s) for s in seqs)
        return len({tuple(s[i:i + n]) for s in seqs for i in range(len(s) - n + 1)}) / total if total else 0.0

ROOT = Path(__file__).resolve().parents[1]
ARMS = ("raw", "curated")


@dataclass
class Args:
    config: str = ""
    raw: list[str] = field(default_factory=list)  # uncurated JSONL files
    curated: list[str] = field(default_factory=list)  # the same text after jpcurate filter + dedup (kept/ dirs)
    heldout: str = ""  # clean JSONL in neither arm
    tokenizer: str = ""  # one tokenizer for both arms
    out_dir: str = "runs/ablate"
    pretrain_config: str = "apps/configs/pretrain_demo.toml"
    model: str = "debug"
    steps: int = 150
    seq_len: int = 128
    micro_batch: int = 16
    lr: float = 1e-2
    heldout_tokens: int = 20000  # perplexity over at most this many held-out tokens
    openings: int = 10  # held-out document openings continued greedily, besides the fixed prompts
    sample_tokens: int = 48


def check_args(args: Args) -> None:
    for name in ("raw", "curated", "heldout", "tokenizer"):
        if not getattr(args, name):
            raise ValueError(f"--{name} is required")
    for p in [*args.raw, *args.curated, args.heldout, args.tokenizer]:
        if not Path(p).exists():
            raise FileNotFoundError(f"{p}: no such file or directory")
    for name in ("steps", "seq_len", "micro_batch", "heldout_tokens"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(args, name)}")


def run(cmd: list[str]) -> None:
    print(f"$ {shlex.join(cmd)}", flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})


def train_arm(arm: str, inputs: list[str], args: Args, out: Path) -> Path:
    """Shards, mixture and pretraining of one arm; returns its HF export. An arm finished with the same arguments
    is not retrained (arm.json); one killed with the same arguments resumes (pretraining continues from its last
    checkpoint); one with other arguments starts over."""
    run_dir = out / arm
    identity = {"inputs": inputs, **{k: v for k, v in vars(args).items() if k not in ("out_dir", "openings")}}
    same = lambda name: (run_dir / name).is_file() and json.loads((run_dir / name).read_text()) == identity  # noqa: E731
    if same("arm.json"):
        print(f"{arm}: reusing {run_dir / 'pretrain/hf'} (same arguments)", flush=True)
        return run_dir / "pretrain/hf"
    if not same("arm.started.json"):
        shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "arm.started.json").write_text(json.dumps(identity, indent=1) + "\n")
    py = sys.executable
    run([py, "apps/prepare_data.py", "--input", ",".join(inputs), "--tokenizer", args.tokenizer,
         "--out_dir", str(run_dir / "shards")])
    tokens = args.steps * args.micro_batch * args.seq_len
    (run_dir / "mixture.toml").write_text(f'[sources]\n{arm} = "shards"\n\n[[stages]]\nname = "{arm}"\n'
                                          f"tokens = {tokens}\nweights = {{ {arm} = 1.0 }}\n")
    run([py, "apps/pretrain.py", "--config", args.pretrain_config, "--model", args.model, "--tokenizer",
         args.tokenizer, "--mixture", str(run_dir / "mixture.toml"), "--out_dir", str(run_dir / "pretrain"),
         "--max_steps", str(args.steps), "--seq_len", str(args.seq_len), "--micro_batch", str(args.micro_batch),
         "--lr", str(args.lr), "--sample_every", "0", "--ckpt_every", str(args.steps), "--tensorboard", "false"])
    (run_dir / "arm.json").write_text(json.dumps(identity, indent=1) + "\n")
    return run_dir / "pretrain/hf"


def heldout_texts(path: str) -> list[str]:
    return [json.loads(line)["text"] for line in Path(path).read_text(encoding="utf-8").split("\n") if line.strip()]


@torch.no_grad()
def perplexity(model, tokenizer, texts: list[str], *, seq_len: int, max_tokens: int) -> tuple[float, int]:
    """exp(mean next-token NLL) over non-overlapping windows of the concatenated `<s> doc </s>` stream."""
    stream: list[int] = []
    for text in texts:
        stream += [tokenizer.bos_token_id, *tokenizer.encode(text, add_special_tokens=False), tokenizer.eos_token_id]
        if len(stream) > max_tokens:
            break
    stream = stream[:max_tokens + 1]
    nll, count = 0.0, 0
    for i in range(0, len(stream) - 1, seq_len):
        window = torch.tensor(stream[i:i + seq_len + 1])[None]  # (1, T + 1)
        logits = model(window[:, :-1]).logits.float()  # (1, T, V)
        nll += torch.nn.functional.cross_entropy(logits[0], window[0, 1:], reduction="sum").item()
        count += window.shape[1] - 1
    return math.exp(nll / count), count


def repetition(model, tokenizer, prompts: list[str], max_new_tokens: int) -> dict:
    outs = greedy_continuations(model, tokenizer, prompts, max_new_tokens=max_new_tokens)
    ids = [tokenizer.encode(o, add_special_tokens=False) for o in outs]
    reps = [seq_rep_n(i, 4) for i in ids]
    return {"seq_rep_4": sum(reps) / len(reps), "looping_share": sum(r > 0.3 for r in reps) / len(reps),
            "distinct_2": distinct_n(ids, 2), "samples": [{"prompt": p, "continuation": o}
                                                           for p, o in zip(prompts, outs, strict=True)]}


def evaluate_arm(hf: Path, args: Args, texts: list[str]) -> dict:
    from transformers import AutoTokenizer

    loaded = load_pretrained(hf)
    tokenizer = AutoTokenizer.from_pretrained(str(loaded.tokenizer_dir or args.tokenizer))
    ppl, n = perplexity(loaded.model, tokenizer, texts, seq_len=args.seq_len, max_tokens=args.heldout_tokens)
    prompts = list(SAMPLE_PROMPTS) + [t[:12] for t in texts[:args.openings]]
    losses = [json.loads(x)["loss"] for x in (hf.parent / "metrics.jsonl").read_text().splitlines() if x.strip()]
    return {"heldout_ppl": ppl, "heldout_tokens": n, "final_train_loss": sum(losses[-10:]) / len(losses[-10:]),
            **repetition(loaded.model, tokenizer, prompts, args.sample_tokens)}


def write_outputs(results: dict, args: Args, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [("heldout_ppl", "held-out perplexity (lower is better)"), ("seq_rep_4", "seq-rep-4 of samples (lower)"),
            ("distinct_2", "distinct-2 of samples (higher)")]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    for ax, (key, title) in zip(axes, keys, strict=True):
        ax.bar(list(ARMS), [results[a][key] for a in ARMS], color=["#c44", "#48c"])
        ax.set_title(title, fontsize=9)
    fig.suptitle(f"{args.model}, {args.steps} steps x {args.micro_batch * args.seq_len} tokens per arm")
    fig.tight_layout()
    fig.savefig(out / "ablation.png", dpi=100)
    plt.close(fig)
    rows = ["| arm | held-out ppl | seq-rep-4 | looping samples | distinct-2 | final train loss |",
            "|---|---:|---:|---:|---:|---:|"]
    rows += [f"| {a} | {r['heldout_ppl']:.1f} | {r['seq_rep_4']:.3f} | {r['looping_share']:.0%} | "
             f"{r['distinct_2']:.3f} | {r['final_train_loss']:.2f} |" for a, r in ((a, results[a]) for a in ARMS)]
    sample = results["curated"]["samples"][0]
    raw_sample = results["raw"]["samples"][0]
    (out / "report.md").write_text("\n".join([
        "# Curated vs raw pretraining text", "",
        f"Same model (`{args.model}`), tokenizer and budget ({args.steps} steps x {args.micro_batch} x {args.seq_len} "
        f"= {args.steps * args.micro_batch * args.seq_len:,} tokens per arm); held-out perplexity on "
        f"{results['curated']['heldout_tokens']:,} tokens of `{args.heldout}` (in neither arm); repetition of greedy "
        f"continuations of {len(results['raw']['samples'])} prompts (seq-rep-4 on tokens; looping: seq-rep-4 > 0.3).",
        "", *rows, "", "![ablation](ablation.png)", "",
        f"Prompt 「{sample['prompt']}」: raw → 「{raw_sample['continuation']}」; "
        f"curated → 「{sample['continuation']}」",
        ""]), encoding="utf-8")
    (out / "results.json").write_text(json.dumps({"args": vars(args), **results}, ensure_ascii=False, indent=1) + "\n")


def main(args: Args) -> dict:
    check_args(args)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts = heldout_texts(args.heldout)
    results = {}
    for arm, inputs in zip(ARMS, (args.raw, args.curated), strict=True):
        hf = train_arm(arm, inputs, args, out)
        results[arm] = evaluate_arm(hf, args, texts)
        r = results[arm]
        print(f"{arm}: held-out ppl {r['heldout_ppl']:.1f}, seq-rep-4 {r['seq_rep_4']:.3f}, "
              f"distinct-2 {r['distinct_2']:.3f}", flush=True)
    write_outputs(results, args, out)
    print(f"ablation: {out / 'report.md'}, {out / 'ablation.png'}", flush=True)
    return results


if __name__ == "__main__":
    main(parse_args(Args))
