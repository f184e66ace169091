"""Dropless expert MLP of an MoE layer: every (token, expert) pair is computed, none dropped.

One op, three implementations of its contract, side by side in jpmoe.kernels:
- `moe_mlp_reference` (here): the specification and the test oracle, a loop over experts;
- `moe_mlp_torch` (moe_mlp_torch.py, with its row layout and CPU buffer pool): what kernels="torch" runs, plain
  torch with a hand-written backward, tuned for CPU;
- `moe_mlp_triton` (here): what kernels="triton" runs, an autograd op over the Triton grouped GEMMs of
  moe_mlp_triton_fwd.py and moe_mlp_triton_bwd.py, on the block-aligned pair order of `moe_align` and the tile
  table of `tiling`.
`moe_mlp` is the standalone entry (Triton where it can run, else the reference); the model never calls it: it
calls the path its `kernels` setting named when it was built (`jpmoe.kernels.dispatch`).
"""

from __future__ import annotations

import torch

from jpmoe.kernels.backend import use_triton
from jpmoe.kernels.moe_align import check_experts
from jpmoe.kernels.moe_mlp_triton_bwd import moe_mlp_backward
from jpmoe.kernels.moe_mlp_triton_fwd import moe_mlp_forward
from jpmoe.kernels.swiglu import swiglu_reference


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
