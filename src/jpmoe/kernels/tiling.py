"""Block sizes of the grouped expert GEMMs per shape class, and the order in which programs walk the tiles.

How the table was chosen (and what is still open): the GPU rows start from vLLM's tuned fused_moe configs for
H100 (BLOCK_M grows 16 -> 64 -> 128 with the rows an expert receives, BLOCK_K 64-128, GROUP_M 1-16, 4-8 warps,
3-4 stages) and from the Triton matmul tutorial; BLOCK_M is capped by padding waste, since every expert pads its
rows to BLOCK_M (waste ~ E * (BLOCK_M - 1) / 2 rows, 12% at E=128, T*K=65536 with BLOCK_M=128). The gate-up kernel
keeps two accumulators (gate and up), so its BLOCK_N is half the others'. Every entry compiles for sm_90 with no
register spill (tests/moe/kernels/test_compile_sm90.py checks this on CPU). The two larger classes were then
timed on an H100 (2026-11-24, Triton 3.6, `python benchmarks/bench_kernels.py --tune --quick`: each kernel's time
under each candidate from the profiler, the fastest per kernel at a common block_m): -14% forward+backward for
Mixtral's shape at 4096 tokens, -7% for E=128/K=8. The decode-like row (`--tune-decode`, 64 rows per expert):
-37% for Mixtral's shape at 256 tokens with its winners, which this row takes (E=128/K=8 at 1024 tokens preferred
the same block_m with other N/K tiles, -30% with its own).
The interpreter row keeps tiles at tl.dot's minimum of 16 so CPU tests stay small and still cross tiles.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from jpmoe.kernels.backend import interpreting, tl, triton


@dataclass(frozen=True)
class GemmTiles:
    block_m: int  # rows per program (one expert's sorted rows); also the padding unit of moe_align
    block_n: int  # output columns per program
    block_k: int  # reduction chunk
    group_m: int = 8  # row blocks walked together so their programs share weight tiles in L2
    num_warps: int = 4
    num_stages: int = 3


@dataclass(frozen=True)
class MoETiles:
    gate_up: GemmTiles  # x[tok] @ W_gate_up^T with the SwiGLU epilogue (two accumulators)
    scatter: GemmTiles  # act @ W_down^T (forward) and d gu @ W_gate_up (backward d x), rows scattered to pairs
    down_bwd: GemmTiles  # dout[tok] @ W_down with the SwiGLU-backward epilogue
    dw: GemmTiles  # per-expert weight gradients: block_m x block_n output tile, block_k rows per step

    @property
    def block_m(self) -> int:
        return self.gate_up.block_m


INTERPRETER_TILES = MoETiles(
    gate_up=GemmTiles(16, 32, 32, group_m=2, num_stages=1),
    scatter=GemmTiles(16, 32, 32, group_m=2, num_stages=1),
    down_bwd=GemmTiles(16, 32, 32, group_m=2, num_stages=1),
    dw=GemmTiles(32, 32, 16, num_stages=1),
)

# (upper bound on mean rows per expert T*K/E, tiles). bf16/fp16 operands; fp32: see moe_tiles.
GPU_TABLE: list[tuple[float, MoETiles]] = [
    (96, MoETiles(  # decode-like: weight bandwidth bound; 32-row blocks beat 16 (fewer weight re-reads)
        gate_up=GemmTiles(32, 64, 128, group_m=1, num_warps=4, num_stages=4),
        scatter=GemmTiles(32, 128, 128, group_m=1, num_warps=8, num_stages=4),
        down_bwd=GemmTiles(32, 128, 64, group_m=1, num_warps=4, num_stages=4),
        dw=GemmTiles(128, 128, 32, num_warps=4, num_stages=4))),
    (768, MoETiles(  # mid-size groups: fine-grained shapes at 4k-12k tokens (E=128, K=8: 256-768 rows)
        gate_up=GemmTiles(128, 64, 64, group_m=8, num_warps=8, num_stages=3),
        scatter=GemmTiles(128, 128, 64, group_m=8, num_warps=8, num_stages=3),
        down_bwd=GemmTiles(128, 64, 64, group_m=8, num_warps=8, num_stages=4),
        dw=GemmTiles(128, 128, 32, num_warps=8, num_stages=3))),
    (float("inf"), MoETiles(  # coarse experts (Mixtral-like): compute bound, the largest tiles
        gate_up=GemmTiles(128, 64, 64, group_m=8, num_warps=4, num_stages=3),
        scatter=GemmTiles(128, 128, 64, group_m=8, num_warps=8, num_stages=3),
        down_bwd=GemmTiles(128, 64, 64, group_m=8, num_warps=8, num_stages=4),  # N=128 was faster, but spills
        dw=GemmTiles(128, 128, 32, num_warps=8, num_stages=3))),
]


def moe_tiles(n_pairs: int, num_experts: int, dtype: torch.dtype) -> MoETiles:
    """The table row for this many (token, expert) pairs per expert."""
    if interpreting():
        return INTERPRETER_TILES
    rows = n_pairs / max(num_experts, 1)
    tiles = next(t for bound, t in GPU_TABLE if rows <= bound)
    if dtype == torch.float32:
        tiles = MoETiles(_fp32(tiles.gate_up, 2), _fp32(tiles.scatter), _fp32(tiles.down_bwd), _fp32(tiles.dw))
    return tiles


def _fp32(g: GemmTiles, n: int = 1) -> GemmTiles:
    """4-byte operands: half the K chunk (shared memory), the N tile / n (gate-up: n=2), at most 128 x 64 outputs
    per program (the fp32 MMA keeps its operands in registers: 128 x 128 spilled under Triton 3.6 even at 8 warps)
    and 4 warps for tiles of 64 x 64 or less."""
    block_n = min(max(32, g.block_n // n), max(32, 128 * 64 // g.block_m))
    warps = 4 if g.block_m * block_n <= 64 * 64 else g.num_warps  # small fp32 tiles spill at 8 warps (128 regs)
    return GemmTiles(g.block_m, block_n, max(16, g.block_k // 2), g.group_m, warps, g.num_stages)


@triton.jit
def tile_ids(pid, n_m, n_n, GROUP_M: tl.constexpr):
    """Program id -> (row block, column tile), GROUP_M row blocks at a time (the Triton matmul tutorial's order)."""
    width = GROUP_M * n_n
    first_m = (pid // width) * GROUP_M
    size_m = tl.minimum(n_m - first_m, GROUP_M)
    return first_m + (pid % width) % size_m, (pid % width) // size_m
