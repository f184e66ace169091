"""Shared pieces of the kernel tests: device, dtypes with per-dtype tolerances, random inputs."""

from __future__ import annotations

import pytest
import torch

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"

# fp32: the kernels and the references do the same fp32 math in a different order.
# fp16: one or two fp16 ulps on values of order 1 (the kernel rounds once at the end, the reference sometimes twice).
# bf16 (GPU only): one bf16 ulp is 2**-8 relative, plus rounding of fp32 accumulations.
TOL = {
    torch.float32: dict(atol=1e-5, rtol=1e-5),
    torch.float16: dict(atol=2e-3, rtol=2e-3),
    torch.bfloat16: dict(atol=2e-2, rtol=2e-2),
}
DTYPES = [torch.float32, torch.float16, pytest.param(torch.bfloat16, marks=pytest.mark.gpu)]


def randn(shape, dtype: torch.dtype, gen: torch.Generator, scale: float = 1.0, grad: bool = False) -> torch.Tensor:
    """Normal(0, scale) drawn on CPU (reproducible per test), then moved to DEVICE in `dtype`."""
    t = (torch.randn(shape, generator=gen) * scale).to(device=DEVICE, dtype=dtype)
    return t.requires_grad_(grad)


def grads_of(out: torch.Tensor, inputs, dout: torch.Tensor):
    """Gradients of <out, dout> with respect to each input (None for inputs that do not require grad)."""
    need = [t for t in inputs if t.requires_grad]
    got = iter(torch.autograd.grad(out, need, dout))
    return [next(got) if t.requires_grad else None for t in inputs]
