"""The model's one kernel decision, made once when the model is built.

`ModelConfig.kernels` is "auto", "torch" or "triton". `resolve_kernels` turns it into the name of one path when the
model is built (`Transformer.__init__`, or an app before it builds the config): "auto" is "triton" where the model
runs on CUDA and Triton can run, else "torch"; "triton" where Triton cannot run is an error that says why. The
modules then keep `KERNELS[name]`, that path's table of ops, and call its entries directly: no check per call, and
no second decision inside (the "triton" entries go straight to Triton, never back to a reference).

| op | "torch" | "triton" |
|---|---|---|
| rms_norm | `rms_norm_reference` | `rms_norm_triton` |
| rotary | `rotary_reference` | `rotary_triton` |
| swiglu | `swiglu_reference` | `swiglu_triton` |
| route | `route_reference` | `route_triton` |
| moe_mlp | `moe_mlp_torch` (grouped, hand-written backward, tuned for CPU; *not* the reference) | `moe_mlp_triton` |

`moe_mlp_reference` (a loop over experts) is the specification and test oracle of both expert MLPs; neither path
runs it. Signatures are those of the references in the op files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from jpmoe.config import KERNEL_CHOICES
from jpmoe.kernels.backend import triton_unavailable_reason
from jpmoe.kernels.moe_mlp import moe_mlp_triton
from jpmoe.kernels.moe_mlp_torch import moe_mlp_torch
from jpmoe.kernels.rmsnorm import rms_norm_reference, rms_norm_triton
from jpmoe.kernels.rotary import rotary_reference, rotary_triton
from jpmoe.kernels.routing import route_reference, route_triton
from jpmoe.kernels.swiglu import swiglu_reference, swiglu_triton


def resolve_kernels(choice: str, device: torch.device | str | None = None) -> str:
    """"auto" -> "triton" when the model runs on CUDA (`device`; None: CUDA when this machine has it) and Triton can
    run, else "torch". "triton" where it cannot run is a ValueError saying why; "torch" is kept."""
    if choice not in KERNEL_CHOICES:
        raise ValueError(f"kernels must be one of {KERNEL_CHOICES}, not {choice!r}")
    if choice == "auto":
        on_cuda = torch.device(device).type == "cuda" if device is not None else torch.cuda.is_available()
        return "triton" if on_cuda and triton_unavailable_reason() is None else "torch"
    if choice == "triton" and (reason := triton_unavailable_reason()):
        raise ValueError(f"kernels='triton' cannot run here: {reason}")
    return choice


def _promoted(x: torch.Tensor, residual: torch.Tensor | None):
    """rms_norm: under autocast a bf16 sublayer output meets the fp32 residual stream; both are promoted to the
    dtype x + residual gives in the reference."""
    if residual is not None and residual.dtype != x.dtype:
        dt = torch.promote_types(x.dtype, residual.dtype)
        x, residual = x.to(dt), residual.to(dt)
    return x, residual


def _as_linear(fn: Callable, x, w_gate_up, w_down, weights, experts) -> torch.Tensor:
    """moe_mlp: both expert MLPs are custom autograd Functions, which autocast skips: cast as F.linear would."""
    device = x.device.type
    if torch.is_autocast_enabled(device):
        dt = torch.get_autocast_dtype(device)
        with torch.autocast(device, enabled=False):
            return fn(x.to(dt), w_gate_up.to(dt), w_down.to(dt), weights, experts)
    return fn(x, w_gate_up, w_down, weights, experts)


# module-level functions (not closures), so that a model holding its table can still be pickled whole
def _torch_rms_norm(x, weight, eps, residual=None):
    x, residual = _promoted(x, residual)
    return rms_norm_reference(x, weight, eps, residual)


def _triton_rms_norm(x, weight, eps, residual=None):
    x, residual = _promoted(x, residual)
    return rms_norm_triton(x, weight, eps, residual)


def _torch_moe_mlp(x, w_gate_up, w_down, weights, experts):
    return _as_linear(moe_mlp_torch, x, w_gate_up, w_down, weights, experts)


def _triton_moe_mlp(x, w_gate_up, w_down, weights, experts):
    return _as_linear(moe_mlp_triton, x, w_gate_up, w_down, weights, experts)


@dataclass(frozen=True)
class Kernels:
    """One path's ops (see the table in the module docstring)."""

    name: str
    rms_norm: Callable
    rotary: Callable
    swiglu: Callable
    route: Callable
    moe_mlp: Callable


KERNELS = {
    "torch": Kernels("torch", rms_norm=_torch_rms_norm, rotary=rotary_reference, swiglu=swiglu_reference,
                     route=route_reference, moe_mlp=_torch_moe_mlp),
    "triton": Kernels("triton", rms_norm=_triton_rms_norm, rotary=rotary_triton, swiglu=swiglu_triton,
                      route=route_triton, moe_mlp=_triton_moe_mlp),
}


def kernels_for(choice: str) -> Kernels:
    """The op table of `choice` (resolved here when a module is built on its own with "auto")."""
    return KERNELS[resolve_kernels(choice)]
