"""Triton kernels of jpmoe against their torch references, torch.compile of them, and the MoE peers (GPU only).

    python benchmarks/bench_kernels.py            # everything: hot-path ops, then the MoE layer, bf16
    python benchmarks/bench_kernels.py --quick    # one token count per MoE shape
    python benchmarks/bench_kernels.py --tune     # sweep MoE tile candidates per shape class, print the winners
    TRITON_INTERPRET=1 python benchmarks/bench_kernels.py --smoke   # CPU: tiny shapes, checks the script only

Rates are relative to what this GPU measures in the same run: a bf16 8192^3 torch.matmul (TFLOP/s) and a 1 GiB
device-to-device copy (GB/s, read + write). MoE FLOPs: 6*H*I per (token, expert) pair forward, 3x that for forward
+ backward. Memory-bound ops count the minimum bytes (each input read once, each output written once). Times are
medians of triton.testing.do_bench. Results: benchmarks/results/kernels-<date>-<gpu>.md and .json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"
MOE_SHAPES = {"mixtral": dict(E=8, K=2, H=4096, inter=14336), "fine": dict(E=128, K=8, H=2048, inter=768)}
TARGETS = {"mixtral": (0.60, 0.45), "fine": (0.40, 0.30)}  # fraction of the bf16 matmul rate: fwd, fwd+bwd
TOKENS = [4096, 8192, 16384, 32768]
SIZES = dict(N=16384, H=4096, inter=14336, rope=(4, 4096, 32, 128), route_T=32768, mm=8192, copy=2**29)
# --smoke: the same code on CPU under the interpreter with tiny sizes (numbers meaningless, the script exercised)
SMOKE_MOE = {"mixtral": dict(E=8, K=2, H=32, inter=48), "fine": dict(E=16, K=4, H=32, inter=16)}
SMOKE_SIZES = dict(N=8, H=32, inter=48, rope=(1, 4, 2, 16), route_T=8, mm=64, copy=2**12)
DEV = "cuda"


def median_ms(fn, grads=None) -> float:
    if DEV == "cpu":  # --smoke
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(times)
    import triton.testing

    return triton.testing.do_bench(fn, warmup=10, rep=60, grad_to_none=grads, return_mode="median")


def machine_peaks() -> dict:
    n = SIZES["mm"]
    a, b = (torch.randn(n, n, device=DEV, dtype=torch.bfloat16) for _ in range(2))
    mm = 2 * n**3 / median_ms(lambda: a @ b) / 1e9  # TFLOP/s
    src = torch.empty(SIZES["copy"], device=DEV, dtype=torch.float16)  # 1 GiB on the GPU
    dst = torch.empty_like(src)
    bw = 2 * src.numel() * 2 / median_ms(lambda: dst.copy_(src)) / 1e6  # GB/s
    return dict(matmul_tflops=mm, copy_gbps=bw)


def _fwd_bwd(fn, inputs, dout):
    def run():
        out = fn(*inputs)
        (out[0] if isinstance(out, tuple) else out).backward(dout)
    return run


def _time_pair(fn, inputs, dout) -> tuple[float, float]:
    grads = [t for t in inputs if isinstance(t, torch.Tensor) and t.requires_grad]
    with torch.no_grad():
        fwd = median_ms(lambda: fn(*inputs))
    return fwd, median_ms(_fwd_bwd(fn, inputs, dout), grads)


def _providers(ours, ref):
    if DEV == "cpu":  # --smoke: inductor's CPU compile takes minutes; the GPU run includes it
        return [("triton (ours)", ours), ("torch reference", ref)]
    return [("triton (ours)", ours), ("torch reference", ref), ("torch.compile(reference)", torch.compile(ref))]


def elementwise_rows(peaks: dict) -> list[dict]:
    from jpmoe.kernels.rmsnorm import rms_norm, rms_norm_reference
    from jpmoe.kernels.rotary import rotary, rotary_reference
    from jpmoe.kernels.routing import route, route_reference
    from jpmoe.kernels.swiglu import swiglu, swiglu_reference

    bf, dev = (torch.bfloat16 if DEV == "cuda" else torch.float32), DEV  # the interpreter cannot do bf16 math
    rand = lambda *s, g=True: torch.randn(*s, device=dev, dtype=bf, requires_grad=g)  # noqa: E731
    N, H, inter, rope, RT = SIZES["N"], SIZES["H"], SIZES["inter"], SIZES["rope"], SIZES["route_T"]
    theta = torch.rand(*rope[:2], rope[3] // 2, device=dev)
    cases = [  # (op, shape text, ours, reference, inputs, dout, bytes fwd, bytes fwd+bwd)
        ("rms_norm + residual", f"({N}, {H})", lambda x, w, r: rms_norm(x, w, 1e-5, r),
         lambda x, w, r: rms_norm_reference(x, w, 1e-5, r), (rand(N, H), rand(H), rand(N, H)), rand(N, H, g=False),
         4 * N * H * 2, 8 * N * H * 2),
        ("rotary", str(rope), rotary, rotary_reference, (rand(*rope), theta.cos().to(bf), theta.sin().to(bf)),
         rand(*rope, g=False), 2 * rope[0] * rope[1] * rope[2] * rope[3] * 2,
         4 * rope[0] * rope[1] * rope[2] * rope[3] * 2),
        ("swiglu", f"({N // 2}, {inter})", swiglu, swiglu_reference, (rand(N // 2, inter), rand(N // 2, inter)),
         rand(N // 2, inter, g=False), 3 * N // 2 * inter * 2, 8 * N // 2 * inter * 2),
        ("route (E=128, K=8)", f"({RT}, 128)", lambda lg: route(lg, 8)[0], lambda lg: route_reference(lg, 8)[0],
         (rand(RT, 128),), torch.randn(RT, 8, device=dev), RT * (128 * 2 + 8 * 16), RT * (128 * 2 * 3 + 8 * 16 * 2)),
    ]
    rows = []
    for op, shape, ours, ref, inputs, dout, b_fwd, b_all in cases:
        for name, fn in _providers(ours, ref):
            try:
                fwd, both = _time_pair(fn, inputs, dout)
            except Exception as err:  # a provider that fails is reported, not fatal
                rows.append(dict(op=op, shape=shape, provider=name, error=repr(err)[:120]))
                continue
            rows.append(dict(op=op, shape=shape, provider=name, fwd_ms=fwd, fwd_gbps=b_fwd / fwd / 1e6,
                             fwd_pct_copy=b_fwd / fwd / 1e6 / peaks["copy_gbps"], fwdbwd_ms=both,
                             fwdbwd_gbps=b_all / both / 1e6, fwdbwd_pct_copy=b_all / both / 1e6 / peaks["copy_gbps"]))
            print(rows[-1], flush=True)
    return rows


def grouped_mm_moe(x, w_gate_up, w_down, weights, experts):
    """The torch baseline: sort pairs by expert, gather, torch._grouped_mm twice, SwiGLU, weight, index_add."""
    T, K = experts.shape
    E, two_i, _ = w_gate_up.shape
    flat = experts.reshape(-1)
    order = torch.argsort(flat, stable=True)  # (T*K,)
    offs = torch.cumsum(torch.bincount(flat, minlength=E), 0).to(torch.int32)  # (E,) group ends
    xs = x[order // K]  # (T*K, H)
    h = torch._grouped_mm(xs, w_gate_up.transpose(1, 2), offs=offs)  # (T*K, 2I)
    a = torch.nn.functional.silu(h[:, : two_i // 2]) * h[:, two_i // 2 :]
    y = torch._grouped_mm(a, w_down.transpose(1, 2), offs=offs)  # (T*K, H)
    y = y * weights.reshape(-1)[order].to(y.dtype).unsqueeze(1)
    return torch.zeros_like(x).index_add(0, order // K, y)


def hf_experts(E, K, H, inter, w_gate_up, w_down, impl: str):
    """transformers' MixtralExperts holding our weights, with experts_implementation `impl`."""
    from transformers import MixtralConfig
    from transformers.models.mixtral.modeling_mixtral import MixtralExperts

    cfg = MixtralConfig(hidden_size=H, intermediate_size=inter, num_local_experts=E, num_experts_per_tok=K)
    cfg._experts_implementation = impl
    mod = MixtralExperts(cfg).to(device=DEV, dtype=w_gate_up.dtype)
    mod.gate_up_proj, mod.down_proj = w_gate_up, w_down  # the same Parameters: same inputs for every provider
    return lambda x, wgu, wd, weights, experts: mod(x, experts, weights)


