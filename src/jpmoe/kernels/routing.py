"""Top-k routing of tokens to experts (Mixtral-compatible)."""

from __future__ import annotations

import torch


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
