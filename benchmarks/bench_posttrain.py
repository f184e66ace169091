"""Post-training steps, ours (apps/sft.py, apps/dpo.py) vs TRL's SFTTrainer and DPOTrainer: tokens/s and peak memory.

Same model (a small random Hugging Face Llama: hidden 256, 4 layers, vocabulary 32,000 as Llama-2), same tokenizer
(SentencePiece on bundled Aozora text, the instruction-ja chat template with generation markers), same records
(instruction continuations of Aozora works; preference pairs whose rejected answer repeats itself), fp32 on CPU
(bf16 on CUDA), AdamW, the same learning rate, micro-batch, max length and step count; no gradient checkpointing,
no evaluation or saving during the timed steps. Matching settings: SFT unpacked with the loss on assistant tokens
(TRL `assistant_only_loss=True`), DPO sigmoid with precomputed reference log-probs (TRL
`precompute_ref_log_probs=True`, so neither side keeps a reference model); "ours (packed)" adds our default.

tokens/s: real (non-padding) tokens of the timed steps (all but the first) over their wall time.
Peak memory: each run is its own process; its peak resident set (ru_maxrss from os.wait4 on that child), i.e.
everything the process held at its peak: Python, torch, the libraries each side imports, model, optimiser and
activations. Not tracemalloc (it does not see torch's allocations).

    python benchmarks/bench_posttrain.py               # two round-robin runs of each (~15 minutes on 2 busy cores)
    python benchmarks/bench_posttrain.py --steps 3 --records 16     # shorter
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RUNS = ("ours-sft", "ours-sft-packed", "trl-sft", "ours-dpo", "trl-dpo")
MAX_LEN, MICRO, LR = 512, 4, 1e-5


def prepare(work: Path, n: int) -> None:
    """Tokenizer, random HF Llama and the SFT / preference JSONL under `work`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from jpalign import INSTRUCTION_JA
    from jpmoe.tokenizer import export_hf_tokenizer, train_sentencepiece

    works = [json.loads(line)["text"] for line in (ROOT / "data/aozora/works.jsonl").open()]
    paras = [p.strip() for w in works for p in w.split("\n") if len(p.strip()) > 120]
    export_hf_tokenizer(train_sentencepiece(paras[:3000], work / "spm", vocab_size=8000), work / "model",
                        chat_template=INSTRUCTION_JA.jinja)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=32000, hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=1024, bos_token_id=1,
                         eos_token_id=2, pad_token_id=3, tie_word_embeddings=False)
    LlamaForCausalLM(config).save_pretrained(work / "model")
    sft, dpo = [], []
    for p in paras[:n]:
        cut = len(p) // 3
        ask = f"次の文章の続きを書いてください。\n{p[:cut][:150]}"
        answer = p[cut:][:200]
        sft.append({"messages": [{"role": "user", "content": ask}, {"role": "assistant", "content": answer}]})
        dpo.append({"prompt": [{"role": "user", "content": ask}],
                    "chosen": [{"role": "assistant", "content": answer}],
                    "rejected": [{"role": "assistant", "content": (answer[:20] + "。") * 8}]})
    for name, recs in (("sft", sft), ("dpo", dpo)):
        (work / f"{name}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs))


def ours_cmd(kind: str, work: Path, steps: int) -> list[str]:
    app = "sft" if "sft" in kind else "dpo"
    cmd = [sys.executable, str(ROOT / f"apps/{app}.py"), "--base", str(work / "model"), "--data",
           str(work / f"{app}.jsonl"), "--out_dir", str(work / kind), "--seq_len", str(MAX_LEN), "--micro_batch",
           str(MICRO), "--max_steps", str(steps), "--lr", str(LR), "--eval_frac", "0", "--ckpt_every", "100000",
           "--export", "false", "--tensorboard", "false", "--sample_tokens", "1", "--log_every", "100000",
           "--schedule", "constant"]
    if app == "sft":
        cmd += ["--packing", "true" if kind.endswith("packed") else "false"]
    else:
        cmd += ["--loss", "dpo", "--beta", "0.1"]
    return cmd


def ours_result(kind: str, work: Path) -> dict:
    recs = [json.loads(line) for line in (work / kind / "metrics.jsonl").open()][1:]  # the first step warms up
    tokens = sum(r["step_tokens"] for r in recs)
    return {"tokens_per_s": tokens / sum(r["step_tokens"] / r["tokens_per_s"] for r in recs), "tokens": tokens}


def trl_worker(kind: str, work: Path, steps: int) -> None:
    """Runs inside the child process: TRL's trainer for `steps` steps; prints the timed tokens/s as JSON."""
    import torch
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    tok = AutoTokenizer.from_pretrained(str(work / "model"))
    model = AutoModelForCausalLM.from_pretrained(str(work / "model"), dtype=torch.float32)
    common = {"output_dir": str(work / kind), "per_device_train_batch_size": MICRO, "max_steps": steps,
              "learning_rate": LR, "lr_scheduler_type": "constant", "warmup_steps": 0, "gradient_checkpointing": False,
              "report_to": "none", "save_strategy": "no", "logging_steps": 100000, "bf16": torch.cuda.is_available(),
              "dataloader_num_workers": 0, "max_length": MAX_LEN, "seed": 1234, "optim": "adamw_torch",
              "weight_decay": 0.0, "adam_beta2": 0.999}
    times: list[float] = []
    tokens: list[int] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            times.append(time.perf_counter() - self.t0)

    if kind == "trl-sft":
        data = load_dataset("json", data_files=str(work / "sft.jsonl"), split="train")
        config = SFTConfig(**common, packing=False, assistant_only_loss=True)
        base = SFTTrainer
    else:
        data = load_dataset("json", data_files=str(work / "dpo.jsonl"), split="train")
        config = DPOConfig(**common, beta=0.1, loss_type=["sigmoid"], precompute_ref_log_probs=True)
        base = DPOTrainer

    class Counting(base):
        def training_step(self, model, inputs, *a, **kw):
            mask = inputs.get("attention_mask")
            tokens.append(int(mask.sum()) if mask is not None else inputs["input_ids"].numel())
            return super().training_step(model, inputs, *a, **kw)

    trainer = Counting(model=model, args=config, train_dataset=data, processing_class=tok, callbacks=[Clock()])
    trainer.train()
    n = min(len(times), len(tokens))
    print(json.dumps({"tokens_per_s": sum(tokens[1:n]) / sum(times[1:n]), "tokens": sum(tokens[1:n])}))


def run(kind: str, work: Path, steps: int) -> dict:
    """One child process; returns its result with peak_rss_mb from os.wait4."""
    shutil.rmtree(work / kind, ignore_errors=True)  # a fresh run each time (ours would resume from a checkpoint)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    cmd = ours_cmd(kind, work, steps) if kind.startswith("ours") else [
        sys.executable, __file__, "--worker", kind, "--work", str(work), "--steps", str(steps)]
    t0 = time.perf_counter()
    with open(work / f"{kind}.out", "w") as out, open(work / f"{kind}.err", "w") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS (ru_maxrss, KiB on Linux)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{kind} failed:\n{(work / f'{kind}.err').read_text()[-3000:]}")
    if kind.startswith("ours"):
        res = ours_result(kind, work)
    else:
        res = json.loads((work / f"{kind}.out").read_text().strip().splitlines()[-1])
    return {**res, "peak_rss_mb": usage.ru_maxrss / 1024, "wall_s": time.perf_counter() - t0}


