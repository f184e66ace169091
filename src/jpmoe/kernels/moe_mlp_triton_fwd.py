"""Triton forward of the dropless expert MLP (`jpmoe.kernels.moe_mlp`): the gate-up grouped GEMM with the SwiGLU
epilogue, the down GEMM scattering rows back to pair order with the routing weight, and the deterministic combine,
on the block-aligned pair order of `moe_align` and the tile table of `tiling`. The backward
(`moe_mlp_triton_bwd`) reuses its K loop and launchers.
"""

from __future__ import annotations

import torch

from jpmoe.kernels.backend import dot_precision, interpreting, new_empty, tl, triton
from jpmoe.kernels.moe_align import moe_align_triton
from jpmoe.kernels.tiling import GemmTiles, moe_tiles, tile_ids


# ---------------------------------------------------------------------------------------------------------------
# Triton kernels. Rows are the sorted, block-aligned pair list of moe_align (pair p = t * K + k, sentinel P for
# padding): row block b belongs to expert block_expert[b]. Programs walk (row block, column tile) in GROUP_M
# swizzled order so neighbouring programs share one expert's weight tiles in L2.
# ---------------------------------------------------------------------------------------------------------------
@triton.jit
def _rows_dot_expert(a_ptrs, row_ok, b_ptrs, b2_offset, col_ok, k_len, stride_bk, acc, acc2,
                     TWO: tl.constexpr, UPCAST: tl.constexpr, DOT_PREC: tl.constexpr, BLOCK_K: tl.constexpr):
    """The K loop every row-block GEMM shares: acc += A @ B (and acc2 += A @ B2, B2 = B + b2_offset, when TWO).
    A (BLOCK_M, k_len) rows at a_ptrs (stride 1 along K; rows not row_ok read as 0); B (k_len, BLOCK_N) at b_ptrs
    (stride stride_bk along K; columns not col_ok read as 0)."""
    offs_k = tl.arange(0, BLOCK_K)
    for k0 in range(0, k_len, BLOCK_K):
        kmask = offs_k < k_len - k0
        a = tl.load(a_ptrs, mask=row_ok[:, None] & kmask[None, :], other=0.0)
        bmask = kmask[:, None] & col_ok[None, :]
        b = tl.load(b_ptrs, mask=bmask, other=0.0)
        if TWO:
            b2 = tl.load(b_ptrs + b2_offset, mask=bmask, other=0.0)
        else:
            b2 = b
        if UPCAST:  # interpreter: numpy cannot do bf16 math, and fp32 keeps fp16 exact there
            a, b, b2 = a.to(tl.float32), b.to(tl.float32), b2.to(tl.float32)
        acc = tl.dot(a, b, acc, input_precision=DOT_PREC)
        if TWO:
            acc2 = tl.dot(a, b2, acc2, input_precision=DOT_PREC)
        a_ptrs += BLOCK_K
        b_ptrs += BLOCK_K * stride_bk
    return acc, acc2

