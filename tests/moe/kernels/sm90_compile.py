"""Compile every Triton kernel of jpmoe.kernels for an H100 (sm_90) on a machine without a GPU.

The interpreter runs the kernels' Python, not the compiler: this catches what only compilation rejects (types,
tl.dot shapes, layouts) and reports registers and spills per launch configuration. Run without TRITON_INTERPRET:
    python tests/moe/kernels/sm90_compile.py [--all-classes]   # prints one JSON line per kernel config
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.pop("TRITON_INTERPRET", None)

from importlib import import_module  # noqa: E402

import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from jpmoe.kernels.backend import row_warps  # noqa: E402
from jpmoe.kernels.tiling import GPU_TABLE, moe_tiles  # noqa: E402

moe_align, mlp_fwd, mlp_bwd, rmsnorm, rotary, routing, swiglu = (
    import_module(f"jpmoe.kernels.{name}")
    for name in ("moe_align", "moe_mlp_triton_fwd", "moe_mlp_triton_bwd", "rmsnorm", "rotary", "routing", "swiglu"))
TARGET = GPUTarget("cuda", 90, 32)
# A real launch marks pointers and ints divisible by 16 (tt.divisibility); the pipeliner and vector loads need it.
# Model sizes (H, I, head dims) and their strides are multiples of 16; counts (pairs, tokens, top_k) are not.
DIV16 = {"H", "inter", "N", "K_DIM", "N1", "N2", "n_cols"}


def compile_one(fn, ptrs: dict, constexprs: dict, num_warps: int = 4, num_stages: int = 3) -> dict:
    """ptrs: pointer args -> element type ('bf16', 'i32', ...); every other non-constexpr arg is i32."""
    sig = {}
    for name in fn.arg_names:
        sig[name] = "constexpr" if name in constexprs else (f"*{ptrs[name]}" if name in ptrs else "i32")
    if "eps" in sig:
        sig["eps"] = "fp32"
    attrs = {(i,): [["tt.divisibility", 16]] for i, name in enumerate(fn.arg_names)
             if name in ptrs or name.startswith("stride") or name in DIV16}
    t0 = time.perf_counter()
    k = triton.compile(ASTSource(fn=fn, signature=sig, constexprs=constexprs, attrs=attrs), target=TARGET,
                       options=dict(num_warps=num_warps, num_stages=num_stages))
    seconds = round(time.perf_counter() - t0, 1)
    ttgir = k.asm["ttgir"]  # how the loop was lowered: Hopper wgmma tensor-core dots, cp.async pipelining
    lowering = dict(wgmma=ttgir.count("warp_group_dot"), async_copies=ttgir.count("async_copy_global_to_local"))
    return dict(kernel=fn.__name__, **resources(k.asm["cubin"]), **lowering, shared=k.metadata.shared,
                seconds=seconds,
                config={k2: v for k2, v in constexprs.items() if k2.startswith(("BLOCK", "GROUP"))},
                num_warps=num_warps, num_stages=num_stages)


def resources(cubin: bytes) -> dict:
    """Registers per thread and stack bytes (non-zero stack = spills) from cuobjdump -res-usage."""
    tool = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        text = subprocess.run([str(tool), "-res-usage", f.name], capture_output=True, text=True).stdout
    found = re.search(r"REG:(\d+) STACK:(\d+)", text)
    return dict(regs=int(found.group(1)), stack=int(found.group(2))) if found else dict(regs=None, stack=None)


def elementwise_kernels(dt: str = "bf16"):
    yield swiglu._swiglu_fwd_kernel, dict(g_ptr=dt, u_ptr=dt, o_ptr=dt), dict(BLOCK=1024)
    yield swiglu._swiglu_bwd_kernel, dict(do_ptr=dt, g_ptr=dt, u_ptr=dt, dg_ptr=dt, du_ptr=dt), dict(BLOCK=1024)
    yield (rmsnorm._rms_norm_fwd_kernel, dict(x_ptr=dt, r_ptr=dt, w_ptr=dt, y_ptr=dt, s_ptr=dt, rstd_ptr="fp32"),
           dict(HAS_RES=True, BLOCK=4096))
    yield (rmsnorm._rms_norm_bwd_kernel, dict(dy_ptr=dt, ds_ptr=dt, s_ptr=dt, w_ptr=dt, rstd_ptr="fp32", dx_ptr=dt,
                                              dw_part_ptr="fp32"), dict(HAS_DS=True, BLOCK=4096))
    rot = dict(x_ptr=dt, cos_ptr=dt, sin_ptr=dt, o_ptr=dt, xs_ptr=dt, dcos_ptr=dt, dsin_ptr=dt)
    yield rotary._rotary_kernel, rot, dict(BACKWARD=True, GRAD_CS=True, BLOCK_H=32, BLOCK_D=64)
    yield (routing._route_fwd_kernel, dict(logits_ptr=dt, w_ptr="fp32", ex_ptr="i64"),
           dict(K=8, RENORM=True, BLOCK_T=32, BLOCK_E=128, BLOCK_K=8))
    yield (routing._route_bwd_kernel, dict(dw_ptr="fp32", w_ptr="fp32", ex_ptr="i64", logits_ptr=dt, dl_ptr=dt),
           dict(K=8, RENORM=False, BLOCK_T=32, BLOCK_E=128, BLOCK_K=8))
    yield moe_align._count_kernel, dict(experts_ptr="i64", counts_ptr="i32"), dict(BLOCK=64, BLOCK_E=128)
    yield (moe_align._align_kernel, dict(experts_ptr="i64", counts_ptr="i32", sorted_ptr="i32",
                                         block_expert_ptr="i32", offsets_ptr="i32"),
           dict(BLOCK=1024, BLOCK_E=128, BLOCK_M=64))
    yield mlp_fwd._moe_combine_kernel, dict(y_ptr=dt, out_ptr=dt), dict(BLOCK=1024)
    yield (mlp_bwd._gather_rows_kernel, dict(src_ptr=dt, scale_ptr="fp32", sorted_ptr="i32", out_ptr=dt),
           dict(HAS_SCALE=True, BLOCK=1024))


def moe_kernels(tiles, dt: str = "bf16"):
    common = dict(UPCAST=False, DOT_PREC="ieee" if dt == "fp32" else "tf32")
    blk = lambda t: dict(BLOCK_M=t.block_m, BLOCK_N=t.block_n, BLOCK_K=t.block_k)  # noqa: E731
    idx = dict(sorted_ptr="i32", block_expert_ptr="i32")
    t = tiles.gate_up
    yield (mlp_fwd._moe_gate_up_kernel, dict(x_ptr=dt, w_ptr=dt, gu_ptr=dt, h_ptr=dt, **idx),
           dict(STORE_GU=True, GROUP_M=t.group_m, **blk(t), **common), t)
    t = tiles.scatter
    yield (mlp_fwd._moe_scatter_gemm_kernel, dict(a_ptr=dt, b_ptr=dt, scale_ptr="fp32", out_ptr=dt, **idx),
           dict(HAS_SCALE=True, GROUP_M=t.group_m, **blk(t), **common), t)
    t = tiles.down_bwd
    yield (mlp_bwd._moe_down_bwd_kernel, dict(dout_ptr=dt, w_ptr=dt, gu_ptr=dt, scale_ptr="fp32",
                                              dgu_ptr=dt, act_ptr=dt, dw_part_ptr="fp32", **idx),
           dict(GROUP_M=t.group_m, **blk(t), **common), t)
    t = tiles.dw
    yield (mlp_bwd._moe_dw_kernel, dict(a_ptr=dt, b_ptr=dt, offsets_ptr="i32", out_ptr=dt),
           dict(**blk(t), **common), t)


def main(argv: list[str]) -> int:
    classes = GPU_TABLE if "--all-classes" in argv else GPU_TABLE[-1:]
    for fn, ptrs, cx in elementwise_kernels():
        print(json.dumps(compile_one(fn, ptrs, cx)), flush=True)
    for bound, tiles in classes:
        for fn, ptrs, cx, t in moe_kernels(tiles):
            row = compile_one(fn, ptrs, cx, t.num_warps, t.num_stages)
            print(json.dumps(dict(row, rows_per_expert_upto=bound)), flush=True)
    if "--all-classes" in argv:  # wide rows (H = 8192) and the fp32 path (ieee dots, halved block_k)
        # (H = 16384 spills ~100 bytes in the RMSNorm backward at any warp count; no model here is that wide)
        for fn, ptrs, cx in list(elementwise_kernels())[2:4]:
            cx = dict(cx, BLOCK=8192)
            print(json.dumps(compile_one(fn, ptrs, cx, num_warps=row_warps(8192))), flush=True)
        import torch

        for n_pairs in (64, 2**20):
            for fn, ptrs, cx, t in moe_kernels(moe_tiles(n_pairs, 8, torch.float32), dt="fp32"):
                print(json.dumps(dict(compile_one(fn, ptrs, cx, t.num_warps, t.num_stages), dtype="fp32")),
                      flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
