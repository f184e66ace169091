"""Backward kernels of the dropless expert MLP (see moe_mlp.py for the forward, the layout and the entry point).

Given dout (T, H), with the sorted pair rows of the forward and its saved pre-activations gu = [gate | up]:
  d_act[p] = dout[t] @ W_down[e]                (gathered dout rows; one row per sorted pair)
  d weights[p] = <d_act[p], act[p]>              (act = silu(gate) * up, recomputed from gu)
  d gu[p] = SwiGLU'(gu[p]) applied to weights[p] * d_act[p]
  d x[t] = sum_k d gu[p] @ W_gate_up[e]           (scatter to pair rows, then the deterministic combine)
  d W_gate_up[e] = sum_{p in e} d gu[p]^T x[t]    d W_down[e] = sum_{p in e} (weights[p] dout[t])^T act[p]
The last two reduce over each expert's rows inside one program per output tile: no atomics, deterministic. Their
operands are first laid out in sorted row order (x[tok] and weights[p] * dout[t] by one gather kernel, act stored
by the down-projection backward), so the weight-gradient kernel is a plain per-expert A^T B over contiguous rows with
no indirect loads in its loop, which Triton pipelines (the gathered form ran at ~20% of the H100's bf16 rate).
"""

from __future__ import annotations

from jpmoe.kernels.backend import tl, triton
from jpmoe.kernels.tiling import tile_ids


@triton.jit
def _moe_down_bwd_kernel(
    dout_ptr,  # (T, H) gradient of the layer output, gathered by token
    w_ptr,  # (E, H, I) contiguous W_down
    gu_ptr,  # (n_blocks * BLOCK_M, 2I) saved gate | up pre-activations, sorted rows
    scale_ptr,  # (P,) routing weights
    sorted_ptr, block_expert_ptr,
    dgu_ptr,  # out: (n_blocks * BLOCK_M, 2I) d gate | d up, sorted rows
    act_ptr,  # out: (n_blocks * BLOCK_M, I) act = silu(gate) * up as the forward stored it, sorted rows
    dw_part_ptr,  # out: (P, n_tiles) fp32 partial d weights, one column per tile of I
    n_pairs, top_k, H, inter, n_blocks,
    stride_do, stride_we, stride_gu, stride_dgu, stride_act, n_tiles,
    UPCAST: tl.constexpr, DOT_PREC: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    pid_m, pid_n = tile_ids(tl.program_id(0), n_blocks, n_tiles, GROUP_M)
    e = tl.load(block_expert_ptr + pid_m).to(tl.int64)
    if e < 0:
        return
    rows = pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    pair = tl.load(sorted_ptr + rows)
    valid = pair < n_pairs
    tok = (pair // top_k).to(tl.int64)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)  # columns of I
    offs_k = tl.arange(0, BLOCK_K)  # reduction over H
    a_ptrs = dout_ptr + tok[:, None] * stride_do + offs_k[None, :]
    b_ptrs = w_ptr + e * stride_we + offs_k[:, None].to(tl.int64) * inter + offs_n[None, :]  # W_down[e][h, i]
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, H, BLOCK_K):
        kmask = offs_k < H - k0
        a = tl.load(a_ptrs, mask=valid[:, None] & kmask[None, :], other=0.0)
        b = tl.load(b_ptrs, mask=kmask[:, None] & (offs_n[None, :] < inter), other=0.0)
        if UPCAST:
            a, b = a.to(tl.float32), b.to(tl.float32)
        acc = tl.dot(a, b, acc, input_precision=DOT_PREC)
        a_ptrs += BLOCK_K
        b_ptrs += BLOCK_K * inter
    mask = valid[:, None] & (offs_n[None, :] < inter)
    gu_rows = gu_ptr + rows[:, None] * stride_gu + offs_n[None, :]
    g = tl.load(gu_rows, mask=mask, other=0.0).to(tl.float32)
    u = tl.load(gu_rows + inter, mask=mask, other=0.0).to(tl.float32)
    sig = tl.sigmoid(g)
    act_lo = (g * sig * u).to(dgu_ptr.dtype.element_ty)  # the forward's activation, as stored (0 on padding)
    tl.store(act_ptr + rows[:, None] * stride_act + offs_n[None, :], act_lo, mask=offs_n[None, :] < inter)
    act = act_lo.to(tl.float32)
    tl.store(dw_part_ptr + pair.to(tl.int64) * n_tiles + pid_n, tl.sum(acc * act, axis=1), mask=valid)
    w = tl.load(scale_ptr + pair, mask=valid, other=0.0).to(tl.float32)
    d_act = acc * w[:, None]
    dg = d_act * u * sig * (1.0 + g * (1.0 - sig))  # d silu(g)/dg = sig * (1 + g * (1 - sig))
    du = d_act * g * sig
    dgu_rows = dgu_ptr + rows[:, None] * stride_dgu + offs_n[None, :]
    tl.store(dgu_rows, dg.to(dgu_ptr.dtype.element_ty), mask=offs_n[None, :] < inter)  # padding rows get zeros
    tl.store(dgu_rows + inter, du.to(dgu_ptr.dtype.element_ty), mask=offs_n[None, :] < inter)


@triton.jit
def _moe_dw_kernel(
    a_ptr,  # (rows, N1) sorted rows, zero on padding rows
    b_ptr,  # (rows, N2) sorted rows, zero on padding rows
    offsets_ptr,  # (E + 1,) padded start of each expert's rows
    out_ptr,  # out: (E, N1, N2) contiguous; out[e] = sum over e's rows of A[r, :]^T B[r, :]
    N1, N2, stride_a, stride_b,
    UPCAST: tl.constexpr, DOT_PREC: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    n_m, n_n = tl.cdiv(N1, BLOCK_M), tl.cdiv(N2, BLOCK_N)
    pid = tl.program_id(0)
    e = pid // (n_m * n_n)
    pid_m, pid_n = (pid % (n_m * n_n)) // n_n, pid % n_n
    start, end = tl.load(offsets_ptr + e), tl.load(offsets_ptr + e + 1)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)  # N1 columns of A (rows of the result)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)  # N2 columns of B
    offs_k = tl.arange(0, BLOCK_K)  # a chunk of this expert's rows
    mmask, nmask = offs_m < N1, offs_n < N2
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for r0 in range(start, end, BLOCK_K):  # an expert with no token: no iteration, the tile is zeros
        rows = (r0 + offs_k).to(tl.int64)
        rmask = rows < end
        a = tl.load(a_ptr + rows[None, :] * stride_a + offs_m[:, None], mask=mmask[:, None] & rmask[None, :],
                    other=0.0)  # (BLOCK_M, BLOCK_K) = A^T
        b = tl.load(b_ptr + rows[:, None] * stride_b + offs_n[None, :], mask=rmask[:, None] & nmask[None, :],
                    other=0.0)
        if UPCAST:
            a, b = a.to(tl.float32), b.to(tl.float32)
        acc = tl.dot(a, b, acc, input_precision=DOT_PREC)
    out = out_ptr + e.to(tl.int64) * N1 * N2 + offs_m[:, None].to(tl.int64) * N2 + offs_n[None, :]
    tl.store(out, acc.to(out_ptr.dtype.element_ty), mask=mmask[:, None] & nmask[None, :])