def moe_inputs(E, K, H, inter, T, seed=0):
    g = torch.Generator(device=DEV).manual_seed(seed)
    bf = torch.bfloat16 if DEV == "cuda" else torch.float32
    x = torch.randn(T, H, device=DEV, dtype=bf, generator=g).requires_grad_()
    w_gu = torch.nn.Parameter(torch.randn(E, 2 * inter, H, device=DEV, dtype=bf, generator=g) * H**-0.5)
    w_d = torch.nn.Parameter(torch.randn(E, H, inter, device=DEV, dtype=bf, generator=g) * inter**-0.5)
    logits = torch.randn(T, E, device=DEV, generator=g)
    weights, experts = torch.topk(torch.softmax(logits, -1), K, dim=-1)
    weights = (weights / weights.sum(-1, keepdim=True)).requires_grad_()
    return (x, w_gu, w_d, weights, experts), torch.randn(T, H, device=DEV, dtype=bf, generator=g)


def moe_rows(peaks: dict, tokens: list[int], shapes: dict) -> list[dict]:
    from jpmoe.kernels.moe_mlp import moe_mlp, moe_mlp_reference

    rows = []
    for shape, dims in shapes.items():
        E, K, H, inter = dims["E"], dims["K"], dims["H"], dims["inter"]
        for T in tokens:
            inputs, dout = moe_inputs(E, K, H, inter, T)
            flops = 6 * T * K * H * inter
            with torch.no_grad():
                want = moe_mlp_reference(*inputs).float()  # every provider's output is checked, not only timed
            providers = [("triton (ours)", moe_mlp), ("torch._grouped_mm", grouped_mm_moe),
                         ("transformers grouped_mm", hf_experts(E, K, H, inter, inputs[1], inputs[2], "grouped_mm")),
                         ("transformers eager loop", hf_experts(E, K, H, inter, inputs[1], inputs[2], "eager"))]
            for name, fn in providers:
                try:
                    with torch.no_grad():
                        err = ((fn(*inputs).float() - want).abs().max() / want.abs().max()).item()
                    fwd, both = _time_pair(fn, inputs, dout)
                except Exception as exc:
                    rows.append(dict(shape=shape, tokens=T, provider=name, error=repr(exc)[:120]))
                    continue
                fwd_tf, both_tf = flops / fwd / 1e9, 3 * flops / both / 1e9
                rows.append(dict(shape=shape, tokens=T, provider=name, max_rel_err=err, fwd_ms=fwd, fwd_tflops=fwd_tf,
                                 fwd_pct_mm=fwd_tf / peaks["matmul_tflops"], fwdbwd_ms=both, fwdbwd_tflops=both_tf,
                                 fwdbwd_pct_mm=both_tf / peaks["matmul_tflops"]))
                print(rows[-1], flush=True)
            del inputs, dout, want
            if DEV == "cuda":
                torch.cuda.empty_cache()
    return rows


