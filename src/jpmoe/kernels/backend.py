"""When the Triton kernels can run, and the small launch settings every kernel file shares.

Triton runs compiled on CUDA tensors, or anywhere under Triton's interpreter (TRITON_INTERPRET=1, set by
tests/conftest.py on CPU-only machines before any kernel module is imported: `@triton.jit` reads it when the
kernel is defined).
"""

from __future__ import annotations

import importlib.util
import os
from types import SimpleNamespace

import torch

HAS_TRITON = importlib.util.find_spec("triton") is not None
if HAS_TRITON:
    import triton
    import triton.language as tl
else:  # triton is a Linux-only dependency: elsewhere the op files still import (their references are the model's
    # CPU path), @triton.jit leaves the kernel functions undecorated and nothing ever launches them.
    triton = SimpleNamespace(jit=lambda fn=None, **_: fn if fn is not None else (lambda f: f))
    tl = None

__all__ = ["HAS_TRITON", "tl", "triton"]  # the op files import triton and tl from here


def interpreting() -> bool:
    """True under Triton's interpreter (CPU tensors, numpy semantics)."""
    return os.environ.get("TRITON_INTERPRET") == "1"


# `@triton.jit` picks the interpreter when a kernel is defined (just after this module is imported), not at launch
INTERPRETED_AT_IMPORT = interpreting()


def use_triton(x: torch.Tensor) -> bool:
    """Triton on CUDA tensors, or on any tensor under TRITON_INTERPRET=1; else the torch reference."""
    return HAS_TRITON and (x.is_cuda or interpreting())


def triton_unavailable_reason() -> str | None:
    """None when `kernels="triton"` can run here, else a sentence saying why not."""
    if not HAS_TRITON:
        return "the triton package is not installed (it is a Linux-only dependency of jpmoe)"
    if not (torch.cuda.is_available() or interpreting()):
        return ("Triton kernels need a CUDA device, or TRITON_INTERPRET=1 set before jpmoe.kernels is imported "
                "(CPU, slow: for tests); use kernels='torch' here")
    if not torch.cuda.is_available() and not INTERPRETED_AT_IMPORT:
        return ("TRITON_INTERPRET=1 was set after jpmoe.kernels was imported, so the kernels were defined for a GPU "
                "and cannot run on CPU: set it before the first jpmoe import")
    return None


def dot_precision(dtype: torch.dtype) -> str:
    """tl.dot input precision for fp32 operands, following torch's own matmul setting (tf32 only if allowed)."""
    if dtype == torch.float32 and not torch.backends.cuda.matmul.allow_tf32:
        return "ieee"
    return "tf32"  # ignored by tl.dot for fp16/bf16 operands


def elementwise_block(n_cols: int, cap: int = 4096) -> int:
    """Power-of-two block covering a row of `n_cols` (at least 16), capped so registers do not spill."""
    block = 16
    while block < n_cols and block < cap:
        block *= 2
    return block


def row_warps(block: int) -> int:
    """Warps for a one-row-per-program kernel of `block` columns: ~8-16 elements per thread (Liger's rule)."""
    return 4 if block <= 2048 else 8 if block <= 8192 else 16 if block <= 32768 else 32


# Tests set this (tests/moe/kernels/conftest.py): every output a launcher allocates starts as NaN (integers as -7),
# so an element a kernel forgets to write fails the comparison instead of passing by luck with leftover memory.
POISON_OUTPUTS = False


def new_empty(shape, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    """torch.empty for kernel outputs (poisoned under tests, see POISON_OUTPUTS)."""
    t = torch.empty(shape, dtype=dtype, device=device)
    if POISON_OUTPUTS:
        t.fill_(float("nan") if t.is_floating_point() else -7)
    return t
