"""Per-token log-probabilities and log-sum-exps of labels under `hidden @ weight.T`, chunked over tokens.

This is the building block of every fused loss whose per-token weights are only known after all tokens are seen
(DPO, ORPO, SimPO: a sequence-level loss of summed or averaged log-probs). The forward keeps only (N,) floats per
output; the backward recomputes one chunk of logits at a time (recomputation costs one extra matmul, and the
(N, V) logits never exist).
"""

from __future__ import annotations

import torch

from jpalign.chunking import (
    IGNORE_INDEX,
    chunk_logits,
    default_chunk_size,
    flatten_inputs,
    logsumexp_,
    weight_fp32,
)


def token_logps_reference(
    hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, *, ignore_index: int = IGNORE_INDEX
) -> tuple[torch.Tensor, torch.Tensor]:
    """Unfused specification: (log p(label), log-sum-exp) per token, both 0 where the label is ignored.

    hidden (..., H), weight (V, H), labels (...) aligned with hidden (labels[i] is predicted from hidden[i]).
    Returns two float32 tensors shaped like labels. Builds the full (..., V) float32 logits.
    """
    logits = hidden.float() @ weight.float().t()  # (..., V)
    mask = labels != ignore_index
    lse = torch.logsumexp(logits, dim=-1)
    tgt = logits.gather(-1, labels.masked_fill(~mask, 0).unsqueeze(-1)).squeeze(-1)
    return (tgt - lse) * mask, lse * mask


class ChunkedTokenLogpsFunction(torch.autograd.Function):
    """(logp, lse) per token; forward and backward walk over the labelled tokens in chunks of logits."""

    @staticmethod
    def forward(ctx, hidden, weight, labels, chunk_size, ignore_index):  # hidden (N, H), labels (N,)
        rows_all = (labels != ignore_index).nonzero().squeeze(1)  # (M,) labelled rows only
        w32 = weight_fp32(weight)
        logp = hidden.new_zeros(labels.shape, dtype=torch.float32)
        lse = hidden.new_zeros(labels.shape, dtype=torch.float32)
        for start in range(0, rows_all.numel(), chunk_size):
            rows = rows_all[start : start + chunk_size]
            _, logits = chunk_logits(hidden, rows, w32)  # (C, V)
            tgt = logits.gather(1, labels.index_select(0, rows).unsqueeze(1)).squeeze(1)  # (C,)
            chunk_lse = logsumexp_(logits)  # no second (C, V) buffer
            logp.index_copy_(0, rows, tgt - chunk_lse)
            lse.index_copy_(0, rows, chunk_lse)
        ctx.save_for_backward(hidden, weight, labels, rows_all, lse)
        ctx.chunk_size = chunk_size
        return logp, lse

    @staticmethod
    def backward(ctx, grad_logp, grad_lse):
        hidden, weight, labels, rows_all, lse = ctx.saved_tensors
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        w32 = weight_fp32(weight)
        grad_h = torch.zeros(hidden.shape, dtype=torch.float32, device=hidden.device) if need_h else None
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if need_w else None
        g_logp = grad_logp if grad_logp is not None else torch.zeros_like(lse)
        g_lse = grad_lse if grad_lse is not None else torch.zeros_like(lse)
        for start in range(0, rows_all.numel(), ctx.chunk_size):
            rows = rows_all[start : start + ctx.chunk_size]
            h, logits = chunk_logits(hidden, rows, w32)  # (C, H), (C, V)
            # softmax from the saved log-sum-exp: p = exp(logits - lse)
            p = logits.sub_(lse.index_select(0, rows).unsqueeze(1)).exp_()  # (C, V)
            a, b = g_logp.index_select(0, rows).float(), g_lse.index_select(0, rows).float()
            # d logp / d logits = onehot - p ; d lse / d logits = p  =>  dlogits = (b - a) p + a onehot
            dlogits = p.mul_((b - a).unsqueeze(1))
            dlogits[torch.arange(rows.numel(), device=rows.device), labels.index_select(0, rows)] += a
            if need_h:
                grad_h.index_copy_(0, rows, dlogits @ w32)  # (C, H)
            if need_w:
                grad_w.addmm_(dlogits.t(), h)  # (V, H)
        grad_h = grad_h.to(hidden.dtype) if need_h else None
        grad_w = grad_w.to(weight.dtype) if need_w else None
        return grad_h, grad_w, None, None, None


def fused_token_logps(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    *,
    ignore_index: int = IGNORE_INDEX,
    chunk_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chunked `token_logps_reference`: (log p(label), log-sum-exp) per token without the (..., V) logits.

    hidden (..., H) in fp32/bf16/fp16, weight (V, H), labels (...) aligned with hidden, -100 = ignored (0 out).
    Logits are accumulated in fp32; only labelled tokens are projected. Returns two fp32 tensors shaped like labels.
    """
    flat_h, flat_y = flatten_inputs(hidden, weight, labels, ignore_index)
    chunk = chunk_size or default_chunk_size(weight.shape[0])
    logp, lse = ChunkedTokenLogpsFunction.apply(flat_h, weight, flat_y, chunk, ignore_index)
    return logp.view(labels.shape), lse.view(labels.shape)
