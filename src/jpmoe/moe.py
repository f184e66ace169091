"""MLPs of a block: the dense SwiGLU MLP and the dropless Mixture-of-Experts layer with its auxiliary losses.

Letters in shape comments: B batch, T tokens per row, N = B*T tokens, H hidden, I intermediate, E experts,
K experts chosen per token.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from jpmoe.config import ModelConfig
from jpmoe.kernels.dispatch import kernels_for


class DenseMLP(nn.Module):
    """SwiGLU MLP (arXiv:2002.05202) with the gate and up projections fused: rows [0:I] gate, [I:2I] up."""

    def __init__(self, hidden_size: int, intermediate_size: int, kernels: str = "torch"):
        super().__init__()
        self.intermediate_size, self.ops = intermediate_size, kernels_for(kernels)
        self.w_gate_up = nn.Linear(hidden_size, 2 * intermediate_size, bias=False)
        self.w_down = nn.Linear(intermediate_size, hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.w_gate_up(x)  # (..., 2I)
        a = self.ops.swiglu(h[..., : self.intermediate_size], h[..., self.intermediate_size :])  # (..., I)
        return self.w_down(a)


class RouterStats(NamedTuple):
    """What one MoE layer reports: enough to form the per-layer and the global auxiliary losses exactly.

    Padding tokens (token_mask False) are left out of every sum.
    """

    counts: torch.Tensor  # (E,) fp32: (token, expert) assignments per expert; sums to K * tokens
    prob_sum: torch.Tensor  # (E,) fp32: sum over tokens of the full softmax router probabilities
    tokens: torch.Tensor  # () fp32: number of tokens counted
    z_sum: torch.Tensor  # () fp32: sum over tokens of logsumexp(router logits)^2


def load_balancing_loss(counts: torch.Tensor, prob_sum: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Switch Transformer load-balancing loss (arXiv:2101.03961, eqs. 4-6) as Mixtral/transformers compute it.

    loss = E * sum_e f_e * P_e, with f_e = counts_e / tokens (top-k assignments, so sum_e f_e = K) and
    P_e = prob_sum_e / tokens (mean router probability). Uniform routing gives K.
    """
    num_experts = counts.shape[-1]
    return num_experts * torch.sum((counts / tokens) * (prob_sum / tokens))


def router_z_loss(z_sum: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """ST-MoE router z-loss (arXiv:2202.08906, eq. 5): mean over tokens of logsumexp(logits)^2."""
    return z_sum / tokens


def router_stats(logits: torch.Tensor, experts: torch.Tensor, token_mask: torch.Tensor | None) -> RouterStats:
    """logits (N, E) in the model dtype, experts (N, K), token_mask (N,) or None -> RouterStats in fp32."""
    N, E = logits.shape
    w = logits.new_ones(N, dtype=torch.float32) if token_mask is None else token_mask.reshape(N).float()  # (N,)
    probs = torch.softmax(logits.float(), dim=-1)  # (N, E)
    with torch.no_grad():
        counts = torch.zeros(E, dtype=torch.float32, device=logits.device)
        counts.scatter_add_(0, experts.reshape(-1), w.repeat_interleave(experts.shape[1]))  # (E,)
    prob_sum = (probs * w[:, None]).sum(0)  # (E,)
    z_sum = (torch.logsumexp(logits.float(), dim=-1).square() * w).sum()
    return RouterStats(counts, prob_sum, w.sum(), z_sum)


class MoE(nn.Module):
    """Top-k routed experts, dropless: every chosen (token, expert) pair is computed.

    Expert weights are stored fused as in transformers 5.x Mixtral: w_gate_up (E, 2F, H) with the gate rows
    first, w_down (E, H, I). The expert computation is the `moe_mlp` of the kernel path the config names
    (`jpmoe.kernels.dispatch`), which sorts the pairs by expert and runs each expert's SwiGLU on its contiguous
    rows.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config, self.ops = config, kernels_for(config.kernels)
        E, H, inter = config.num_experts, config.hidden_size, config.intermediate_size
        self.router = nn.Linear(H, E, bias=False)
        self.w_gate_up = nn.Parameter(torch.empty(E, 2 * inter, H))
        self.w_down = nn.Parameter(torch.empty(E, H, inter))
        self.shared = DenseMLP(H, config.shared_expert_size, config.kernels) if config.shared_expert_size else None

    def forward(self, x: torch.Tensor, token_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, RouterStats]:
        cfg = self.config
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])  # (N, H)
        logits = F.linear(x2, self.router.weight)  # (N, E) in the model dtype, as transformers' Mixtral router
        weights, experts = self.ops.route(logits, cfg.experts_per_token,
                                          renormalize=cfg.router_renormalize)  # (N, K) fp32, (N, K) int64
        y = self.ops.moe_mlp(x2, self.w_gate_up, self.w_down, weights, experts)  # (N, H)
        if self.shared is not None:
            y = y + self.shared(x2)
        return y.view(shape), router_stats(logits, experts, token_mask)
