"""SwiGLU activation (arXiv:2002.05202): silu(gate) * up."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from jpmoe.kernels.backend import elementwise_block, new_empty, tl, triton, use_triton


def swiglu_reference(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """gate, up: (..., I), same dtype; computed in fp32 (fp64 stays fp64), returned in the input dtype."""
    dt = torch.promote_types(gate.dtype, torch.float32)
    return (F.silu(gate.to(dt)) * up.to(dt)).to(gate.dtype)


# ---------------------------------------------------------------------------------------------------------------
# Triton: one program per (row, column block); elementwise, so the whole cost is reading gate/up and writing out.
# ---------------------------------------------------------------------------------------------------------------

@triton.jit
def _swiglu_fwd_kernel(
    g_ptr, u_ptr, o_ptr,  # gate, up, out: (rows, n_cols), last dim contiguous
    stride_g, stride_u, stride_o,  # row strides in elements
    n_cols,
    BLOCK: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)  # int64: row * stride can pass 2^31
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = cols < n_cols
    g = tl.load(g_ptr + row * stride_g + cols, mask=mask, other=0.0).to(tl.float32)
    u = tl.load(u_ptr + row * stride_u + cols, mask=mask, other=0.0).to(tl.float32)
    out = g * tl.sigmoid(g) * u
    tl.store(o_ptr + row * stride_o + cols, out.to(o_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _swiglu_bwd_kernel(
    do_ptr, g_ptr, u_ptr, dg_ptr, du_ptr,  # dout, gate, up in; dgate, dup out: (rows, n_cols)
    stride_do, stride_g, stride_u, stride_dg, stride_du,
    n_cols,
    BLOCK: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = cols < n_cols
    do = tl.load(do_ptr + row * stride_do + cols, mask=mask, other=0.0).to(tl.float32)
    g = tl.load(g_ptr + row * stride_g + cols, mask=mask, other=0.0).to(tl.float32)
    u = tl.load(u_ptr + row * stride_u + cols, mask=mask, other=0.0).to(tl.float32)
    sig = tl.sigmoid(g)
    dg = do * u * sig * (1.0 + g * (1.0 - sig))  # d silu(g)/dg = sig * (1 + g * (1 - sig))
    du = do * g * sig  # d out/d up = silu(g)
    tl.store(dg_ptr + row * stride_dg + cols, dg.to(dg_ptr.dtype.element_ty), mask=mask)
    tl.store(du_ptr + row * stride_du + cols, du.to(du_ptr.dtype.element_ty), mask=mask)


def _rows(t: torch.Tensor) -> torch.Tensor:
    """(..., n) -> (rows, n) with a contiguous last dim; a view whenever strides allow (e.g. a chunk of gate_up)."""
    t = t if t.stride(-1) == 1 else t.contiguous()
    return t.reshape(-1, t.shape[-1])


def swiglu_forward(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    g, u = _rows(gate), _rows(up)  # (rows, I)
    out = new_empty(g.shape, gate.dtype, gate.device)
    n_rows, n_cols = g.shape
    if out.numel():
        block = elementwise_block(n_cols, cap=1024)
        grid = (n_rows, triton.cdiv(n_cols, block))
        _swiglu_fwd_kernel[grid](g, u, out, g.stride(0), u.stride(0), out.stride(0), n_cols, BLOCK=block)
    return out.view(gate.shape)


def swiglu_backward(dout: torch.Tensor, gate: torch.Tensor, up: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    do, g, u = _rows(dout), _rows(gate), _rows(up)  # (rows, I)
    dg = new_empty(g.shape, gate.dtype, gate.device)
    du = new_empty(u.shape, up.dtype, up.device)
    n_rows, n_cols = g.shape
    if dg.numel():
        block = elementwise_block(n_cols, cap=1024)
        grid = (n_rows, triton.cdiv(n_cols, block))
        _swiglu_bwd_kernel[grid](do, g, u, dg, du, do.stride(0), g.stride(0), u.stride(0), dg.stride(0),
                                 du.stride(0), n_cols, BLOCK=block)
    return dg.view(gate.shape), du.view(up.shape)


class SwiGLUFunction(torch.autograd.Function):
    """Saves gate and up, recomputes silu in backward (no activation kept)."""

    @staticmethod
    def forward(ctx, gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(gate, up)
        return swiglu_forward(gate, up)

    @staticmethod
    def backward(ctx, dout: torch.Tensor):
        gate, up = ctx.saved_tensors
        return swiglu_backward(dout, gate, up)


def _check_inputs(gate: torch.Tensor, up: torch.Tensor) -> None:
    if gate.shape != up.shape or gate.dtype != up.dtype:
        raise ValueError(f"gate and up must match: got {tuple(gate.shape)} {gate.dtype} and "
                         f"{tuple(up.shape)} {up.dtype}")


def swiglu_triton(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """The Triton path (CUDA tensors, or any under TRITON_INTERPRET=1), no choice made here: what
    kernels="triton" runs."""
    _check_inputs(gate, up)
    return SwiGLUFunction.apply(gate, up)


def swiglu(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """silu(gate) * up: Triton on CUDA or under TRITON_INTERPRET=1, else `swiglu_reference`."""
    if use_triton(gate):
        return swiglu_triton(gate, up)
    _check_inputs(gate, up)
    return swiglu_reference(gate, up)
