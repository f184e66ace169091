"""Per-sequence log-probabilities of labels under a causal LM's logits."""

from __future__ import annotations

import torch

from jpalign.chunking import IGNORE_INDEX


def sequence_logps(logits: torch.Tensor, labels: torch.Tensor, *, average: bool = False) -> torch.Tensor:
    """Sum (or mean) of log p(label_t | prefix) over the labelled positions of each sequence.

        logps[b] = sum_t m_bt log softmax(logits[b, t])[labels[b, t]]      (m_bt = labels[b, t] != -100)
        average: divided by sum_t m_bt (the per-token mean used by IPO, SimPO and ORPO)

    logits: (B, T, V), labels: (B, T) already aligned with logits (labels[:, t] is predicted by logits[:, t]);
    positions whose label is -100 are ignored. Returns (B,) in float32.
    """
    if logits.shape[:-1] != labels.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} do not align")
    mask = labels != IGNORE_INDEX
    safe = labels.masked_fill(~mask, 0)
    logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, safe.unsqueeze(-1)).squeeze(-1)  # (B, T)
    total = (logp * mask).sum(-1)
    if average:
        return total / mask.sum(-1).clamp(min=1)
    return total
