"""Preference losses on sequence log-probabilities: DPO (sigmoid, IPO, hinge, robust), SimPO, ORPO.

Conventions (those of TRL, see docs/jpalign.md): DPO sigmoid/hinge/robust take log-probs *summed* over the
response tokens; IPO, SimPO and ORPO take log-probs *averaged* per response token (`sequence_logps(...,
average=True)`). `uses_average_logps(loss_type)` says which. Every function returns per-pair values; take the
mean for the batch loss.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from jpalign.logps import sequence_logps
from jpalign.sft import sft_loss

DPO_LOSS_TYPES = ("sigmoid", "ipo", "hinge", "robust")
_LN_HALF = -math.log(2.0)


def uses_average_logps(loss_type: str) -> bool:
    """True for the loss types defined on per-token averaged log-probs (ipo, simpo, orpo), False for summed."""
    if loss_type not in (*DPO_LOSS_TYPES, "simpo", "orpo"):
        raise ValueError(f"unknown loss_type {loss_type!r}")
    return loss_type in ("ipo", "simpo", "orpo")


def dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    *,
    beta: float = 0.1,
    loss_type: str = "sigmoid",
    label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Direct Preference Optimization per-pair losses and implicit rewards. All inputs (B,); returns three (B,).

    c = pi_chosen - ref_chosen, r = pi_rejected - ref_rejected, d = c - r, ls = log sigmoid, eps = label_smoothing:
      sigmoid  DPO, arXiv:2305.18290; with eps > 0 conservative DPO (cDPO):  -(1-eps) ls(beta d) - eps ls(-beta d)
               (TRL <= 0.28 and OpenRLHF; TRL >= 0.29 ignores eps for sigmoid, equal at eps = 0)
      ipo      IPO, arXiv:2310.12036:  (d - 1/(2 beta))^2, on *averaged* log-probs as TRL
      hinge    SLiC, arXiv:2305.10425:  relu(1 - beta d)
      robust   rDPO, arXiv:2403.00409:  (-(1-eps) ls(beta d) + eps ls(-beta d)) / (1 - 2 eps)
    Rewards: beta * c and beta * r, detached. Computed in float32 (float64 kept).
    """
    if loss_type not in DPO_LOSS_TYPES:
        raise ValueError(f"loss_type must be one of {DPO_LOSS_TYPES}, got {loss_type!r}")
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must lie in [0, 0.5), got {label_smoothing}")
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    _check_shapes(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
    chosen_ratio = _fp32(policy_chosen_logps) - _fp32(ref_chosen_logps)
    rejected_ratio = _fp32(policy_rejected_logps) - _fp32(ref_rejected_logps)
    d = chosen_ratio - rejected_ratio
    eps = label_smoothing
    if loss_type == "sigmoid":
        losses = -(1 - eps) * F.logsigmoid(beta * d) - eps * F.logsigmoid(-beta * d)
    elif loss_type == "ipo":
        losses = (d - 1 / (2 * beta)).square()
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * d)
    else:
        losses = (-(1 - eps) * F.logsigmoid(beta * d) + eps * F.logsigmoid(-beta * d)) / (1 - 2 * eps)
    return losses, beta * chosen_ratio.detach(), beta * rejected_ratio.detach()


