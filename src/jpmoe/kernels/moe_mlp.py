"""Dropless expert MLP of an MoE layer: every (token, expert) pair is computed, none dropped."""

from __future__ import annotations

import torch

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
