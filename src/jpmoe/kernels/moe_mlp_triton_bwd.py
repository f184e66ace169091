"""Triton backward of the dropless expert MLP (`jpmoe.kernels.moe_mlp`), on the forward's sorted rows.

Backward, given dout (T, H), the sorted pair rows of the forward and its saved pre-activations gu = [gate | up]:
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

import torch

from jpmoe.kernels.backend import new_empty, tl, triton
from jpmoe.kernels.moe_mlp_triton_fwd import _combine, _opts, _rows_dot_expert, _scatter_gemm
from jpmoe.kernels.tiling import tile_ids


@triton.jit
def _gather_rows_kernel(
    src_ptr,  # (T, N) token rows
    scale_ptr,  # (P,) routing weights (HAS_SCALE only)
    sorted_ptr,  # (rows,) sorted pair ids, the sentinel P on padding
    out_ptr,  # out: (rows, N) = src[token of the pair] (* scale[pair]), zero on padding
    n_pairs, top_k, N, stride_src,
    HAS_SCALE: tl.constexpr, BLOCK: tl.constexpr,
):
    r = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    pair = tl.load(sorted_ptr + r)
    valid = pair < n_pairs
    pair = tl.where(valid, pair, 0)  # padding reads pair 0's row, then writes zeros
    v = tl.load(src_ptr + (pair // top_k).to(tl.int64) * stride_src + cols, mask=cols < N, other=0.0)
    if HAS_SCALE:  # rounded as the reference: (row in fp32 * weight) -> dtype
        w = tl.load(scale_ptr + pair).to(tl.float32)
        v = (v.to(tl.float32) * w).to(out_ptr.dtype.element_ty)
    tl.store(out_ptr + r * N + cols, tl.where(valid, v, 0.0).to(out_ptr.dtype.element_ty), mask=cols < N)

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
    acc, _ = _rows_dot_expert(a_ptrs, valid, b_ptrs, 0, offs_n < inter, H, inter, acc, acc,
                              TWO=False, UPCAST=UPCAST, DOT_PREC=DOT_PREC, BLOCK_K=BLOCK_K)
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


def _expert_grad(a, b, offsets, shape, tiles, dtype):
    """(E, N1, N2) = per expert, sum over its (contiguous, sorted) rows of A^T B."""
    E, N1, N2 = shape
    out = new_empty(shape, dtype, a.device)
    t = tiles.dw
    grid = (E * triton.cdiv(N1, t.block_m) * triton.cdiv(N2, t.block_n),)
    _moe_dw_kernel[grid](a, b, offsets, out, N1, N2, a.stride(0), b.stride(0), **_opts(t, a.dtype))
    return out


def _sorted_rows(src, sorted_pairs, top_k, n_pairs, scale=None):
    """(rows, N) = src[token of each sorted pair] (times scale[pair]), zero on padding: one pass."""
    N = src.shape[1]
    out = new_empty((sorted_pairs.numel(), N), src.dtype, src.device)
    if out.numel():
        block = min(1024, max(16, triton.next_power_of_2(N)))
        _gather_rows_kernel[(out.shape[0], triton.cdiv(N, block))](
            src, scale if scale is not None else src, sorted_pairs, out, n_pairs, top_k, N, src.stride(0),
            HAS_SCALE=scale is not None, BLOCK=block)
    return out


def moe_mlp_backward(dout, x, w_gate_up, w_down, weights, saved, needs):
    """Gradients of x, w_gate_up, w_down and weights (None where `needs` says not required)."""
    sorted_pairs, block_expert, offsets, gu, tiles = saved
    T, H = x.shape
    E, two_i, _ = w_gate_up.shape
    inter, K = two_i // 2, weights.shape[1]
    P, n_blocks = T * K, block_expert.numel()
    dout = dout if dout.stride(-1) == 1 else dout.contiguous()
    scale = weights.reshape(-1)
    t = tiles.down_bwd
    n_tiles = triton.cdiv(inter, t.block_n)
    dgu = new_empty(gu.shape, x.dtype, x.device)
    act = new_empty((gu.shape[0], inter), x.dtype, x.device)
    dw_part = new_empty((P, n_tiles), torch.float32, x.device)
    _moe_down_bwd_kernel[(n_blocks * n_tiles,)](
        dout, w_down, gu, scale, sorted_pairs, block_expert, dgu, act, dw_part, P, K, H, inter, n_blocks,
        dout.stride(0), w_down.stride(0), gu.stride(0), dgu.stride(0), act.stride(0), n_tiles, GROUP_M=t.group_m,
        **_opts(t, x.dtype))
    dweights = dw_part.sum(1).view(T, K).to(weights.dtype) if needs[3] else None
    dx = None
    if needs[0]:  # B[k, n] = W_gate_up[e][k, n]: k runs over 2I (stride H), n over H (stride 1)
        dx_pairs = _scatter_gemm(dgu, w_gate_up, (w_gate_up.stride(0), H, 1), None, sorted_pairs, block_expert, P,
                                 H, tiles, n_blocks)
        dx = _combine(dx_pairs, T, K)
    dw_gu = dw_down = None
    if needs[1]:  # d W_gate_up[e] = d gu^T x[tok]
        dw_gu = _expert_grad(dgu, _sorted_rows(x, sorted_pairs, K, P), offsets, (E, two_i, H), tiles, x.dtype)
    if needs[2]:  # d W_down[e] = (weights * dout[tok])^T act
        dw_down = _expert_grad(_sorted_rows(dout, sorted_pairs, K, P, scale), act, offsets, (E, H, inter), tiles,
                               x.dtype)
    return dx, dw_gu, dw_down, dweights