def kernel_ms(fn, inputs, dout, reps: int = 5) -> dict:
    """GPU milliseconds per kernel name for one forward + backward (torch.profiler, mean over `reps` runs)."""
    from torch.profiler import ProfilerActivity, profile

    run = _fwd_bwd(fn, inputs, dout)
    run()  # compile and warm up outside the trace
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(reps):
            run()
        torch.cuda.synchronize()
    return {e.key: e.self_device_time_total / 1e3 / reps for e in prof.key_averages() if e.self_device_time_total}


TUNED = ("_moe_gate_up_kernel", "_moe_scatter_gemm_kernel", "_moe_down_bwd_kernel", "_moe_dw_kernel")


TUNE_BLOCK_M = {"train": (64, 128), "decode": (16, 32)}  # decode: a few rows per expert, weight-bandwidth bound


def tune_candidates(current, block_ms=TUNE_BLOCK_M["train"]) -> list:
    """The current table row first, then 16 sweeps; each kernel takes its own tiles, so one sweep times them all."""
    from jpmoe.kernels.tiling import GemmTiles, MoETiles

    chunks = ((64, 3), (64, 4)) if block_ms[0] >= 64 else ((64, 4), (128, 4))
    gemm = [(bm, bn, bk, w, st) for bm in block_ms for bn in (64, 128) for bk, st in chunks for w in (4, 8)]
    dw = [(bm, bn, bk, w, st) for bm in (64, 128) for bn in (128, 256) for bk in (32, 64) for w, st in ((8, 3), (4, 4))]
    out = [current]
    for (bm, bn, bk, w, st), (dm, dn, dk, dw_w, dw_st) in zip(gemm, dw):
        out.append(MoETiles(gate_up=GemmTiles(bm, bn // 2, bk, current.gate_up.group_m, w, st),
                            scatter=GemmTiles(bm, bn, bk, current.scatter.group_m, w, st),
                            down_bwd=GemmTiles(bm, bn, bk, current.down_bwd.group_m, w, st),
                            dw=GemmTiles(dm, dn, dk, 8, dw_w, dw_st)))
    return out


def tune(shapes: dict, tokens: list[int], block_ms=TUNE_BLOCK_M["train"]) -> None:
    """Per MoE shape and token count: profile forward+backward under each tile candidate, and print per kernel the
    fastest tiles against the current table's (block_m must agree across the forward kernels: it is the padding
    unit of the alignment, so the row printed for the table takes the gate-up kernel's block_m for all three)."""
    import jpmoe.kernels.moe_mlp as moe_module
    from jpmoe.kernels.moe_mlp import moe_mlp

    original = moe_module.moe_tiles
    try:
        for shape, dims in shapes.items():
            for T in tokens:
                inputs, dout = moe_inputs(dims["E"], dims["K"], dims["H"], dims["inter"], T)
                current = original(T * dims["K"], dims["E"], torch.bfloat16)
                timed = []  # (candidate, {kernel: ms})
                for cand in tune_candidates(current, block_ms):
                    moe_module.moe_tiles = lambda *a, c=cand: c
                    try:
                        timed.append((cand, kernel_ms(moe_mlp, inputs, dout)))
                    except Exception as err:  # out of shared memory / registers: skip the candidate
                        print(f"skip {cand}: {repr(err)[:80]}", flush=True)
                print(f"\n{shape} T={T} rows/expert={T * dims['K'] / dims['E']:.0f}", flush=True)
                fields = dict(zip(TUNED, ("gate_up", "scatter", "down_bwd", "dw")))
                base = {k: timed[0][1].get(k, float("nan")) for k in TUNED}
                print("  current: " + ", ".join(f"{k} {v:.3f}" for k, v in base.items())
                      + f" = {sum(base.values()):.3f} ms", flush=True)
                for bm in block_ms:  # the three row-block kernels share block_m (the alignment's padding unit)
                    best = {}
                    for k, field in fields.items():
                        pool = [(ms.get(k, float("inf")), getattr(c, field)) for c, ms in timed
                                if k == "_moe_dw_kernel" or c.block_m == bm]
                        best[k] = min(pool, key=lambda r: r[0])
                    print(f"  block_m={bm}: {sum(ms for ms, _ in best.values()):.3f} ms", flush=True)
                    for k, (ms, tiles) in best.items():
                        print(f"    {fields[k]}={tiles},  # {ms:.3f} ms (current {base[k]:.3f})", flush=True)
    finally:
        moe_module.moe_tiles = original


def _table(rows, cols) -> str:
    """Markdown table; a provider that failed shows its error in the first number column."""
    head = "| " + " | ".join(title for title, _, _ in cols) + " |\n|" + "---|" * len(cols) + "\n"
    body = ""
    for r in rows:
        cells = [fmt.format(r[key]) if key in r else "" for _, key, fmt in cols]
        if "error" in r:
            cells[next(i for i, (_, key, _) in enumerate(cols) if key not in r)] = r["error"]
        body += "| " + " | ".join(cells) + " |\n"
    return head + body


def write_results(peaks, ew_rows, moe, device: str, out_dir: Path = RESULTS) -> Path:
    date = datetime.date.today().isoformat()
    slug = device.replace(" ", "-").replace("/", "-")
    md = (f"# bench_kernels: {device}, {date}\n\ntorch {torch.__version__}, bf16. Measured in this run: bf16 matmul "
          f"{peaks['matmul_tflops']:.0f} TFLOP/s, copy {peaks['copy_gbps']:.0f} GB/s.\n\n## Hot-path ops\n\n")
    md += _table(ew_rows, [("op", "op", "{}"), ("shape", "shape", "{}"), ("provider", "provider", "{}"),
                           ("fwd ms", "fwd_ms", "{:.3f}"), ("fwd GB/s", "fwd_gbps", "{:.0f}"),
                           ("fwd % copy", "fwd_pct_copy", "{:.0%}"), ("fwd+bwd ms", "fwdbwd_ms", "{:.3f}"),
                           ("fwd+bwd GB/s", "fwdbwd_gbps", "{:.0f}"), ("fwd+bwd % copy", "fwdbwd_pct_copy", "{:.0%}")])
    md += "\n## MoE expert MLP (targets: fwd 60% / 40%, fwd+bwd 45% / 30% of the matmul rate)\n\n"
    md += _table(moe, [("shape", "shape", "{}"), ("tokens", "tokens", "{}"), ("provider", "provider", "{}"),
                       ("fwd ms", "fwd_ms", "{:.2f}"), ("fwd TFLOP/s", "fwd_tflops", "{:.0f}"),
                       ("fwd % mm", "fwd_pct_mm", "{:.0%}"), ("fwd+bwd ms", "fwdbwd_ms", "{:.2f}"),
                       ("fwd+bwd TFLOP/s", "fwdbwd_tflops", "{:.0f}"), ("fwd+bwd % mm", "fwdbwd_pct_mm", "{:.0%}"),
                       ("max err / max ref", "max_rel_err", "{:.1e}")])
    out_dir.mkdir(exist_ok=True)
    path = out_dir / f"kernels-{date}-{slug}.md"
    path.write_text(md)
    path.with_suffix(".json").write_text(json.dumps(dict(device=device, date=date, peaks=peaks, ops=ew_rows,
                                                         moe=moe), indent=1))
    print(md)
    return path


def smoke() -> int:
    """Every code path but the CUDA timer, on CPU with tiny sizes; results go to a temporary directory."""
    global DEV, SIZES
    DEV, SIZES = "cpu", SMOKE_SIZES
    peaks = machine_peaks()
    ew, moe = elementwise_rows(peaks), moe_rows(peaks, [8], SMOKE_MOE)
    failed = [r for r in ew + moe if "error" in r]
    with tempfile.TemporaryDirectory() as tmp:
        write_results(peaks, ew, moe, "cpu-smoke", Path(tmp))
    print("smoke: failed providers:", failed or "none")
    return 1 if failed else 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="only 4096 tokens per MoE shape")
    p.add_argument("--tune", action="store_true", help="sweep MoE tile candidates instead of benchmarking")
    p.add_argument("--tune-decode", action="store_true",
                   help="sweep the decode-like class (256 / 1024 tokens: 64 rows per expert; block_m 16 and 32)")
    p.add_argument("--smoke", action="store_true", help="CPU, interpreter, tiny sizes: exercise the script only")
    args = p.parse_args(argv)
    if args.smoke:
        return smoke()
    if not torch.cuda.is_available():
        print("bench_kernels: needs a CUDA GPU (the Triton kernels are compiled for it); nothing measured here. "
              "On CPU the kernels run only in Triton's interpreter, which tests correctness, not speed.")
        return 0
    tokens = TOKENS[:1] if args.quick else TOKENS
    if args.tune:
        tune(MOE_SHAPES, tokens)
        return 0
    if args.tune_decode:  # 64 rows per expert in both shapes
        for shape, T in (("mixtral", 256), ("fine", 1024)):
            tune({shape: MOE_SHAPES[shape]}, [T], TUNE_BLOCK_M["decode"])
        return 0
    device = torch.cuda.get_device_name()
    peaks = machine_peaks()
    print(f"{device}: bf16 matmul {peaks['matmul_tflops']:.0f} TFLOP/s, copy {peaks['copy_gbps']:.0f} GB/s")
    path = write_results(peaks, elementwise_rows(peaks), moe_rows(peaks, tokens, MOE_SHAPES), device)
    print(f"wrote {path} and {path.with_suffix('.json').name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
