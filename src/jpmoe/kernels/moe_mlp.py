"""Dropless expert MLP of an MoE layer: every (token, expert) pair is computed, none dropped.

One op, three implementations of its contract, side by side in jpmoe.kernels:
- `moe_mlp_reference` (here): the specification and the test oracle, a loop over experts;
- `moe_mlp_torch` (moe_mlp_torch.py, with its row layout and CPU buffer pool): what kernels="torch" runs, plain
  torch with a hand-written backward, tuned for CPU;
- `moe_mlp_triton` (here): what kernels="triton" runs, the Triton grouped GEMMs below (forward and backward), on
  the block-aligned pair order of `moe_align` and the tile table of `tiling`.
`moe_mlp` is the standalone entry (Triton where it can run, else the reference); the model never calls it: it
calls the path its `kernels` setting named when it was built (`jpmoe.kernels.dispatch`).

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

from jpmoe.kernels.backend import dot_precision, interpreting, new_empty, tl, triton, use_triton
from jpmoe.kernels.moe_align import check_experts, moe_align_triton
from jpmoe.kernels.swiglu import swiglu_reference
from jpmoe.kernels.tiling import GemmTiles, moe_tiles, tile_ids


def moe_mlp_reference(
    x: torch.Tensor,
    w_gate_up: torch.Tensor,
    w_down: torch.Tensor,
    weights: torch.Tensor,
    experts: torch.Tensor,
) -> torch.Tensor:
    """out[t] = sum_k weights[t, k] * down_e(silu(gate_e(x[t])) * up_e(x[t])) with e = experts[t, k].

    x: (T, H); w_gate_up: (E, 2I, H), rows [0:I] the gate projection and [I:2I] the up projection (the layout of
    transformers 5.x Mixtral in memory); w_down: (E, H, I); weights: (T, K); experts: (T, K) int64.
    Pairs are sorted by expert so that each expert multiplies one contiguous slice. Returns (T, H) in x.dtype.
    """
    T, K = experts.shape
    E, two_i, _ = w_gate_up.shape
    flat = experts.reshape(-1)  # (T*K,)
    order = torch.argsort(flat, stable=True)  # pair indices grouped by expert
    token_of_pair = order // K  # (T*K,)
    counts = torch.bincount(flat, minlength=E).tolist()
    xs = x[token_of_pair]  # (T*K, H) rows in expert order
    ys = torch.empty(T * K, x.shape[1], dtype=x.dtype, device=x.device)
    start = 0
    for e, n in enumerate(counts):
        if n == 0:
            continue
        h = xs[start : start + n] @ w_gate_up[e].t()  # (n, 2I)
        a = swiglu_reference(h[:, : two_i // 2], h[:, two_i // 2 :])  # (n, I)
        ys[start : start + n] = a @ w_down[e].t()  # (n, H)
        start += n
    w = weights.reshape(-1)[order].to(ys.dtype).unsqueeze(1)  # (T*K, 1)
    out = torch.zeros_like(x)
    out.index_add_(0, token_of_pair, ys * w)
    return out


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


class MoEMLPFunction(torch.autograd.Function):
    """Saves x, the weights, the sorted layout and the (rows, 2I) pre-activations; the activation is recomputed."""

    @staticmethod
    def forward(ctx, x, w_gate_up, w_down, weights, experts):
        keep = any(ctx.needs_input_grad[:4])
        out, saved = moe_mlp_forward(x, w_gate_up, w_down, weights, experts, keep_for_backward=keep)
        if keep:
            sorted_pairs, block_expert, offsets, gu, tiles = saved
            ctx.save_for_backward(x, w_gate_up, w_down, weights, sorted_pairs, block_expert, offsets, gu)
            ctx.tiles = tiles
        return out

    @staticmethod
    def backward(ctx, dout):
        x, w_gate_up, w_down, weights, sorted_pairs, block_expert, offsets, gu = ctx.saved_tensors
        saved = (sorted_pairs, block_expert, offsets, gu, ctx.tiles)
        grads = moe_mlp_backward(dout, x, w_gate_up, w_down, weights, saved, ctx.needs_input_grad[:4])
        return (*grads, None)


def _check_moe_inputs(x, w_gate_up, w_down, weights, experts) -> None:
    T, H = x.shape
    E, two_i, H2 = w_gate_up.shape
    if H2 != H or two_i % 2 or tuple(w_down.shape) != (E, H, two_i // 2):
        raise ValueError(f"expert weights must be w_gate_up (E, 2I, H) and w_down (E, H, I) for x (T, H={H}); got "
                         f"{tuple(w_gate_up.shape)} and {tuple(w_down.shape)}")
    if weights.shape != experts.shape or weights.dim() != 2 or experts.shape[0] != T:
        raise ValueError(f"weights and experts must both be (T={T}, K); got {tuple(weights.shape)} and "
                         f"{tuple(experts.shape)}")
    if not (x.dtype == w_gate_up.dtype == w_down.dtype):
        raise ValueError(f"x and the expert weights must share a dtype; got {x.dtype}, {w_gate_up.dtype}, "
                         f"{w_down.dtype}")
    check_experts(experts, E)


def moe_mlp_triton(x, w_gate_up, w_down, weights, experts) -> torch.Tensor:
    """The Triton path (CUDA tensors, or any under TRITON_INTERPRET=1), no choice made here: what
    kernels="triton" runs (contract of `moe_mlp_reference`)."""
    _check_moe_inputs(x, w_gate_up, w_down, weights, experts)
    x = x if x.stride(-1) == 1 else x.contiguous()
    return MoEMLPFunction.apply(x, w_gate_up.contiguous(), w_down.contiguous(), weights.contiguous(), experts)


def moe_mlp(x, w_gate_up, w_down, weights, experts) -> torch.Tensor:
    """Standalone entry: Triton on CUDA or under TRITON_INTERPRET=1, else the reference."""
    if use_triton(x):
        return moe_mlp_triton(x, w_gate_up, w_down, weights, experts)
    _check_moe_inputs(x, w_gate_up, w_down, weights, experts)
    return moe_mlp_reference(x, w_gate_up, w_down, weights, experts)
