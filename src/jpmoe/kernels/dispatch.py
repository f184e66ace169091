"""The one place where the model chooses between the torch references and the Triton kernels.

`backend` is `ModelConfig.kernels`: "torch" runs the references; "triton" runs the Triton entries (compiled on
CUDA tensors, interpreted on CPU under TRITON_INTERPRET=1). Signatures are those of the references in the op
files. A Triton entry given tensors it cannot run on (CPU tensors without the interpreter) falls back to its
reference, so a model built for "triton" still runs when moved to CPU for a quick check.
"""

from __future__ import annotations

import torch

from jpmoe.grouped_mlp import grouped_moe_mlp
from jpmoe.kernels.backend import triton_unavailable_reason
from jpmoe.kernels.moe_mlp import moe_mlp as moe_mlp_triton
from jpmoe.kernels.rmsnorm import rms_norm as rms_norm_triton
from jpmoe.kernels.rmsnorm import rms_norm_reference
from jpmoe.kernels.rotary import rotary as rotary_triton
from jpmoe.kernels.rotary import rotary_reference
from jpmoe.kernels.routing import route as route_triton
from jpmoe.kernels.routing import route_reference
from jpmoe.kernels.swiglu import swiglu as swiglu_triton
from jpmoe.kernels.swiglu import swiglu_reference

BACKENDS = ("torch", "triton")


def check_backend(backend: str) -> None:
    """Raise a ValueError naming the problem when `backend` is unknown or cannot run on this machine."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown kernels backend {backend!r}; choose one of {BACKENDS}")
    if backend == "triton":
        reason = triton_unavailable_reason()
        if reason:
            raise ValueError(f"kernels='triton' cannot run here: {reason}")


def _triton(backend: str) -> bool:
    check_backend(backend)
    return backend == "triton"


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float, residual: torch.Tensor | None = None, *,
             backend: str = "torch"):
    if residual is not None and residual.dtype != x.dtype:  # autocast: a bf16 sublayer output meets the fp32 stream
        dt = torch.promote_types(x.dtype, residual.dtype)  # what x + residual gives in the reference
        x, residual = x.to(dt), residual.to(dt)
    if _triton(backend):
        return rms_norm_triton(x, weight, eps, residual)
    return rms_norm_reference(x, weight, eps, residual)


def rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, *, backend: str = "torch") -> torch.Tensor:
    if _triton(backend):
        return rotary_triton(x, cos, sin)
    return rotary_reference(x, cos, sin)


def swiglu(gate: torch.Tensor, up: torch.Tensor, *, backend: str = "torch") -> torch.Tensor:
    if _triton(backend):
        return swiglu_triton(gate, up)
    return swiglu_reference(gate, up)


def route(logits: torch.Tensor, k: int, *, renormalize: bool = True, backend: str = "torch"):
    if _triton(backend):
        return route_triton(logits, k, renormalize=renormalize)
    return route_reference(logits, k, renormalize=renormalize)


def moe_mlp(x: torch.Tensor, w_gate_up: torch.Tensor, w_down: torch.Tensor, weights: torch.Tensor,
            experts: torch.Tensor, *, backend: str = "torch") -> torch.Tensor:
    fn = moe_mlp_triton if _triton(backend) else grouped_moe_mlp  # grouped: the CPU fast path of "torch" (issue 5)
    device = x.device.type
    if torch.is_autocast_enabled(device):  # both are custom Functions, which autocast skips: cast as F.linear would
        dt = torch.get_autocast_dtype(device)
        with torch.autocast(device, enabled=False):
            return fn(x.to(dt), w_gate_up.to(dt), w_down.to(dt), weights, experts)
    return fn(x, w_gate_up, w_down, weights, experts)