def simpo_loss(
    chosen_avg_logps: torch.Tensor,
    rejected_avg_logps: torch.Tensor,
    *,
    beta: float = 2.0,
    gamma: float = 0.5,
    label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SimPO (arXiv:2405.14734), reference-free, on per-token *averaged* log-probs. Inputs (B,); returns three (B,).

        z = beta (a_chosen - a_rejected) - gamma
        loss = -(1 - eps) log sigmoid(z) - eps log sigmoid(-z)        (gamma absolute, as TRL's simpo_gamma)
    Rewards: beta * a_chosen and beta * a_rejected, detached.
    """
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must lie in [0, 0.5), got {label_smoothing}")
    _check_shapes(chosen_avg_logps, rejected_avg_logps)
    ac, ar = _fp32(chosen_avg_logps), _fp32(rejected_avg_logps)
    z = beta * (ac - ar) - gamma
    losses = -(1 - label_smoothing) * F.logsigmoid(z) - label_smoothing * F.logsigmoid(-z)
    return losses, beta * ac.detach(), beta * ar.detach()


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(x)) for x <= 0 without cancellation (Maechler 2012): log(-expm1(x)) near 0, log1p(-exp(x)) below.

    x is clamped to at most -tiny, so x = 0 (a log-prob of exactly 0 in fp32) gives a large negative finite value
    instead of -inf. Both branches see safe inputs, so the gradient never picks up a NaN from the unused one.
    """
    x = x.clamp(max=-torch.finfo(x.dtype).tiny)
    near = x > _LN_HALF
    near_val = torch.log(-torch.expm1(torch.where(near, x, _LN_HALF)))
    far_val = torch.log1p(-torch.exp(torch.where(near, _LN_HALF, x)))
    return torch.where(near, near_val, far_val)


def orpo_odds_ratio_loss(
    chosen_avg_logps: torch.Tensor, rejected_avg_logps: torch.Tensor, *, beta: float = 0.1
) -> tuple[torch.Tensor, torch.Tensor]:
    """ORPO odds-ratio term (arXiv:2403.07691) on per-token *averaged* log-probs. Inputs (B,); returns two (B,).

        log odds(y) = a - log(1 - exp(a))         (a = averaged log-prob, via the stable `log1mexp`)
        log_odds_ratio = log odds(chosen) - log odds(rejected)
        loss = -beta * log sigmoid(log_odds_ratio)             (beta = the paper's lambda, TRL's beta)
    Returns (per-pair loss, log_odds_ratio); TRL's odds_ratio_loss returns +beta log sigmoid, subtracted later.
    """
    _check_shapes(chosen_avg_logps, rejected_avg_logps)
    ac, ar = _fp32(chosen_avg_logps), _fp32(rejected_avg_logps)
    log_odds = (ac - ar) - (log1mexp(ac) - log1mexp(ar))
    return -beta * F.logsigmoid(log_odds), log_odds


class OrpoOutput(NamedTuple):
    loss: torch.Tensor  # scalar: nll + mean(odds_ratio_losses)
    nll: torch.Tensor  # scalar token-mean NLL of the chosen rows
    odds_ratio_losses: torch.Tensor  # (B,)
    log_odds: torch.Tensor  # (B,)
    chosen_rewards: torch.Tensor  # (B,) beta * averaged log-prob, detached
    rejected_rewards: torch.Tensor  # (B,)


def orpo_loss(
    chosen_logits: torch.Tensor,
    rejected_logits: torch.Tensor,
    chosen_labels: torch.Tensor,
    rejected_labels: torch.Tensor,
    *,
    beta: float = 0.1,
    nll_labels: torch.Tensor | None = None,
) -> OrpoOutput:
    """ORPO (arXiv:2403.07691): L = L_SFT + mean_pairs(-beta log sigmoid(log odds ratio)).

    logits (B, T, V) and labels (B, T), aligned (`shift_labels`), -100 outside the response. The odds ratio uses
    response-averaged log-probs. L_SFT is the token-mean NLL of the chosen rows over `nll_labels` when given
    (pass the chosen labels with the prompt left in, for TRL's and the official repo's prompt + response NLL),
    else over the chosen response only (the paper's formula; CPO's convention).
    """
    ac = sequence_logps(chosen_logits, chosen_labels, average=True)
    ar = sequence_logps(rejected_logits, rejected_labels, average=True)
    or_losses, log_odds = orpo_odds_ratio_loss(ac, ar, beta=beta)
    nll = sft_loss(chosen_logits, chosen_labels if nll_labels is None else nll_labels)
    return OrpoOutput(nll + or_losses.mean(), nll, or_losses, log_odds, beta * ac.detach(), beta * ar.detach())


def _check_shapes(chosen: torch.Tensor, rejected: torch.Tensor, *refs: torch.Tensor) -> None:
    """Per-pair inputs share one shape (B,); a reference may be one value for all. A (B, 1) tensor would broadcast
    against (B,) into a silent (B, B) loss over every cross pair."""
    shapes = [tuple(t.shape) for t in (chosen, rejected, *refs)]
    if shapes[0] != shapes[1] or any(s != shapes[0] and s not in ((), (1,)) for s in shapes[2:]):
        raise ValueError(f"per-pair log-probs must all have the policy's shape (B,); got {shapes}")


def _fp32(x: torch.Tensor) -> torch.Tensor:
    return x if x.dtype in (torch.float32, torch.float64) else x.float()
