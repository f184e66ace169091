"""Rotary position embedding (arXiv:2104.09864) in the rotate-half layout used by transformers' Llama."""

from __future__ import annotations

import torch

from jpmoe.kernels.backend import elementwise_block, new_empty, tl, triton, use_triton


def rotary_reference(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the two halves of each head: out = x * cos' + rotate_half(x) * sin'.

    x: (B, T, nH, D); cos, sin: (B, T, D // 2) for each position (so packed or offset positions work), where
    cos' = cat(cos, cos) and rotate_half(x) = cat(-x2, x1) for x = cat(x1, x2). Computed in fp32 (fp64 stays fp64).
    """
    dt = torch.promote_types(x.dtype, torch.float32)
    x1, x2 = x.to(dt).chunk(2, dim=-1)  # (B, T, nH, D/2) each
    c = cos.to(dt).unsqueeze(2)  # (B, T, 1, D/2)
    s = sin.to(dt).unsqueeze(2)
    out = torch.cat((x1 * c - x2 * s, x2 * c + x1 * s), dim=-1)
    return out.to(x.dtype)


# ---------------------------------------------------------------------------------------------------------------
# Triton: one program per (batch, position) rotates all heads of that position with one cos/sin row. The backward
# is the same rotation by -angle; d cos and d sin reduce over heads inside the program (no atomics).
# ---------------------------------------------------------------------------------------------------------------
@triton.jit
def _rotary_kernel(
    x_ptr, cos_ptr, sin_ptr, o_ptr,  # x (or dy in backward): (B, T, nH, D) strided; cos, sin: (B, T, D/2) strided
    xs_ptr, dcos_ptr, dsin_ptr,  # GRAD_CS only: saved forward x (B, T, nH, D); out d cos, d sin (B, T, D/2)
    T, n_heads, half,
    sx_b, sx_t, sx_h,  # strides of x / dy (last dim contiguous)
    sc_b, sc_t, ss_b, ss_t,  # strides of cos and sin (0 where broadcast)
    so_b, so_t, so_h,  # strides of out (and of dcos/dsin rows: contiguous (B, T, D/2))
    sxs_b, sxs_t, sxs_h,  # strides of the saved x
    BACKWARD: tl.constexpr,  # rotate by -angle: the transpose of the forward rotation
    GRAD_CS: tl.constexpr,
    BLOCK_H: tl.constexpr, BLOCK_D: tl.constexpr,
):
    pid = tl.program_id(0).to(tl.int64)  # int64: b * stride can pass 2^31
    b, t = pid // T, pid % T
    heads = tl.arange(0, BLOCK_H)[:, None]  # (BLOCK_H, 1)
    cols = tl.arange(0, BLOCK_D)[None, :]  # (1, BLOCK_D) over the first half of each head
    cmask = cols < half
    c = tl.load(cos_ptr + b * sc_b + t * sc_t + cols, mask=cmask, other=0.0).to(tl.float32)
    s = tl.load(sin_ptr + b * ss_b + t * ss_t + cols, mask=cmask, other=0.0).to(tl.float32)
    if BACKWARD:
        s = -s
    dc = tl.zeros((1, BLOCK_D), dtype=tl.float32)
    dsn = tl.zeros((1, BLOCK_D), dtype=tl.float32)
    for h0 in range(0, n_heads, BLOCK_H):
        hh = h0 + heads
        mask = (hh < n_heads) & cmask
        px = x_ptr + b * sx_b + t * sx_t + hh * sx_h + cols
        x1 = tl.load(px, mask=mask, other=0.0).to(tl.float32)
        x2 = tl.load(px + half, mask=mask, other=0.0).to(tl.float32)
        po = o_ptr + b * so_b + t * so_t + hh * so_h + cols
        tl.store(po, (x1 * c - x2 * s).to(o_ptr.dtype.element_ty), mask=mask)
        tl.store(po + half, (x2 * c + x1 * s).to(o_ptr.dtype.element_ty), mask=mask)
        if GRAD_CS:  # out1 = a1 c - a2 s, out2 = a2 c + a1 s  =>  dc = dy1 a1 + dy2 a2, ds = dy2 a1 - dy1 a2
            pa = xs_ptr + b * sxs_b + t * sxs_t + hh * sxs_h + cols
            a1 = tl.load(pa, mask=mask, other=0.0).to(tl.float32)
            a2 = tl.load(pa + half, mask=mask, other=0.0).to(tl.float32)
            dc += tl.sum(x1 * a1 + x2 * a2, axis=0)[None, :]
            dsn += tl.sum(x2 * a1 - x1 * a2, axis=0)[None, :]
    if GRAD_CS:
        pc = b * T * half + t * half + cols  # d cos / d sin are contiguous (B, T, D/2)
        tl.store(dcos_ptr + pc, dc.to(dcos_ptr.dtype.element_ty), mask=cmask)
        tl.store(dsin_ptr + pc, dsn.to(dsin_ptr.dtype.element_ty), mask=cmask)


def _launch_rotary(x, cos, sin, backward: bool, saved_x=None):
    """Rotate x (B, T, nH, D) by the angles of cos/sin; with saved_x also return d cos and d sin."""
    x = x if x.stride(-1) == 1 else x.contiguous()
    B, T, n_heads, D = x.shape
    half = D // 2
    out = new_empty(x.shape, x.dtype, x.device)  # (B, T, nH, D) contiguous
    grad_cs = saved_x is not None
    dcos = new_empty(cos.shape, cos.dtype, x.device) if grad_cs else out
    dsin = new_empty(sin.shape, sin.dtype, x.device) if grad_cs else out
    xs = saved_x if grad_cs else x
    if out.numel():
        block_d = elementwise_block(half, cap=256)
        block_h = max(1, min(elementwise_block(n_heads, cap=64), 4096 // block_d))
        _rotary_kernel[(B * T,)](
            x, cos, sin, out, xs, dcos, dsin, T, n_heads, half,
            x.stride(0), x.stride(1), x.stride(2), cos.stride(0), cos.stride(1), sin.stride(0), sin.stride(1),
            out.stride(0), out.stride(1), out.stride(2), xs.stride(0), xs.stride(1), xs.stride(2),
            BACKWARD=backward, GRAD_CS=grad_cs, BLOCK_H=block_h, BLOCK_D=block_d)
    return out, (dcos, dsin) if grad_cs else None


class RotaryFunction(torch.autograd.Function):
    """Saves cos and sin (and x only when cos/sin need a gradient); the backward rotates dy by -angle."""

    @staticmethod
    def forward(ctx, x, cos, sin):
        out, _ = _launch_rotary(x, cos, sin, backward=False)
        ctx.grad_cs = ctx.needs_input_grad[1] or ctx.needs_input_grad[2]
        ctx.save_for_backward(cos, sin, x if ctx.grad_cs else None)
        return out

    @staticmethod
    def backward(ctx, dout):
        cos, sin, x = ctx.saved_tensors
        dx, dcs = _launch_rotary(dout, cos, sin, backward=True, saved_x=x if ctx.grad_cs else None)
        dcos, dsin = dcs if dcs is not None else (None, None)
        return dx, dcos, dsin


def _check_inputs(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> None:
    if x.dim() != 4 or x.shape[-1] % 2:
        raise ValueError(f"x must be (B, T, nH, D) with D even, got {tuple(x.shape)}")
    want = (x.shape[0], x.shape[1], x.shape[3] // 2)
    if tuple(cos.shape) != want or tuple(sin.shape) != want:
        raise ValueError(f"cos and sin must be (B, T, D/2) = {want}, got {tuple(cos.shape)} and {tuple(sin.shape)}")


def rotary_triton(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """The Triton path (CUDA tensors, or any under TRITON_INTERPRET=1), no choice made here: what
    kernels="triton" runs."""
    _check_inputs(x, cos, sin)
    return RotaryFunction.apply(x, cos.contiguous() if cos.stride(-1) != 1 else cos,
                                sin.contiguous() if sin.stride(-1) != 1 else sin)


def rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate-half RoPE; Triton on CUDA or under TRITON_INTERPRET=1, else `rotary_reference`."""
    if use_triton(x):
        return rotary_triton(x, cos, sin)
    _check_inputs(x, cos, sin)
    return rotary_reference(x, cos, sin)
