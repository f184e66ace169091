"""RMSNorm (arXiv:1910.07467), optionally fused with the residual add that precedes it."""

from __future__ import annotations

import torch


def rms_norm_reference(
    x: torch.Tensor, weight: torch.Tensor, eps: float, residual: torch.Tensor | None = None
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """y = x / sqrt(mean(x^2) + eps) * weight, statistics in fp32 (as transformers' LlamaRMSNorm).

    x: (..., H), weight: (H,). With `residual` (same shape as x) the input is s = x + residual and the result is
    (y, s), so a block can keep s as its next residual stream.
    """
    s = x if residual is None else x + residual
    h = s.float()
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    y = weight * h.to(s.dtype)
    return y if residual is None else (y, s)
