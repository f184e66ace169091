"""Rotary position embedding (arXiv:2104.09864) in the rotate-half layout used by transformers' Llama."""

from __future__ import annotations

import torch


def rotary_reference(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the two halves of each head: out = x * cos' + rotate_half(x) * sin'.

    x: (B, T, nH, D); cos, sin: (B, T, D // 2) for each position (so packed or offset positions work), where
    cos' = cat(cos, cos) and rotate_half(x) = cat(-x2, x1) for x = cat(x1, x2). Computed in fp32.
    """
    x1, x2 = x.float().chunk(2, dim=-1)  # (B, T, nH, D/2) each
    c = cos.float().unsqueeze(2)  # (B, T, 1, D/2)
    s = sin.float().unsqueeze(2)
    out = torch.cat((x1 * c - x2 * s, x2 * c + x1 * s), dim=-1)
    return out.to(x.dtype)
