"""The one place where the model chooses between the torch references and the Triton kernels.

`backend` is `ModelConfig.kernels`: "torch" runs the references; "triton" runs the Triton entries (CUDA, or CPU
under TRITON_INTERPRET=1). Signatures are those of the references in the op files.
"""

from __future__ import annotations

import torch

from jpmoe.kernels.moe_mlp import moe_mlp_reference
from jpmoe.kernels.rmsnorm import rms_norm_reference
from jpmoe.kernels.rotary import rotary_reference
from jpmoe.kernels.routing import route_reference
from jpmoe.kernels.swiglu import swiglu_reference

BACKENDS = ("torch", "triton")


def _check(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"unknown kernels backend {backend!r}; choose one of {BACKENDS}")
    if backend == "triton":
        raise NotImplementedError("the Triton kernels are not wired in yet")


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float, residual: torch.Tensor | None = None, *,
             backend: str = "torch"):
    _check(backend)
    return rms_norm_reference(x, weight, eps, residual)


def rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, *, backend: str = "torch") -> torch.Tensor:
    _check(backend)
    return rotary_reference(x, cos, sin)


def swiglu(gate: torch.Tensor, up: torch.Tensor, *, backend: str = "torch") -> torch.Tensor:
    _check(backend)
    return swiglu_reference(gate, up)


def route(logits: torch.Tensor, k: int, *, renormalize: bool = True, backend: str = "torch"):
    _check(backend)
    return route_reference(logits, k, renormalize=renormalize)


def moe_mlp(x: torch.Tensor, w_gate_up: torch.Tensor, w_down: torch.Tensor, weights: torch.Tensor,
            experts: torch.Tensor, *, backend: str = "torch") -> torch.Tensor:
    _check(backend)
    return moe_mlp_reference(x, w_gate_up, w_down, weights, experts)
