"""Our MoE block against transformers' MixtralSparseMoeBlock (same weights), forward and forward+backward.

transformers 5.x selects the expert computation with `config._experts_implementation` (the
`experts_implementation=` argument of from_pretrained): "eager" (a Python loop over experts with index_add),
"grouped_mm" (torch._grouped_mm, the default on CPU) and "batched_mm" (gathers one weight matrix per
(token, expert) pair: run only where that copy fits in memory); "deepgemm"/"sonicmoe" are GPU-only kernels and
are not run. The ceiling is a dense `x @ W.t()` matmul of the same dtype, hidden and intermediate sizes, into a
preallocated output, timed in the same round-robin as the providers of each row (so a slower or faster moment of a
shared machine moves both alike). bf16 rows also time our fp32 block on the same input in that round-robin: the
"bf16 vs fp32" lines compare the two under the same conditions. The last column is the rate of the expert
matmuls alone at the row's sizes (T*K/E rows per expert, one bmm per projection): the bound for any
implementation that multiplies per-expert slices, below the dense ceiling when experts get few rows (E=64).
FLOPs counted: 6*T*K*H*I forward (gate+up and down projections), 3x that forward+backward.

    .venv/bin/python benchmarks/bench_moe_layer.py            # default grid (a few minutes on 2 cores)
    .venv/bin/python benchmarks/bench_moe_layer.py --full     # tokens 512..8192, E 8/64, K 2..8, H 512/1024
Writes benchmarks/results/moe_layer-<date>-<machine>.md and .json. On a CUDA machine it also runs there; the
"ours" column is then our Triton path (what `kernels="auto"` runs on a GPU), with the torch path in parentheses.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from jpmoe import ModelConfig
from jpmoe.moe import MoE

HF_IMPLS = ("eager", "grouped_mm", "batched_mm")
DEFAULT = [  # (tokens, E, K, H, I)
    (4096, 8, 2, 512, 1024),  # the reference row
    (2048, 64, 8, 512, 256),  # fine-grained
    (1024, 8, 2, 1024, 2048),
]
FULL = [(t, e, k, h, i) for t in (512, 2048, 8192) for (e, k, i) in ((8, 2, 1024), (64, 8, 256), (64, 2, 512))
        for h in (512, 1024)]


@dataclass
class Row:
    device: str
    dtype: str
    tokens: int
    experts: int
    k: int
    hidden: int
    inter: int
    mode: str  # "fwd" | "fwd+bwd"
    ms: dict  # provider -> median milliseconds ("matmul": CEILING_CALLS dense calls; "ours-fp32": bf16 rows only)
    ceiling_gflops: float
    expert_gemm_gflops: float

    @property
    def flop(self) -> float:
        f = 6 * self.tokens * self.k * self.hidden * self.inter
        return f if self.mode == "fwd" else 3 * f


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def interleaved_ms(fns: dict, device: str, repeats: int) -> dict:
    """Median milliseconds of each function, timed round-robin so that load from other jobs hits all alike."""
    for fn in fns.values():  # warm-up (also oneDNN JIT and autotuning)
        fn()
    sync(device)
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            sync(device)
            times[k].append(time.perf_counter() - t0)
    return {k: 1e3 * statistics.median(v) for k, v in times.items()}


CEILING_TOKENS = 4096
CEILING_CALLS = 8  # matmul calls per timed ceiling sample: the first, after a provider, runs with cold caches


def ceiling_matmul(hidden: int, inter: int, dtype, device: str):
    """Dense ceiling: (4096, H) @ (H, 2I), the shape of the gate-up projection without routing, into a
    preallocated output (a fresh 32-64 MiB fp32 output is page-faulted in on every call on CPU, which made the
    ceiling swing by 30% from shape to shape; the matmul rate is what it is measured for). Returns a function
    running CEILING_CALLS of them, and their FLOPs."""
    a = torch.randn(CEILING_TOKENS, hidden, dtype=dtype, device=device)
    b = torch.randn(2 * inter, hidden, dtype=dtype, device=device)
    out = torch.empty(CEILING_TOKENS, 2 * inter, dtype=dtype, device=device)

    def calls():
        for _ in range(CEILING_CALLS):
            torch.mm(a, b.t(), out=out)
    return calls, CEILING_CALLS * 2 * CEILING_TOKENS * hidden * 2 * inter


def expert_gemm_gflops(shape, dtype, device: str, repeats: int) -> float:
    """What the forward's expert matmuls alone reach at this row's sizes: every expert with exactly T*K/E rows
    (perfect balance, no padding), gate-up and down into preallocated outputs, the faster of one bmm per projection
    and one mm per expert. The bound for any implementation that multiplies per-expert slices (routing, SwiGLU
    and combine excluded)."""
    T, E, K, H, inter = shape
    rows = max(1, T * K // E)
    x = torch.randn(E, rows, H, dtype=dtype, device=device)
    w_gate_up = torch.randn(E, 2 * inter, H, dtype=dtype, device=device)
    w_down = torch.randn(E, H, inter, dtype=dtype, device=device)
    a = torch.randn(E, rows, inter, dtype=dtype, device=device)
    h = torch.empty(E, rows, 2 * inter, dtype=dtype, device=device)
    y = torch.empty(E, rows, H, dtype=dtype, device=device)

    def batched():
        torch.bmm(x, w_gate_up.transpose(1, 2), out=h)
        torch.bmm(a, w_down.transpose(1, 2), out=y)

    def looped():
        for e in range(E):
            torch.mm(x[e], w_gate_up[e].t(), out=h[e])
            torch.mm(a[e], w_down[e].t(), out=y[e])

    ms = interleaved_ms({"bmm": batched, "mm": looped}, device, max(15, repeats))
    return 6 * E * rows * H * inter / min(ms.values()) / 1e6


def build(shape, dtype, device, fp32_twin: bool = False):
    from transformers import MixtralConfig
    from transformers.models.mixtral.modeling_mixtral import MixtralSparseMoeBlock

    T, E, K, H, inter = shape
    hf_cfg = MixtralConfig(hidden_size=H, intermediate_size=inter, num_local_experts=E, num_experts_per_tok=K)
    hf = MixtralSparseMoeBlock(hf_cfg)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in hf.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    hf = hf.to(device=device, dtype=dtype)
    ours = {}
    for kernels in (["torch", "triton"] if device == "cuda" else ["torch"]):
        cfg = ModelConfig(hidden_size=H, intermediate_size=inter, num_heads=1, num_kv_heads=1, num_experts=E,
                          experts_per_token=K, kernels=kernels)
        m = MoE(cfg).to(device=device, dtype=dtype)
        with torch.no_grad():
            m.router.weight.copy_(hf.gate.weight)
            m.w_gate_up.copy_(hf.experts.gate_up_proj)
            m.w_down.copy_(hf.experts.down_proj)
        ours[f"ours-{kernels}"] = m
    x = torch.randn(1, T, H, generator=g).to(device=device, dtype=dtype)
    if fp32_twin:  # our block in fp32 with the same (rounded) weights, for the bf16-vs-fp32 ratio
        ours["ours-fp32"] = copy.deepcopy(ours[ours_key(ours)]).float()
    return hf, hf_cfg, ours, x


def step(module, x, grad, backward: bool, is_ours: bool, hf_cfg=None, impl=None):
    dtype = next(module.parameters()).dtype
    x, grad = x.to(dtype), grad.to(dtype)

    def run():
        if impl is not None:
            hf_cfg._experts_implementation = impl  # one HF block, its experts implementation picked per call
        for p in module.parameters():
            p.grad = None
        xi = x.detach().requires_grad_(backward)
        y = module(xi)[0] if is_ours else module(xi)
        if backward:
            y.backward(grad)
    return run


def bench_shape(shape, dtype, device, repeats) -> list[Row]:
    T, E, K, H, inter = shape
    hf, hf_cfg, ours, x = build(shape, dtype, device, fp32_twin=dtype != torch.float32)
    grad = torch.randn_like(x)
    matmul, matmul_flop = ceiling_matmul(H, inter, dtype, device)
    expert_gemms = expert_gemm_gflops(shape, dtype, device, repeats)
    rows = []
    for backward in (False, True):
        fns = {name: step(m, x, grad, backward, True) for name, m in ours.items()}
        for impl in HF_IMPLS:
            gathered_bytes = T * K * 3 * H * inter * x.element_size()
            if impl == "batched_mm" and gathered_bytes > 2**30:
                continue  # it copies one (2I, H) + (H, I) weight per pair: too large here
            fns[f"hf-{impl}"] = step(hf, x, grad, backward, False, hf_cfg, impl)
        fns["matmul"] = matmul
        with torch.no_grad() if not backward else torch.enable_grad():
            ms = interleaved_ms(fns, device, repeats)
        rows.append(Row(device, str(dtype).removeprefix("torch."), T, E, K, H, inter,
                        "fwd+bwd" if backward else "fwd", ms, matmul_flop / ms["matmul"] / 1e6, expert_gemms))
        print(format_row(rows[-1]), flush=True)
    return rows


HEADER = ("| device | dtype | T | E | K | H | I | pass | ours ms | hf eager ms | hf grouped_mm ms | hf batched_mm ms "
          "| ours / best HF | ours GFLOP/s | matmul GFLOP/s | % of matmul | expert GEMMs GFLOP/s (% of matmul) |\n"
          + "|---" * 17 + "|")


def format_row(r: Row) -> str:
    key = ours_key(r.ms)
    ours = r.ms[key]
    hf = {k: v for k, v in r.ms.items() if k.startswith("hf-")}
    best = min(hf.values())
    gflops = r.flop / ours / 1e6
    extra = f" (torch path {r.ms['ours-torch']:.1f})" if key == "ours-triton" else ""

    def cell(k):
        return f"{r.ms[k]:.1f}" if k in r.ms else "skip"

    return (f"| {r.device} | {r.dtype} | {r.tokens} | {r.experts} | {r.k} | {r.hidden} | {r.inter} | {r.mode} "
            f"| {ours:.1f}{extra} | {cell('hf-eager')} | {cell('hf-grouped_mm')} | {cell('hf-batched_mm')} "
            f"| {best / ours:.2f}x | {gflops:.0f} | {r.ceiling_gflops:.0f} | {100 * gflops / r.ceiling_gflops:.0f}% "
            f"| {r.expert_gemm_gflops:.0f} ({100 * r.expert_gemm_gflops / r.ceiling_gflops:.0f}%) |")


def bf16_summary(rows: list[Row]) -> list[str]:
    return [f"- {r.device} T={r.tokens} E={r.experts} K={r.k} H={r.hidden} I={r.inter} {r.mode}: ours bf16 "
            f"{r.ms['ours-fp32'] / r.ms[ours_key(r.ms)]:.2f}x faster than ours fp32 (same round-robin: "
            f"{r.ms['ours-fp32']:.1f} vs {r.ms[ours_key(r.ms)]:.1f} ms)" for r in rows if "ours-fp32" in r.ms]


def ours_key(providers) -> str:
    """Our provider that `kernels="auto"` runs: the Triton path where it was timed (CUDA), else the torch path."""
    return "ours-triton" if "ours-triton" in providers else "ours-torch"


def machine() -> str:
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cpus, torch {torch.__version__}, {torch.get_num_threads()} threads"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--full", action="store_true", help="the full grid (long on CPU)")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--dtypes", default="float32,bfloat16")
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--machine-tag", default=platform.node().split(".")[0] or "cpu")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument("--devices", default="cpu,cuda", help="comma list; cuda rows run only where CUDA exists")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [d for d in args.devices.split(",") if d == "cpu" or (d == "cuda" and torch.cuda.is_available())]
    if not torch.cuda.is_available():
        print("no CUDA device: CPU rows only (the GPU rows and our Triton kernels run where CUDA exists)")
    load0 = os.getloadavg()
    print(f"machine: {machine()}; load average {load0[0]:.1f}\n\n{HEADER}")
    rows = []
    for device in devices:
        for dtype in [getattr(torch, d) for d in args.dtypes.split(",")]:
            for shape in FULL if args.full else DEFAULT:
                rows += bench_shape(shape, dtype, device, args.repeats)
    load1 = os.getloadavg()
    summary = bf16_summary(rows)
    print("\n" + "\n".join(summary))
    date = datetime.date.today().isoformat()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"moe_layer-{date}-{args.machine_tag}"
    md = [f"# MoE layer: ours vs transformers MixtralSparseMoeBlock ({date})", "",
          f"Machine: {machine()}. Load average at start/end: {load0[0]:.1f} / {load1[0]:.1f} "
          f"(other jobs were running when this is well above 0). Median of {args.repeats} repeats, "
          "providers timed round-robin.", "",
          HEADER, *map(format_row, rows), "", *summary, ""]
    stem.with_suffix(".md").write_text("\n".join(md))
    stem.with_suffix(".json").write_text(json.dumps([r.__dict__ | {"flop": r.flop} for r in rows], indent=1))
    print(f"\nwrote {stem}.md and .json")


if __name__ == "__main__":
    main()