@triton.jit
def _moe_gate_up_kernel(
    x_ptr,  # (T, H) token rows, gathered through the sorted pair ids
    w_ptr,  # (E, 2I, H) contiguous: gate rows [0, I), up rows [I, 2I)
    sorted_ptr, block_expert_ptr,  # (n_blocks * BLOCK_M,) int32 pair ids; (n_blocks,) int32 expert or -1
    gu_ptr,  # out (STORE_GU): (n_blocks * BLOCK_M, 2I) pre-activation gate | up, sorted rows, for the backward
    h_ptr,  # out: (n_blocks * BLOCK_M, I) silu(gate) * up, sorted rows
    n_pairs, top_k, H, inter, n_blocks,
    stride_x, stride_we, stride_gu, stride_h,
    STORE_GU: tl.constexpr, UPCAST: tl.constexpr, DOT_PREC: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    pid_m, pid_n = tile_ids(tl.program_id(0), n_blocks, tl.cdiv(inter, BLOCK_N), GROUP_M)
    e = tl.load(block_expert_ptr + pid_m).to(tl.int64)
    if e < 0:  # unused tail block
        return
    rows = pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)  # int64: rows * stride can pass 2^31
    pair = tl.load(sorted_ptr + rows)
    valid = pair < n_pairs
    tok = (pair // top_k).to(tl.int64)  # the gather: token row of each pair
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    a_ptrs = x_ptr + tok[:, None] * stride_x + offs_k[None, :]  # (BLOCK_M, BLOCK_K)
    wrow = offs_n[None, :].to(tl.int64)  # gate row n of expert e; its up row is n + I
    g_ptrs = w_ptr + e * stride_we + wrow * H + offs_k[:, None]  # (BLOCK_K, BLOCK_N) tile of W_gate^T
    acc_g = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    acc_u = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    acc_g, acc_u = _rows_dot_expert(a_ptrs, valid, g_ptrs, inter * H, offs_n < inter, H, 1, acc_g, acc_u,
                                    TWO=True, UPCAST=UPCAST, DOT_PREC=DOT_PREC, BLOCK_K=BLOCK_K)  # up: I * H on
    g = acc_g.to(h_ptr.dtype.element_ty)  # the reference rounds the projection to the input dtype
    u = acc_u.to(h_ptr.dtype.element_ty)
    nmask = offs_n[None, :] < inter
    if STORE_GU:
        gu_rows = gu_ptr + rows[:, None] * stride_gu + offs_n[None, :]
        tl.store(gu_rows, g, mask=nmask)
        tl.store(gu_rows + inter, u, mask=nmask)
    gf = g.to(tl.float32)
    h = gf * tl.sigmoid(gf) * u.to(tl.float32)  # SwiGLU epilogue
    tl.store(h_ptr + rows[:, None] * stride_h + offs_n[None, :], h.to(h_ptr.dtype.element_ty), mask=nmask)

@triton.jit
def _moe_scatter_gemm_kernel(
    a_ptr,  # (n_blocks * BLOCK_M, K_DIM) sorted rows: h (forward) or d gate|up (backward d x)
    b_ptr,  # (E, ...) expert weights; B[e][k, n] at e * stride_be + k * stride_bk + n * stride_bn
    scale_ptr,  # (P,) routing weight of each pair (HAS_SCALE only)
    sorted_ptr, block_expert_ptr,
    out_ptr,  # out: (P, N) rows in pair order (the scatter), one row per pair
    n_pairs, N, K_DIM, n_blocks,
    stride_a, stride_be, stride_bk, stride_bn, stride_o,
    HAS_SCALE: tl.constexpr, UPCAST: tl.constexpr, DOT_PREC: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    pid_m, pid_n = tile_ids(tl.program_id(0), n_blocks, tl.cdiv(N, BLOCK_N), GROUP_M)
    e = tl.load(block_expert_ptr + pid_m).to(tl.int64)
    if e < 0:
        return
    rows = pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    pair = tl.load(sorted_ptr + rows)
    valid = pair < n_pairs
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    a_ptrs = a_ptr + rows[:, None] * stride_a + offs_k[None, :]
    b_ptrs = b_ptr + e * stride_be + offs_k[:, None].to(tl.int64) * stride_bk + offs_n[None, :].to(tl.int64) * stride_bn
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    acc, _ = _rows_dot_expert(a_ptrs, valid, b_ptrs, 0, offs_n < N, K_DIM, stride_bk, acc, acc,
                              TWO=False, UPCAST=UPCAST, DOT_PREC=DOT_PREC, BLOCK_K=BLOCK_K)
    y = acc.to(out_ptr.dtype.element_ty)
    if HAS_SCALE:  # y * routing weight, both rounded to the dtype first as in the reference
        s = tl.load(scale_ptr + pair, mask=valid, other=0.0).to(out_ptr.dtype.element_ty)
        y = (y.to(tl.float32) * s.to(tl.float32)[:, None]).to(out_ptr.dtype.element_ty)
    out = out_ptr + pair.to(tl.int64)[:, None] * stride_o + offs_n[None, :]  # scatter back to pair order
    tl.store(out, y, mask=valid[:, None] & (offs_n[None, :] < N))

@triton.jit
def _moe_combine_kernel(
    y_ptr,  # (T * K, N) one row per pair, pair p = t * K + k
    out_ptr,  # out: (T, N) sum over each token's K rows, in fp32, in a fixed order (deterministic)
    top_k, N,
    BLOCK: tl.constexpr,
):
    t = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = cols < N
    acc = tl.zeros((BLOCK,), dtype=tl.float32)
    for k in range(0, top_k):
        acc += tl.load(y_ptr + (t * top_k + k) * N + cols, mask=mask, other=0.0).to(tl.float32)
    tl.store(out_ptr + t * N + cols, acc.to(out_ptr.dtype.element_ty), mask=mask)


# ---------------------------------------------------------------------------------------------------------------
# Launchers: allocate, size the grids from the upper bound on row blocks (no host sync), launch. No autograd.
# ---------------------------------------------------------------------------------------------------------------
def _opts(t: GemmTiles, dtype: torch.dtype) -> dict:
    return dict(UPCAST=interpreting(), DOT_PREC=dot_precision(dtype), BLOCK_M=t.block_m, BLOCK_N=t.block_n,
                BLOCK_K=t.block_k, num_warps=t.num_warps, num_stages=t.num_stages)


def _combine(y_pairs: torch.Tensor, n_tokens: int, top_k: int) -> torch.Tensor:
    """(T * K, N) pair rows -> (T, N) token rows, summed in fp32 in k order."""
    N = y_pairs.shape[1]
    out = new_empty((n_tokens, N), y_pairs.dtype, y_pairs.device)
    if out.numel():
        block = min(1024, max(16, triton.next_power_of_2(N)))
        _moe_combine_kernel[(n_tokens, triton.cdiv(N, block))](y_pairs, out, top_k, N, BLOCK=block)
    return out


def _scatter_gemm(a, b, strides_b, scale, sorted_pairs, block_expert, n_pairs, N, tiles, n_blocks):
    """Sorted rows of a (times expert weights b) -> (P, N) rows in pair order, optionally times scale[pair]."""
    out = new_empty((n_pairs, N), a.dtype, a.device)
    t = tiles.scatter
    grid = (n_blocks * triton.cdiv(N, t.block_n),)
    _moe_scatter_gemm_kernel[grid](
        a, b, scale if scale is not None else a, sorted_pairs, block_expert, out, n_pairs, N, a.shape[1], n_blocks,
        a.stride(0), *strides_b, out.stride(0), HAS_SCALE=scale is not None, GROUP_M=t.group_m, **_opts(t, a.dtype))
    return out


def moe_mlp_forward(x, w_gate_up, w_down, weights, experts, keep_for_backward: bool):
    """Returns out (T, H) and what the backward needs: (sorted_pairs, block_expert, offsets, gu, tiles)."""
    T, H = x.shape
    E, two_i, _ = w_gate_up.shape
    inter, K = two_i // 2, experts.shape[1]
    P = T * K
    tiles = moe_tiles(P, E, x.dtype)
    sorted_pairs, block_expert, offsets = moe_align_triton(experts, E, tiles.block_m)
    n_blocks = block_expert.numel()
    rows = sorted_pairs.numel()
    gu = new_empty((rows, two_i), x.dtype, x.device) if keep_for_backward else None
    act = new_empty((rows, inter), x.dtype, x.device)  # silu(gate) * up per sorted row
    t = tiles.gate_up
    _moe_gate_up_kernel[(n_blocks * triton.cdiv(inter, t.block_n),)](
        x, w_gate_up, sorted_pairs, block_expert, gu if gu is not None else act, act, P, K, H, inter, n_blocks,
        x.stride(0), w_gate_up.stride(0), gu.stride(0) if gu is not None else 0, act.stride(0),
        STORE_GU=gu is not None, GROUP_M=t.group_m, **_opts(t, x.dtype))
    scale = weights.reshape(-1)  # (P,) routing weight of each pair
    y_pairs = _scatter_gemm(act, w_down, (w_down.stride(0), 1, inter), scale, sorted_pairs, block_expert, P, H, tiles,
                            n_blocks)  # B[k, n] = W_down[e][n, k]: k runs over I (stride 1), n over H (stride I)
    return _combine(y_pairs, T, K), (sorted_pairs, block_expert, offsets, gu, tiles)
