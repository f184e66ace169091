"""Fused, token-chunked SFT, DPO, SimPO and ORPO losses from the last hidden states and the lm_head weight.

Each function takes hidden (S, T, H) (or any (..., H)), the lm_head weight (V, H) and labels aligned with hidden
(`shift_labels`), and never builds the (S, T, V) logits: per-token log-probs come from `fused_token_logps`, which
projects only labelled tokens, chunk by chunk, and recomputes each chunk in the backward. Chunking is over tokens,
so one long pair gains as much as many short ones (Liger's preference losses chunk over pairs instead).
Preference rows follow TRL's layout: rows [0, B) are the chosen responses, rows [B, 2B) the rejected ones.
The values equal the unfused functions in `jpalign.preference` applied to `hidden @ weight.T`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from jpalign.chunking import IGNORE_INDEX
from jpalign.fused_ce import fused_linear_cross_entropy
from jpalign.fused_logps import fused_token_logps
from jpalign.fused_segments import accumulate_pays, fused_row_logps_accumulated
from jpalign.preference import dpo_loss, orpo_odds_ratio_loss, simpo_loss, uses_average_logps


class PreferenceOutput(NamedTuple):
    loss: torch.Tensor  # scalar: mean(losses) + nll_weight * nll
    losses: torch.Tensor  # (B,) per-pair preference losses
    chosen_rewards: torch.Tensor  # (B,) detached
    rejected_rewards: torch.Tensor  # (B,) detached
    chosen_logps: torch.Tensor  # (B,) policy log-probs on the loss's basis (summed or averaged), detached
    rejected_logps: torch.Tensor  # (B,)
    nll: torch.Tensor  # scalar token-mean NLL of the chosen rows (0 when not asked for)


def fused_sequence_logps(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    *,
    average: bool = False,
    segment_ids: torch.Tensor | None = None,
    num_segments: int | None = None,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """Chunked `sequence_logps(hidden @ weight.T, labels)`: summed (or averaged) label log-probs per sequence.

    Rows: hidden (S, T, H), labels (S, T) -> (S,). Packed: pass `segment_ids` shaped like labels (the example
    index of each token, -1 for none) -> (num_segments,). Sequences without labelled tokens give 0.
    """
    logp, _ = fused_token_logps(hidden, weight, labels, chunk_size=chunk_size)
    mask = labels != IGNORE_INDEX
    if segment_ids is None:
        total, count = logp.sum(-1), mask.sum(-1)
    else:
        n = num_segments if num_segments is not None else int(segment_ids.max()) + 1
        seg = segment_ids.reshape(-1).long()
        keep = (seg >= 0) & mask.reshape(-1)
        total = logp.new_zeros(n).index_add(0, seg[keep], logp.reshape(-1)[keep])
        count = torch.bincount(seg[keep], minlength=n)
    return total / count.clamp(min=1) if average else total


def fused_sft_loss(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    *,
    z_loss: float = 0.0,
    reduction: str = "mean",
    num_items: int | None = None,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """Fused `sft_loss`: token cross-entropy (+ z-loss) of hidden @ weight.T; `num_items` divides the sum instead."""
    if num_items is not None:
        if reduction != "mean":
            raise ValueError("num_items applies to reduction='mean' only")
        if num_items <= 0:
            raise ValueError(f"num_items must be > 0 (the supervised tokens of the whole batch), got {num_items}")
        loss = fused_linear_cross_entropy(hidden, weight, labels, z_loss=z_loss, reduction="sum", chunk_size=chunk_size)
        return loss / num_items
    return fused_linear_cross_entropy(hidden, weight, labels, z_loss=z_loss, reduction=reduction, chunk_size=chunk_size)


def _check_pairs(labels: torch.Tensor) -> int:
    if labels.dim() < 2 or labels.shape[0] % 2:
        raise ValueError(f"labels must be (2B, T) with chosen rows first, got {tuple(labels.shape)}")
    return labels.shape[0] // 2


def _pair_logps(hidden, weight, labels, average, chunk_size, strategy="recompute"):
    """(chosen, rejected) sequence log-probs and the chosen-rows token-mean NLL from one chunked pass.

    strategy "recompute": per-token log-probs, the backward recomputes each chunk (least memory, 4 matmuls);
    "accumulate": per-row gradients built in the forward (3 matmuls, 2B x V x H fp32 more); "auto" picks
    accumulate when `accumulate_pays` (accumulators at most half the size of the full logits).
    """
    b = _check_pairs(labels)
    if strategy not in ("recompute", "accumulate", "auto"):
        raise ValueError(f"strategy must be 'recompute', 'accumulate' or 'auto', got {strategy!r}")
    mask = labels != IGNORE_INDEX
    count = mask.flatten(1).sum(-1)
    n_rows, n_tokens = labels.shape[0], int(count.sum())
    if strategy == "accumulate" or (strategy == "auto" and accumulate_pays(n_rows, n_tokens, weight.shape[1])):
        total = fused_row_logps_accumulated(hidden, weight, labels, chunk_size=chunk_size)
    else:
        logp, _ = fused_token_logps(hidden, weight, labels, chunk_size=chunk_size)  # (2B, T)
        total = logp.flatten(1).sum(-1)
    seq = total / count.clamp(min=1) if average else total
    nll = -total[:b].sum() / count[:b].sum().clamp(min=1)
    return seq[:b], seq[b:], nll


def _reference_logps(ref_chosen, ref_rejected, ref_hidden, ref_weight, labels, average, chunk_size):
    if ref_chosen is not None and ref_rejected is not None:
        return ref_chosen, ref_rejected
    if ref_hidden is None or ref_weight is None:
        raise ValueError("give ref_chosen_logps and ref_rejected_logps, or ref_hidden and ref_weight")
    with torch.no_grad():
        rc, rr, _ = _pair_logps(ref_hidden, ref_weight, labels, average, chunk_size)
    return rc, rr


def fused_dpo_loss(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    *,
    ref_chosen_logps: torch.Tensor | None = None,
    ref_rejected_logps: torch.Tensor | None = None,
    ref_hidden: torch.Tensor | None = None,
    ref_weight: torch.Tensor | None = None,
    beta: float = 0.1,
    loss_type: str = "sigmoid",
    label_smoothing: float = 0.0,
    nll_weight: float = 0.0,
    chunk_size: int | None = None,
    strategy: str = "auto",
) -> PreferenceOutput:
    """Fused `dpo_loss` (arXiv:2305.18290 and variants) on hidden (2B, T, H), chosen rows first.

    The reference is either precomputed log-probs (B,) on the loss type's basis (summed for sigmoid/hinge/robust,
    averaged for ipo: see `uses_average_logps` and `jpalign.reference`), or reference hidden states with its
    lm_head weight, evaluated under no_grad. nll_weight > 0 adds RPO's chosen-response token-mean NLL
    (arXiv:2404.19733; TRL loss_type=["sigmoid", "sft"]) at no extra matmul. strategy: "recompute" (least
    memory), "accumulate" (no recomputation, 2B x V x H fp32 more) or "auto" (accumulate when that is at most
    half the full logits' size).
    """
    average = uses_average_logps(loss_type)
    pc, pr, nll = _pair_logps(hidden, weight, labels, average, chunk_size, strategy)
    rc, rr = _reference_logps(ref_chosen_logps, ref_rejected_logps, ref_hidden, ref_weight, labels, average, chunk_size)
    losses, cr, rj = dpo_loss(pc, pr, rc, rr, beta=beta, loss_type=loss_type, label_smoothing=label_smoothing)
    loss = losses.mean() + nll_weight * nll if nll_weight else losses.mean()
    return PreferenceOutput(loss, losses, cr, rj, pc.detach(), pr.detach(), nll.detach())


def fused_simpo_loss(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    *,
    beta: float = 2.0,
    gamma: float = 0.5,
    label_smoothing: float = 0.0,
    nll_weight: float = 0.0,
    chunk_size: int | None = None,
    strategy: str = "auto",
) -> PreferenceOutput:
    """Fused `simpo_loss` (arXiv:2405.14734) on hidden (2B, T, H); nll_weight > 0 gives CPO's alpha * NLL term.

    strategy as in `fused_dpo_loss`.
    """
    ac, ar, nll = _pair_logps(hidden, weight, labels, True, chunk_size, strategy)
    losses, cr, rj = simpo_loss(ac, ar, beta=beta, gamma=gamma, label_smoothing=label_smoothing)
    loss = losses.mean() + nll_weight * nll if nll_weight else losses.mean()
    return PreferenceOutput(loss, losses, cr, rj, ac.detach(), ar.detach(), nll.detach())


def fused_orpo_loss(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    *,
    beta: float = 0.1,
    nll_labels: torch.Tensor | None = None,
    chunk_size: int | None = None,
) -> PreferenceOutput:
    """Fused `orpo_loss` (arXiv:2403.07691) on hidden (2B, T, H): chosen NLL + mean(-beta log sigmoid(log odds)).

    The NLL is the token mean over the chosen responses, or over `nll_labels` (B, T) when given (the chosen rows'
    labels with the prompt kept, TRL's prompt + response NLL); they must agree with `labels` on the response.
    One chunked pass serves both the NLL and the odds ratio.
    """
    b = _check_pairs(labels)
    mask = labels != IGNORE_INDEX
    if nll_labels is None:
        nll_labels = labels[:b]
    elif nll_labels.shape != labels[:b].shape or bool((nll_labels != labels[:b])[mask[:b]].any()):
        raise ValueError("nll_labels must be (B, T) and equal labels on every chosen response token")
    logp, _ = fused_token_logps(hidden, weight, torch.cat([nll_labels, labels[b:]]), chunk_size=chunk_size)
    response = (logp * mask).flatten(1).sum(-1)  # the odds ratio sees response tokens only
    avg = response / mask.flatten(1).sum(-1).clamp(min=1)
    nll = -logp[:b].sum() / (nll_labels != IGNORE_INDEX).sum().clamp(min=1)
    or_losses, log_odds = orpo_odds_ratio_loss(avg[:b], avg[b:], beta=beta)
    rewards = beta * avg.detach()
    return PreferenceOutput(
        nll + or_losses.mean(), or_losses, rewards[:b], rewards[b:], avg[:b].detach(), avg[b:].detach(), nll.detach()
    )
