"""Supervised fine-tuning loss on logits: masked token cross-entropy with an optional z-loss."""

from __future__ import annotations

import torch

from jpalign.chunking import IGNORE_INDEX


def shift_labels(labels: torch.Tensor, position_ids: torch.Tensor | None = None) -> torch.Tensor:
    """Align labels with logits: out[..., t] = labels[..., t + 1], -100 at the last position.

    With packed rows pass `position_ids`: a position whose next token starts a new example (position id 0) gets
    -100, so no example predicts its neighbour's first token. labels and position_ids: (B, T) -> (B, T).
    """
    out = torch.full_like(labels, IGNORE_INDEX)
    out[..., :-1] = labels[..., 1:]
    if position_ids is not None:
        out[..., :-1] = out[..., :-1].masked_fill(position_ids[..., 1:] == 0, IGNORE_INDEX)
    return out


def sft_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    ignore_index: int = IGNORE_INDEX,
    z_loss: float = 0.0,
    reduction: str = "mean",
    num_items: int | None = None,
) -> torch.Tensor:
    """Token cross-entropy over the supervised positions (instruction tuning, e.g. arXiv:2109.01652), plus z-loss.

        l_t = -log softmax(z_t)[y_t] + z_loss * (log sum_v exp z_tv)^2      (z-loss: PaLM, arXiv:2204.02311)
        mean:  sum_t l_t / n   with n = number of labels != ignore_index, or `num_items` when given
               (the token count of the whole accumulated batch, as TRL's num_items_in_batch)

    logits (..., V) and labels (...) already aligned (use `shift_labels`); computed in float32. reduction: "mean",
    "sum" or "none" (per token, 0 at ignored positions). A batch with no supervised token gives 0.0.
    """
    if logits.shape[:-1] != labels.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} do not align")
    mask = labels != ignore_index
    logits = logits.float()
    lse = torch.logsumexp(logits, dim=-1)
    tgt = logits.gather(-1, labels.masked_fill(~mask, 0).unsqueeze(-1)).squeeze(-1)
    per_token = (lse - tgt + z_loss * lse.square()) * mask
    if reduction == "none":
        return per_token
    if reduction == "sum":
        return per_token.sum()
    if reduction != "mean":
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if num_items is not None and num_items <= 0:
        raise ValueError(f"num_items must be > 0 (the supervised tokens of the whole batch), got {num_items}")
    denom = num_items if num_items is not None else mask.sum().clamp(min=1)
    return per_token.sum() / denom
