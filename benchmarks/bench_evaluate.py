"""apps/evaluate.py wall time on the bundled suites, and generation tokens/s against transformers `generate`.

Model: the demo's `debug` MoE preset (hidden 64, 2 layers, 4 experts, top-2; ~0.5M parameters with the tiny
tokenizer), random weights, max_seq_len 1024 so that 4-shot llm-jp prompts fit, exported as a Hugging Face
directory with a SentencePiece tokenizer trained on the bundled JSQuAD paragraphs. Random weights make every
answer run to max tokens: the worst case for time.

1. Evaluation time, one process, no judge: the llm-jp-style JGLUE subset (JCommonsenseQA, JNLI, JSQuAD, JSTS
   with generation + log-likelihood choices; `--llmjp_limit` items per task, default 100, 0 = all ~8,000 bundled,
   about an hour on 2 shared cores), Japanese MT-Bench (80 x 2 turns) and ELYZA-tasks-100, `--max_new_tokens`
   (default 64) per chat answer.
2. Generation throughput on the same prompts (MT-Bench first turns, chat template), same batch, greedy, every row
   forced to exactly `--gen_tokens` new tokens: jpmoe.generate (what evaluate uses) vs transformers
   `AutoModelForCausalLM.generate` on the same HF directory. Median of `--repeats`.

    python benchmarks/bench_evaluate.py                       # a few minutes on 2 shared cores
    python benchmarks/bench_evaluate.py --llmjp_limit 0 --max_new_tokens 512   # every bundled item, full answers
    python benchmarks/bench_evaluate.py --model runs/demo/dpo/hf --llmjp_limit 0 --max_new_tokens 512  # after make demo

`--model DIR` times a trained HF directory instead (the demo's DPO model stops at EOS: the realistic case); prompts
longer than its context are cut from the left, for the throughput rows as for evaluation.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def build_model(base: Path) -> Path:
    from transformers import AutoTokenizer

    from jpmoe import ModelConfig, Transformer
    from jpmoe.hf import save_hf
    from jpmoe.tokenizer import export_hf_tokenizer, train_sentencepiece

    texts = [json.loads(x)["text"] for x in open(ROOT / "data/jglue/jsquad_paragraphs.jsonl", encoding="utf-8")]
    export_hf_tokenizer(train_sentencepiece(texts[:300], base / "spm", vocab_size=2500), base / "tok")
    tok = AutoTokenizer.from_pretrained(str(base / "tok"))
    config = ModelConfig.preset("debug", vocab_size=len(tok), max_seq_len=1024)
    torch.manual_seed(0)
    save_hf(Transformer(config).state_dict(), config, base / "model" / "hf", tokenizer_dir=base / "tok")
    return base / "model" / "hf"


def time_evaluate(model_dir: Path, out: Path, args) -> dict:
    spec = importlib.util.spec_from_file_location("evaluate_app", ROOT / "apps/evaluate.py")
    ev = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = ev  # dataclasses look the module up
    spec.loader.exec_module(ev)
    rows = {}
    for label, tasks, limit in (("llm-jp JGLUE (4 tasks)", ["jcommonsenseqa", "jnli", "jsquad", "jsts"],
                                 args.llmjp_limit),
                                ("Japanese MT-Bench (80 x 2 turns)", ["mt_bench"], None),
                                ("ELYZA-tasks-100", ["elyza"], None)):
        a = ev.Args(model=[f"bench={model_dir}"], out_dir=str(out / label.split()[0]), tasks=tasks, limit=limit or None,
                    max_new_tokens=args.max_new_tokens, batch_size=args.batch, data_dir=str(ROOT / "data"))
        t0 = time.perf_counter()
        res = ev.main(a)
        secs = time.perf_counter() - t0
        recs = [r for r in res["records"] if r["kind"] in ("llmjp", "gen")]
        toks = sum(r.get("n_tokens") or len(r.get("token_ids") or []) for r in recs)
        rows[label] = {"items": len(recs), "seconds": secs, "new_tokens": toks}
    return rows


def throughput(model_dir: Path, args) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from jpmoe.generate import SamplingParams, generate
    from jpmoe.load import load_pretrained

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    qs = [json.loads(x)["turns"][0] for x in open(ROOT / "data/japanese_mt_bench/question.jsonl", encoding="utf-8")]
    prompts = [tok(tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                           tokenize=False), add_special_tokens=False)["input_ids"]
               for q in qs[:args.batch]]
    ours = load_pretrained(model_dir).model
    hf = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    n = args.gen_tokens
    prompts = [p[-(ours.config.max_seq_len - n):] for p in prompts]  # the context must hold prompt + n tokens
    pad = tok.pad_token_id
    P = max(len(p) for p in prompts)
    ids = torch.tensor([[pad] * (P - len(p)) + p for p in prompts])  # (B, P) left padded
    mask = (torch.arange(P)[None, :] >= torch.tensor([P - len(p) for p in prompts])[:, None]).long()

    def run_ours():
        out = generate(ours, prompts, SamplingParams(max_new_tokens=n), pad_id=pad)
        assert all(len(o) == n for o in out)

    def run_hf():
        with torch.no_grad():
            out = hf.generate(ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                              pad_token_id=pad)
        assert out.shape[1] == P + n

    times = {"jpmoe.generate": [], "transformers generate": []}
    for _ in range(args.repeats):  # round-robin so load changes hit both
        for name, fn in (("jpmoe.generate", run_ours), ("transformers generate", run_hf)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {k: len(prompts) * n / statistics.median(v) for k, v in times.items()} | {"prompt_tokens_max": P}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--llmjp_limit", type=int, default=100, help="items per llm-jp task (0: all bundled)")
    p.add_argument("--max_new_tokens", type=int, default=64)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--gen_tokens", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--model", default="", help="a trained HF directory (default: the random-weight debug MoE)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(args.model).resolve() if args.model else build_model(Path(tmp))
        ev = time_evaluate(model_dir, Path(tmp) / "eval", args)
        tp = throughput(model_dir, args)
    machine = f"{platform.machine()} {os.cpu_count()} CPUs, torch {torch.__version__}, {args.threads} threads"
    what = f"`{args.model}`" if args.model else "the `debug` MoE (random weights, max_seq_len 1024)"
    lines = [f"## apps/evaluate.py on {what}, {machine}", "",
             f"No judge; batch {args.batch}; chat answers up to {args.max_new_tokens} new tokens; llm-jp items per "
             f"task: {args.llmjp_limit or 'all bundled'}. Wall time on a shared machine (load average "
             f"{os.getloadavg()[0]:.1f} at the end).", "",
             "| suite | items | new tokens | seconds | items/s |", "|---|---|---|---|---|"]
    for k, v in ev.items():
        rate = v["items"] / v["seconds"]
        lines.append(f"| {k} | {v['items']} | {v['new_tokens']} | {v['seconds']:.1f} | {rate:.1f} |")
    lines += ["", f"Generation, batch {args.batch} MT-Bench first turns (longest prompt {tp['prompt_tokens_max']} "
              f"tokens), greedy, {args.gen_tokens} new tokens per row, median of {args.repeats}:", "",
              "| generator | new tokens/s | vs transformers |", "|---|---|---|"]
    for k in ("jpmoe.generate", "transformers generate"):
        lines.append(f"| {k} | {tp[k]:.0f} | {tp[k] / tp['transformers generate']:.2f}x |")
    text = "\n".join(lines) + "\n"
    print(text)
    trained = f"-{Path(args.model).resolve().parent.name}" if args.model else ""  # runs/demo/dpo/hf -> -dpo
    size = f"llmjp{args.llmjp_limit or 'all'}-chat{args.max_new_tokens}{trained}"
    out = HERE / "results" / f"evaluate-{datetime.date.today()}-{platform.machine()}-{os.cpu_count()}cpu-{size}.md"
    out.write_text(text, encoding="utf-8")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
