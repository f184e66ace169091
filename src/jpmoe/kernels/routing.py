"""Top-k routing of tokens to experts (Mixtral-compatible)."""

from __future__ import annotations

import torch

from jpmoe.kernels.backend import new_empty, tl, triton, use_triton


def route_reference(logits: torch.Tensor, k: int, *, renormalize: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax over experts in fp32, keep the top k, renormalise them to sum to 1 (Mixtral) or not.

    logits: (T, E). Returns weights (T, K) float32 and experts (T, K) int64, experts in descending weight order
    (ties broken as torch.topk does).
    """
    probs = torch.softmax(logits.float(), dim=-1)  # (T, E)
    weights, experts = torch.topk(probs, k, dim=-1)  # (T, K)
    if renormalize:
        weights = weights / weights.sum(-1, keepdim=True)
    return weights, experts


# ---------------------------------------------------------------------------------------------------------------
# Triton: a block of tokens per program, all E logits of a token in registers. Top-k is K rounds of "take the
# largest, lowest index on ties, then mask it out". Backward needs only the k weights (renormalised) or the
# recomputed softmax (not renormalised).
# ---------------------------------------------------------------------------------------------------------------
@triton.jit
def _route_fwd_kernel(
    logits_ptr,  # (T, E) any float dtype, row stride stride_l
    w_ptr, ex_ptr,  # out: weights (T, K) fp32; experts (T, K) int64
    n_tokens, num_experts, stride_l,
    K: tl.constexpr, RENORM: tl.constexpr,
    BLOCK_T: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_K: tl.constexpr,
):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_T + tl.arange(0, BLOCK_T)  # (BLOCK_T,)
    cols = tl.arange(0, BLOCK_E)
    rmask = rows < n_tokens
    emask = cols[None, :] < num_experts
    x = tl.load(logits_ptr + rows[:, None] * stride_l + cols[None, :], mask=rmask[:, None] & emask,
                other=float("-inf")).to(tl.float32)
    x = tl.where(rmask[:, None], x, 0.0)  # rows past the end: finite, never stored
    p = tl.exp(x - tl.max(x, axis=1)[:, None])
    p = p / tl.sum(p, axis=1)[:, None]  # (BLOCK_T, BLOCK_E) softmax in fp32
    p = tl.where(emask, p, -1.0)  # padding columns never win (also for rows that are all padding)
    kcols = tl.arange(0, BLOCK_K)[None, :]
    w = tl.zeros((BLOCK_T, BLOCK_K), dtype=tl.float32)
    ex = tl.zeros((BLOCK_T, BLOCK_K), dtype=tl.int64)
    for k in tl.static_range(K):
        best = tl.max(p, axis=1)  # (BLOCK_T,)
        idx = tl.min(tl.where(p == best[:, None], cols[None, :], BLOCK_E), axis=1)  # lowest index among ties
        w = tl.where(kcols == k, best[:, None], w)
        ex = tl.where(kcols == k, idx[:, None].to(tl.int64), ex)
        p = tl.where(cols[None, :] == idx[:, None], -1.0, p)  # taken
    if RENORM:
        w = w / tl.sum(w, axis=1)[:, None]
    omask = rmask[:, None] & (kcols < K)
    tl.store(w_ptr + rows[:, None] * K + kcols, w, mask=omask)
    tl.store(ex_ptr + rows[:, None] * K + kcols, ex, mask=omask)


@triton.jit
def _route_bwd_kernel(
    dw_ptr, w_ptr, ex_ptr, logits_ptr,  # dw, w: (T, K) (dw row stride stride_dw); experts (T, K); logits (T, E)
    dl_ptr,  # out: d logits (T, E), contiguous
    n_tokens, num_experts, stride_l, stride_dw,
    K: tl.constexpr, RENORM: tl.constexpr,
    BLOCK_T: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_K: tl.constexpr,
):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_T + tl.arange(0, BLOCK_T)
    cols = tl.arange(0, BLOCK_E)[None, :]
    kcols = tl.arange(0, BLOCK_K)[None, :]
    rmask = rows[:, None] < n_tokens
    kmask = rmask & (kcols < K)
    emask = rmask & (cols < num_experts)
    dw = tl.load(dw_ptr + rows[:, None] * stride_dw + kcols, mask=kmask, other=0.0).to(tl.float32)
    w = tl.load(w_ptr + rows[:, None] * K + kcols, mask=kmask, other=0.0)
    ex = tl.load(ex_ptr + rows[:, None] * K + kcols, mask=kmask, other=-1)
    dot = tl.sum(w * dw, axis=1)[:, None]  # sum_k w_k dw_k
    g = tl.zeros((BLOCK_T, BLOCK_E), dtype=tl.float32)  # dw scattered to the chosen experts
    q = tl.zeros((BLOCK_T, BLOCK_E), dtype=tl.float32)  # the k weights scattered likewise
    for k in tl.static_range(K):
        sel = cols == tl.sum(tl.where(kcols == k, ex, 0), axis=1)[:, None]
        g = tl.where(sel, tl.sum(tl.where(kcols == k, dw, 0.0), axis=1)[:, None], g)
        q = tl.where(sel, tl.sum(tl.where(kcols == k, w, 0.0), axis=1)[:, None], q)
    if not RENORM:  # w_k = p_{e_k}: the softmax Jacobian needs every p_j, recomputed here
        x = tl.load(logits_ptr + rows[:, None] * stride_l + cols, mask=emask, other=float("-inf")).to(tl.float32)
        x = tl.where(rmask, x, 0.0)  # rows past the end: finite, never stored
        q = tl.exp(x - tl.max(x, axis=1)[:, None])
        q = q / tl.sum(q, axis=1)[:, None]
    # renormalised weights are a softmax over the k chosen logits; either way d l_j = q_j * (g_j - sum_k w_k dw_k)
    dl = q * (g - dot)
    tl.store(dl_ptr + rows[:, None] * num_experts + cols, dl.to(dl_ptr.dtype.element_ty), mask=emask)


def _route_blocks(num_experts: int, k: int) -> tuple[int, int, int]:
    block_e = max(16, triton.next_power_of_2(num_experts))
    block_t = max(1, min(64, 4096 // block_e))  # tokens per program: a (BLOCK_T, BLOCK_E) tile of <= 4096 floats
    return block_t, block_e, max(2, triton.next_power_of_2(k))


def route_forward(logits: torch.Tensor, k: int, renormalize: bool):
    logits = logits if logits.stride(-1) == 1 else logits.contiguous()
    T, E = logits.shape
    weights = new_empty((T, k), torch.float32, logits.device)
    experts = new_empty((T, k), torch.int64, logits.device)
    block_t, block_e, block_k = _route_blocks(E, k)
    if T:
        _route_fwd_kernel[(triton.cdiv(T, block_t),)](
            logits, weights, experts, T, E, logits.stride(0), K=k, RENORM=renormalize,
            BLOCK_T=block_t, BLOCK_E=block_e, BLOCK_K=block_k)
    return weights, experts


def route_backward(dweights, weights, experts, logits, renormalize: bool):
    dweights = dweights if dweights.stride(-1) == 1 else dweights.contiguous()
    T, E = logits.shape
    k = weights.shape[1]
    dlogits = new_empty((T, E), logits.dtype, logits.device)
    block_t, block_e, block_k = _route_blocks(E, k)
    if T:
        _route_bwd_kernel[(triton.cdiv(T, block_t),)](
            dweights, weights, experts, logits, dlogits, T, E, logits.stride(0), dweights.stride(0), K=k,
            RENORM=renormalize, BLOCK_T=block_t, BLOCK_E=block_e, BLOCK_K=block_k)
    return dlogits


class RouteFunction(torch.autograd.Function):
    """Differentiable in the weights only (expert ids are discrete); saves logits, weights, experts."""

    @staticmethod
    def forward(ctx, logits, k, renormalize):
        weights, experts = route_forward(logits, k, renormalize)
        ctx.renormalize = renormalize
        ctx.save_for_backward(logits, weights, experts)
        ctx.mark_non_differentiable(experts)
        return weights, experts

    @staticmethod
    def backward(ctx, dweights, _dexperts):
        logits, weights, experts = ctx.saved_tensors
        return route_backward(dweights, weights, experts, logits, ctx.renormalize), None, None


def _check_inputs(logits: torch.Tensor, k: int) -> None:
    if logits.dim() != 2 or not 0 < k <= logits.shape[1]:
        raise ValueError(f"logits must be (T, E) with 0 < k <= E, got {tuple(logits.shape)} and k={k}")


def route_triton(logits: torch.Tensor, k: int, *, renormalize: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The Triton path (CUDA tensors, or any under TRITON_INTERPRET=1), no choice made here: what
    kernels="triton" runs."""
    _check_inputs(logits, k)
    return RouteFunction.apply(logits, k, renormalize)


def route(logits: torch.Tensor, k: int, *, renormalize: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax, top-k, optional renormalisation; Triton on CUDA or under TRITON_INTERPRET=1, else the reference."""
    if use_triton(logits):
        return route_triton(logits, k, renormalize=renormalize)
    _check_inputs(logits, k)
    return route_reference(logits, k, renormalize=renormalize)