def table(results: dict, steps: int, repeats: int) -> str:
    import torch

    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    if torch.cuda.is_available():
        machine = torch.cuda.get_device_name()
    lines = [f"Post-training step, ours vs TRL 1.16 ({machine}; HF Llama hidden 256 x 4 layers, vocab 32,000; "
             f"micro-batch {MICRO}, max length {MAX_LEN}, {steps} steps with the first untimed, median of {repeats} "
             "round-robin runs; "
             f"{'bf16' if torch.cuda.is_available() else 'fp32'})", "",
             "| task | run | tokens/s | peak RSS (MB) | tokens/s vs TRL | peak memory vs TRL |",
             "|---|---|---|---|---|---|"]
    for task in ("sft", "dpo"):
        peer = results.get(f"trl-{task}")
        for kind in [k for k in RUNS if task in k]:
            r = results.get(kind)
            if r is None:
                continue
            speed = f"{r['tokens_per_s'] / peer['tokens_per_s']:.2f}x" if peer else "n/a"
            mem = f"{r['peak_rss_mb'] / peer['peak_rss_mb']:.2f}x" if peer else "n/a"
            name = {"ours-sft": "ours (unpacked, as TRL)", "ours-sft-packed": "ours (packed, default)",
                    "ours-dpo": "ours", "trl-sft": "TRL SFTTrainer", "trl-dpo": "TRL DPOTrainer"}[kind]
            lines.append(f"| {task} | {name} | {r['tokens_per_s']:,.0f} | {r['peak_rss_mb']:,.0f} | {speed} | {mem} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--records", type=int, default=16)
    ap.add_argument("--runs", default=",".join(RUNS))
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--worker", default="")
    ap.add_argument("--work", default="")
    args = ap.parse_args()
    if args.worker:
        trl_worker(args.worker, Path(args.work), args.steps)
        return 0
    kinds = args.runs.split(",")
    if subprocess.run([sys.executable, "-c", "import trl"]).returncode:
        print("TRL rows skipped: trl is not installed (make bench installs trl==1.16.0)")
        kinds = [k for k in kinds if not k.startswith("trl")]
    tries: dict[str, list[dict]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        prepare(work, args.records)
        for _ in range(args.repeats):  # round-robin: load changes on a shared machine hit every run alike
            for kind in kinds:
                tries[kind].append(run(kind, work, args.steps))
                print(kind, json.dumps(tries[kind][-1]), flush=True)
    results = {k: {"tokens_per_s": statistics.median(t["tokens_per_s"] for t in v),
                   "peak_rss_mb": max(t["peak_rss_mb"] for t in v), "tries": v} for k, v in tries.items()}
    text = table(results, args.steps, args.repeats)
    print("\n" + text)
    stamp = datetime.date.today().isoformat()
    host = "cuda" if "cuda" in text.lower() else f"{platform.machine()}-{os.cpu_count()}cpu"
    out = HERE / "results" / f"posttrain-{stamp}-{host}"
    out.with_suffix(".md").write_text(text + "\n")
    out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"saved {out}.md and .json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
