"""Training-step throughput: our pretraining step against transformers' MixtralForCausalLM, same config and batch.

    python benchmarks/bench_train_step.py                  # CPU table (+ GPU MFU when CUDA is present)
    python benchmarks/bench_train_step.py --repeats 9

One optimiser step = forward, loss, backward, AdamW update, on the same token batch and the same weights:

- ours: `jpmoe.Transformer(return_hidden=True)` + jpalign's chunked linear cross-entropy (no (N, V) logits) +
  MoE aux loss, stepped by `jpmoe.train.train_step` (the function apps/pretrain.py calls);
- transformers: `MixtralForCausalLM(input_ids, labels=..., output_router_logits=True)` (its loss includes the
  router aux loss), converted from our weights with jpmoe.hf, the same AdamW.

Tokens/s = batch x seq_len / step time, median of `--repeats` (ours and theirs interleaved) after 2 warm-up steps;
`--threads` sets torch's CPU threads (OpenMP waits passively, so a busy machine does not make spinning threads
crawl). On CUDA: bf16 autocast and
MFU = 6 N_active T + 12 L H S T FLOPs per step / (time x bf16 peak). Writes
benchmarks/results/train_step-<date>-<machine>.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from contextlib import nullcontext
from datetime import date
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts its OpenMP pool

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from jpalign import fused_linear_cross_entropy  # noqa: E402
from jpmoe.config import ModelConfig  # noqa: E402
from jpmoe.hf.configs import config_to_hf  # noqa: E402
from jpmoe.hf.keymap import to_hf_state_dict  # noqa: E402
from jpmoe.model import Transformer  # noqa: E402
from jpmoe.train import build_scheduler, train_step  # noqa: E402
from jpmoe.train.monitor import peak_flops  # noqa: E402

# (name, preset, overrides, batch, seq_len)
CPU_CASES = [
    ("debug, V=4000", "debug", {"vocab_size": 4000}, 16, 128),
    ("small MoE, V=8000", "debug", {"vocab_size": 8000, "hidden_size": 256, "intermediate_size": 512,
                                    "num_layers": 4, "num_heads": 8, "num_kv_heads": 4, "num_experts": 8}, 8, 256),
]
GPU_CASES = [("moe-0.5b, torch ops", "moe-0.5b", {}, 8, 2048),
             ("moe-0.5b, Triton kernels", "moe-0.5b", {"kernels": "triton"}, 8, 2048)]


def build(preset: str, overrides: dict, device):
    torch.manual_seed(0)
    config = ModelConfig.preset(preset, **overrides)
    ours = Transformer(config).to(device)
    from transformers import MixtralConfig, MixtralForCausalLM

    hf_cfg = {k: v for k, v in config_to_hf(config).items() if k not in ("architectures", "model_type", "jpmoe")}
    theirs = MixtralForCausalLM(MixtralConfig(**hf_cfg)).to(device)
    missing, unexpected = theirs.load_state_dict(to_hf_state_dict(ours.state_dict(), config, fused=True), strict=False)
    assert not [k for k in missing if "rotary" not in k] and not unexpected, (missing, unexpected)
    return config, ours, theirs


def _timed(step, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def time_pair(ours, theirs, repeats: int, device) -> tuple[float, float]:
    """Median step seconds of each, repeats interleaved so that load from other processes hits both alike."""
    for _ in range(2):
        ours()
        theirs()
    a, b = [], []
    for _ in range(repeats):
        a.append(_timed(ours, device))
        b.append(_timed(theirs, device))
    return statistics.median(a), statistics.median(b)


def our_step(model, tokens, autocast):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    sched = build_scheduler(opt, kind="constant", warmup=1, total=10)

    def loss_fn(t):
        with autocast:
            out = model(t[:, :-1], return_hidden=True)
        ce = fused_linear_cross_entropy(out.hidden.flatten(0, 1), model.lm_head.weight, t[:, 1:].flatten())
        return ce + out.aux_loss, {}

    return lambda: train_step(model, opt, sched, [tokens], loss_fn, max_grad_norm=1.0)


def their_step(model, tokens, autocast):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step():
        with autocast:
            out = model(input_ids=tokens[:, :-1], labels=tokens[:, :-1], output_router_logits=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def measure(case, repeats: int, device) -> dict:
    name, preset, overrides, batch, seq = case
    config, ours, theirs = build(preset, overrides, device)
    tokens = torch.randint(0, config.vocab_size, (batch, seq + 1), device=device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    t_ours, t_theirs = time_pair(our_step(ours, tokens, autocast), their_step(theirs, tokens, autocast), repeats,
                                 device)
    n_tok = batch * seq
    row = {"case": name, "batch": batch, "seq_len": seq, "params": config.num_params(),
           "ours_tok_s": n_tok / t_ours, "hf_tok_s": n_tok / t_theirs, "speedup": t_theirs / t_ours}
    peak = peak_flops(torch.cuda.get_device_name()) if device.type == "cuda" else None
    if peak:
        flops = n_tok * (6 * config.num_params(active=True) + 12 * config.num_layers * config.hidden_size * seq)
        row |= {"ours_mfu": flops / t_ours / peak, "hf_mfu": flops / t_theirs / peak}
    return row


def table(rows: list[dict], machine: str, dtype: str) -> str:
    mfu = "ours_mfu" in rows[0]
    head = f"Machine: {machine}; dtype {dtype}; torch {torch.__version__}; threads {torch.get_num_threads()}\n\n"
    cols = "| case | batch x seq | params | ours tok/s | Mixtral (HF) tok/s | ours / HF |" + (
        " ours MFU | HF MFU |" if mfu else "")
    lines = [head + cols, "|" + "---|" * (cols.count("|") - 1)]
    for r in rows:
        line = (f"| {r['case']} | {r['batch']} x {r['seq_len']} | {r['params'] / 1e6:.2f}M | {r['ours_tok_s']:,.0f} "
                f"| {r['hf_tok_s']:,.0f} | {r['speedup']:.2f}x |")
        if mfu:
            line += f" {r['ours_mfu']:.1%} | {r['hf_mfu']:.1%} |"
        lines.append(line)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--devices", default="cpu,cuda", help="comma list; cuda runs only where CUDA exists")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    wanted = args.devices.split(",")
    runs = [("cpu", torch.device("cpu"), CPU_CASES, "float32")] if "cpu" in wanted else []
    if torch.cuda.is_available() and "cuda" in wanted:
        runs.append(("cuda", torch.device("cuda"), GPU_CASES, "bf16 autocast"))
    else:
        print("GPU MFU: skipped, no CUDA device on this machine (run this script on a GPU host to measure MFU)\n")
    for kind, device, cases, dtype in runs:
        machine = (torch.cuda.get_device_name() if kind == "cuda" else
                   f"{platform.processor() or platform.machine()} {os.cpu_count()} CPUs")
        rows = []
        for c in cases:
            try:
                rows.append(measure(c, args.repeats, device))
            except Exception as err:  # one failing case is reported, the others still run
                print(f"{c[0]}: failed: {err!r}"[:400], flush=True)
        if not rows:
            continue
        text = table(rows, machine, dtype)
        print(text + "\n", flush=True)
        tag = "cpu" if kind == "cpu" else torch.cuda.get_device_name().replace(" ", "-").lower()
        stem = out_dir / f"train_step-{date.today().isoformat()}-{tag}"
        stem.with_suffix(".md").write_text(f"# Training step: ours vs transformers Mixtral\n\n{text}\n")
        stem.with_suffix(".json").write_text(json.dumps({"machine": machine, "dtype": dtype, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
