"""SwiGLU activation (arXiv:2002.05202): silu(gate) * up."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def swiglu_reference(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """gate, up: (..., I), same dtype; computed in fp32, returned in the input dtype."""
    return (F.silu(gate.float()) * up.float()).to(gate.dtype)
