"""Per-sequence summed label log-probs with their gradients computed in the forward (no recomputation).

A sequence-level loss (DPO, SimPO, an NLL over whole sequences) gives every token of sequence s the same
incoming gradient c_s. So the gradients split per sequence:

    d/dW    = sum_s c_s A_s,   A_s = sum_{t in s} (onehot(y_t) - p_t) h_t^T      (V, H) per sequence
    d/dh_t  = c_s u_t,         u_t = W^T (onehot(y_t) - p_t)                     (H,) per token

A_s and u are accumulated chunk by chunk in the forward (three matmuls, as the unfused path) and the backward only
scales them. The price is S x V x H float32 of accumulators, which pays when S x H is small against the tokens
(few long sequences at moderate hidden size); `fused_token_logps` (recompute, four matmuls) is the low-memory path.
"""

from __future__ import annotations

import torch

from jpalign.chunking import IGNORE_INDEX, chunk_logits, default_chunk_size, flatten_inputs, softmax_lse_, weight_fp32


def accumulate_pays(n_segments: int, n_tokens: int, hidden_size: int) -> bool:
    """The auto rule: accumulators (S x V x H) at most half the size of the full logits (N x V)."""
    return 2 * n_segments * hidden_size <= n_tokens


class SegmentLogpsFunction(torch.autograd.Function):
    """(S,) summed label log-probs of `rows` (labelled tokens, grouped by segment); grads built in the forward."""

    @staticmethod
    def forward(ctx, hidden, weight, labels, bounds, chunk_size, grad_enabled):
        # hidden (N, H), labels (N,), bounds: python list of (start, end) into the labelled-row order per segment
        need_h, need_w = grad_enabled and ctx.needs_input_grad[0], grad_enabled and ctx.needs_input_grad[1]
        rows_all = (labels != IGNORE_INDEX).nonzero().squeeze(1)  # (M,) row-major: segments are contiguous
        w32 = weight_fp32(weight)
        sums = torch.zeros(len(bounds), dtype=torch.float32, device=hidden.device)
        acc_w = torch.zeros((len(bounds), *weight.shape), dtype=torch.float32, device=weight.device) if need_w else None
        u = torch.zeros(hidden.shape, dtype=torch.float32, device=hidden.device) if need_h else None
        for s, (lo, hi) in enumerate(bounds):
            for start in range(lo, hi, chunk_size):  # chunks never straddle two segments
                rows = rows_all[start : min(start + chunk_size, hi)]
                y = labels.index_select(0, rows)
                h, logits = chunk_logits(hidden, rows, w32)  # (C, H), (C, V)
                tgt = logits.gather(1, y.unsqueeze(1)).squeeze(1)
                lse = softmax_lse_(logits)  # logits now hold p (C, V)
                sums[s] += (tgt - lse).sum()
                if not (need_h or need_w):
                    continue
                g = logits.neg_()  # d logp / d logits = onehot(y) - p
                g[torch.arange(rows.numel(), device=rows.device), y] += 1.0
                if need_h:
                    u.index_copy_(0, rows, g @ w32)  # (C, H)
                if need_w:
                    acc_w[s].addmm_(g.t(), h)  # (V, H)
        ctx.save_for_backward(acc_w, u, rows_all)
        ctx.bounds, ctx.dtypes = bounds, (hidden.dtype, weight.dtype)
        return sums

    @staticmethod
    def backward(ctx, grad_sums):
        acc_w, u, rows_all = ctx.saved_tensors
        grad_h = grad_w = None
        if u is not None:
            scale = torch.zeros(u.shape[0], dtype=torch.float32, device=u.device)
            for s, (lo, hi) in enumerate(ctx.bounds):
                scale[rows_all[lo:hi]] = grad_sums[s].float()
            grad_h = (u * scale.unsqueeze(1)).to(ctx.dtypes[0])
        if acc_w is not None:
            grad_w = torch.einsum("s,svh->vh", grad_sums.float(), acc_w).to(ctx.dtypes[1])
        return grad_h, grad_w, None, None, None, None


def fused_row_logps_accumulated(hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, *,
                                chunk_size: int | None = None) -> torch.Tensor:
    """Summed label log-probs per row of hidden (S, T, H) / labels (S, T) -> (S,), gradients built in the forward.

    Same values and gradients as `fused_sequence_logps(..., average=False)`; faster (no recomputation), larger
    (S x V x H fp32 accumulators). Use when `accumulate_pays(S, S * T, H)`.
    """
    flat_h, flat_y = flatten_inputs(hidden, weight, labels, IGNORE_INDEX)
    counts = (labels != IGNORE_INDEX).reshape(labels.shape[0], -1).sum(-1).tolist()
    ends = torch.tensor(counts).cumsum(0).tolist()
    bounds = [(end - n, end) for n, end in zip(counts, ends)]
    chunk = chunk_size or default_chunk_size(weight.shape[0])
    return SegmentLogpsFunction.apply(flat_h, weight, flat_y, bounds, chunk, torch.is_grad_enabled())
