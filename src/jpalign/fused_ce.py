"""Fused linear + cross-entropy: the LM-head projection and the token loss, chunked over tokens.

Loss per labelled token t (z-loss from PaLM, arXiv:2204.02311, section 5):

    l_t = logsumexp(h_t W^T) - (h_t W^T)[y_t] + z_loss * logsumexp(h_t W^T)^2

reduced by mean over labelled tokens, sum, or none. For "mean" and "sum" the gradients of hidden and weight are
computed chunk by chunk inside the forward (as Liger-Kernel and torchtune do), so forward + backward cost the
same three matmuls as the unfused path while only one (chunk, V) float32 buffer is alive; backward only scales
them by the incoming gradient. "none" (per-token weights unknown in the forward) uses the recomputing
`fused_token_logps`.
"""

from __future__ import annotations

import torch

from jpalign.chunking import (
    IGNORE_INDEX,
    chunk_logits,
    default_chunk_size,
    flatten_inputs,
    softmax_lse_,
    weight_fp32,
)
from jpalign.fused_logps import fused_token_logps

_REDUCTIONS = ("mean", "sum", "none")


def fused_linear_cross_entropy_reference(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    *,
    ignore_index: int = IGNORE_INDEX,
    z_loss: float = 0.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Unfused specification: full fp32 logits (..., V), then masked cross-entropy (+ z-loss) and the reduction."""
    logits = hidden.float() @ weight.float().t()  # (..., V)
    mask = labels != ignore_index
    lse = torch.logsumexp(logits, dim=-1)
    tgt = logits.gather(-1, labels.masked_fill(~mask, 0).unsqueeze(-1)).squeeze(-1)
    per_token = (lse - tgt + z_loss * lse.square()) * mask
    if reduction == "none":
        return per_token
    total = per_token.sum()
    return total / mask.sum().clamp(min=1) if reduction == "mean" else total


class FusedLinearCrossEntropyFunction(torch.autograd.Function):
    """Scalar loss (mean or sum); gradients of hidden (N, H) and weight (V, H) computed in the forward."""

    @staticmethod
    def forward(ctx, hidden, weight, labels, chunk_size, ignore_index, z_loss, mean, grad_enabled):
        # needs_input_grad is True even under torch.no_grad(), hence the explicit grad_enabled flag
        need_h, need_w = grad_enabled and ctx.needs_input_grad[0], grad_enabled and ctx.needs_input_grad[1]
        rows_all = (labels != ignore_index).nonzero().squeeze(1)  # (M,) labelled rows only
        scale = 1.0 / max(rows_all.numel(), 1) if mean else 1.0
        w32 = weight_fp32(weight)
        grad_h = torch.zeros(hidden.shape, dtype=torch.float32, device=hidden.device) if need_h else None
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if need_w else None
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        for start in range(0, rows_all.numel(), chunk_size):
            rows = rows_all[start : start + chunk_size]
            y = labels.index_select(0, rows)
            h, logits = chunk_logits(hidden, rows, w32)  # (C, H), (C, V)
            tgt = logits.gather(1, y.unsqueeze(1)).squeeze(1)  # (C,)
            lse = softmax_lse_(logits)  # logits now hold the softmax p (C, V)
            total += (lse - tgt + z_loss * lse.square()).sum()
            if not (need_h or need_w):
                continue
            # d l_t / d logits = p (1 + 2 z lse) - onehot(y), times the reduction's scale
            dlogits = logits.mul_(((1.0 + 2.0 * z_loss * lse) * scale).unsqueeze(1))
            dlogits[torch.arange(rows.numel(), device=rows.device), y] -= scale
            if need_h:
                grad_h.index_copy_(0, rows, dlogits @ w32)  # (C, H)
            if need_w:
                grad_w.addmm_(dlogits.t(), h)  # (V, H)
        ctx.save_for_backward(grad_h if need_h else None, grad_w if need_w else None)
        ctx.dtypes = (hidden.dtype, weight.dtype)
        return total * scale

    @staticmethod
    def backward(ctx, grad_out):
        grad_h, grad_w = ctx.saved_tensors
        if grad_h is not None:
            grad_h = (grad_h * grad_out).to(ctx.dtypes[0])
        if grad_w is not None:
            grad_w = (grad_w * grad_out).to(ctx.dtypes[1])
        return grad_h, grad_w, None, None, None, None, None, None


def fused_linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    *,
    ignore_index: int = IGNORE_INDEX,
    chunk_size: int | None = None,
    z_loss: float = 0.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Cross-entropy of `hidden @ weight.T` against labels without materialising the logits.

    hidden (N, H) or (..., H) in fp32/bf16/fp16 (fp32 accumulation), weight (V, H) (the lm_head weight),
    labels (N,) or (...) aligned with hidden (labels[i] is the token predicted from hidden[i]: shift before
    calling). Tokens with label == ignore_index do not count and are never projected. chunk_size: tokens per
    chunk (default about 2**25 fp32 logits per chunk, 512 at V = 65,536). z_loss: coefficient of
    logsumexp^2 (PaLM). reduction: "mean" over labelled tokens (0.0 when there are none, where torch gives NaN),
    "sum", or "none" (per-token losses shaped like labels, 0 at ignored tokens). Gradients of hidden and weight
    come back in their own dtypes.
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if reduction == "none":
        logp, lse = fused_token_logps(hidden, weight, labels, ignore_index=ignore_index, chunk_size=chunk_size)
        return -logp + z_loss * lse.square()
    flat_h, flat_y = flatten_inputs(hidden, weight, labels, ignore_index)
    chunk = chunk_size or default_chunk_size(weight.shape[0])
    return FusedLinearCrossEntropyFunction.apply(
        flat_h, weight, flat_y, chunk, ignore_index, float(z_loss), reduction == "mean", torch.is_grad_enabled()
    )
