"""Backward kernels of the dropless expert MLP (see moe_mlp.py for the forward, the layout and the entry point).

Given dout (T, H), with the sorted pair rows of the forward and its saved pre-activations gu = [gate | up]:
  d_act[p] = dout[t] @ W_down[e]                (gathered dout rows; one row per sorted pair)
  d weights[p] = <d_act[p], act[p]>              (act = silu(gate) * up, recomputed from gu)
  d gu[p] = SwiGLU'(gu[p]) applied to weights[p] * d_act[p]
  d x[t] = sum_k d gu[p] @ W_gate_up[e]           (scatter to pair rows, then the deterministic combine)
  d W_gate_up[e] = sum_{p in e} d gu[p]^T x[t]    d W_down[e] = sum_{p in e} (weights[p] dout[t])^T act[p]
The last two reduce over each expert's rows inside one program per output tile: no atomics, deterministic.
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
    dw_part_ptr,  # out: (P, n_tiles) fp32 partial d weights, one column per tile of I
    n_pairs, top_k, H, inter, n_blocks,
    stride_do, stride_we, stride_gu, stride_dgu, n_tiles,
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
    act = (g * sig * u).to(dgu_ptr.dtype.element_ty).to(tl.float32)  # the forward's activation, as stored
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
    a_ptr,  # rows of A: sorted (d gu) or gathered by token (dout), row stride stride_a
    b_ptr,  # rows of B: gathered by token (x) or sorted (gu, turned into act = silu(gate) * up on load)
    scale_ptr,  # (P,) routing weights (A_SCALE only)
    sorted_ptr, offsets_ptr,  # sorted pair ids; (E + 1,) padded start of each expert's rows
    out_ptr,  # out: (E, N1, N2) contiguous; out[e] = sum over e's rows of A[r, :]^T B[r, :]
    n_pairs, top_k, N1, N2, inter,
    stride_a, stride_b,
    A_GATHER: tl.constexpr, A_SCALE: tl.constexpr, B_GATHER: tl.constexpr, B_SWIGLU: tl.constexpr,
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
        rows = r0 + offs_k
        pair = tl.load(sorted_ptr + rows, mask=rows < end, other=n_pairs)
        valid = pair < n_pairs
        tok = (pair // top_k).to(tl.int64)
        ra = tok if A_GATHER else rows.to(tl.int64)
        a = tl.load(a_ptr + ra[None, :] * stride_a + offs_m[:, None], mask=mmask[:, None] & valid[None, :],
                    other=0.0)  # (BLOCK_M, BLOCK_K) = A^T
        if A_SCALE:
            w = tl.load(scale_ptr + pair, mask=valid, other=0.0).to(tl.float32)
            a = (a.to(tl.float32) * w[None, :]).to(a_ptr.dtype.element_ty)
        rb = tok if B_GATHER else rows.to(tl.int64)
        b_ptrs = b_ptr + rb[:, None] * stride_b + offs_n[None, :]
        bmask = valid[:, None] & nmask[None, :]
        b = tl.load(b_ptrs, mask=bmask, other=0.0)
        if B_SWIGLU:  # B = act = silu(gate) * up, recomputed from the saved pre-activations (not stored)
            g = b.to(tl.float32)
            u = tl.load(b_ptrs + inter, mask=bmask, other=0.0).to(tl.float32)
            b = (g * tl.sigmoid(g) * u).to(b_ptr.dtype.element_ty)
        if UPCAST:
            a, b = a.to(tl.float32), b.to(tl.float32)
        acc = tl.dot(a, b, acc, input_precision=DOT_PREC)
    out = out_ptr + e.to(tl.int64) * N1 * N2 + offs_m[:, None].to(tl.int64) * N2 + offs_n[None, :]
    tl.store(out, acc.to(out_ptr.dtype.element_ty), mask=mmask[:, None] & nmask[None, :])
