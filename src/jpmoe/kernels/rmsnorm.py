"""RMSNorm (arXiv:1910.07467), optionally fused with the residual add that precedes it."""

from __future__ import annotations

import torch

from jpmoe.kernels.backend import elementwise_block, interpreting, new_empty, row_warps, tl, triton, use_triton


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


# ---------------------------------------------------------------------------------------------------------------
# Triton: one program per row forward; backward programs stride over rows and keep a private fp32 partial of
# d weight, summed afterwards (deterministic, no atomics).
# ---------------------------------------------------------------------------------------------------------------
@triton.jit
def _rms_norm_fwd_kernel(
    x_ptr, r_ptr, w_ptr,  # x, residual (unused without HAS_RES): (rows, H); weight: (H,)
    y_ptr, s_ptr, rstd_ptr,  # out y: (rows, H); out s = x + residual (HAS_RES only); out rstd: (rows,) fp32
    stride_x, stride_r, stride_y, stride_s,  # row strides
    n_cols, eps,
    HAS_RES: tl.constexpr,
    BLOCK: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)  # int64: row * stride can pass 2^31
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * stride_x + cols, mask=mask, other=0.0)
    if HAS_RES:
        r = tl.load(r_ptr + row * stride_r + cols, mask=mask, other=0.0)
        # the reference adds in the input dtype, so round the sum once to it before the statistics
        x = (x.to(tl.float32) + r.to(tl.float32)).to(x_ptr.dtype.element_ty)
        tl.store(s_ptr + row * stride_s + cols, x, mask=mask)
    s = x.to(tl.float32)
    rstd = 1.0 / tl.sqrt(tl.sum(s * s, axis=0) / n_cols + eps)
    tl.store(rstd_ptr + row, rstd)
    n = (s * rstd).to(x_ptr.dtype.element_ty).to(tl.float32)  # normalised, cast to the input dtype (as HF)
    w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    tl.store(y_ptr + row * stride_y + cols, (w * n).to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _rms_norm_bwd_kernel(
    dy_ptr, ds_ptr, s_ptr, w_ptr, rstd_ptr,  # dy, d s (HAS_DS only), s = the normalised input: (rows, H)
    dx_ptr, dw_part_ptr,  # out dx: (rows, H); out partial d weight: (n_programs, H) fp32
    stride_dy, stride_ds, stride_s, stride_dx,
    n_rows, n_cols,
    HAS_DS: tl.constexpr,
    BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    n_prog = tl.num_programs(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    dw = tl.zeros((BLOCK,), dtype=tl.float32)
    for r in range(pid, n_rows, n_prog):
        row = tl.cast(r, tl.int64)  # int64: row * stride can pass 2^31
        s = tl.load(s_ptr + row * stride_s + cols, mask=mask, other=0.0)
        rstd = tl.load(rstd_ptr + row)
        n = s.to(tl.float32) * rstd
        dy = tl.load(dy_ptr + row * stride_dy + cols, mask=mask, other=0.0).to(tl.float32)
        dw += dy * n.to(s_ptr.dtype.element_ty).to(tl.float32)  # y = w * cast(n): dw = dy * cast(n)
        g = dy * w
        # d/ds of s * rstd(s): rstd * (g - n * mean(g * n))
        ds = rstd * (g - n * (tl.sum(g * n, axis=0) / n_cols))
        if HAS_DS:  # s was also returned as the residual stream: its own gradient adds here
            ds += tl.load(ds_ptr + row * stride_ds + cols, mask=mask, other=0.0).to(tl.float32)
        tl.store(dx_ptr + row * stride_dx + cols, ds.to(dx_ptr.dtype.element_ty), mask=mask)
    tl.store(dw_part_ptr + pid.to(tl.int64) * n_cols + cols, dw, mask=mask)


def _rows(t: torch.Tensor) -> torch.Tensor:
    t = t if t.stride(-1) == 1 else t.contiguous()
    return t.reshape(-1, t.shape[-1])  # (rows, H)


def rms_norm_forward(x: torch.Tensor, weight: torch.Tensor, eps: float, residual: torch.Tensor | None):
    """Returns y, s (the normalised input: x + residual, or x itself) and rstd (rows,) fp32."""
    x2 = _rows(x)
    n_rows, n_cols = x2.shape
    y = new_empty(x2.shape, torch.promote_types(x.dtype, weight.dtype), x.device)
    s = new_empty(x2.shape, x.dtype, x.device) if residual is not None else x2
    r = _rows(residual) if residual is not None else x2
    rstd = new_empty((n_rows,), torch.float32, x.device)
    if n_rows:
        _rms_norm_fwd_kernel[(n_rows,)](
            x2, r, weight, y, s, rstd, x2.stride(0), r.stride(0), y.stride(0), s.stride(0), n_cols, eps,
            HAS_RES=residual is not None, BLOCK=(block := elementwise_block(n_cols, cap=65536)),
            num_warps=row_warps(block))
    return y.view(x.shape), s, rstd


def rms_norm_backward(dy, ds, s, weight, rstd):
    """dy, ds (or None), s: (rows, H). Returns d s (rows, H) and d weight (H,)."""
    dy, s = _rows(dy), _rows(s)
    n_rows, n_cols = s.shape
    dx = new_empty(s.shape, s.dtype, s.device)
    n_prog = min(n_rows, 8 if interpreting() else 4 * torch.cuda.get_device_properties(s.device).multi_processor_count)
    dw_part = new_empty((max(n_prog, 1), n_cols), torch.float32, s.device)
    if n_rows == 0:
        return dx, torch.zeros_like(weight)
    ds = _rows(ds) if ds is not None else dy
    _rms_norm_bwd_kernel[(n_prog,)](
        dy, ds, s, weight, rstd, dx, dw_part, dy.stride(0), ds.stride(0), s.stride(0), dx.stride(0), n_rows, n_cols,
        HAS_DS=ds is not dy, BLOCK=(block := elementwise_block(n_cols, cap=65536)), num_warps=row_warps(block))
    return dx, dw_part.sum(0).to(weight.dtype)


class RMSNormFunction(torch.autograd.Function):
    """Returns y, or (y, x + residual) when a residual is given; saves s and rstd (one fp32 per row)."""

    @staticmethod
    def forward(ctx, x, weight, eps, residual):
        y, s, rstd = rms_norm_forward(x, weight, eps, residual)
        ctx.save_for_backward(s, weight, rstd)
        ctx.has_res = residual is not None
        return (y, s.view(x.shape)) if ctx.has_res else y

    @staticmethod
    def backward(ctx, dy, ds=None):
        s, weight, rstd = ctx.saved_tensors
        dx, dw = rms_norm_backward(dy, ds if ctx.has_res else None, s, weight, rstd)
        dx = dx.view(dy.shape)
        return dx, dw, None, (dx if ctx.has_res else None)


def _check_inputs(x: torch.Tensor, weight: torch.Tensor, residual: torch.Tensor | None) -> None:
    if weight.shape != x.shape[-1:]:
        raise ValueError(f"weight shape {tuple(weight.shape)} does not match the last dim of x {tuple(x.shape)}")
    if residual is not None and (residual.shape != x.shape or residual.dtype != x.dtype):
        raise ValueError(f"residual must match x: got {tuple(residual.shape)} {residual.dtype}, "
                         f"x {tuple(x.shape)} {x.dtype}")


def rms_norm_triton(x: torch.Tensor, weight: torch.Tensor, eps: float, residual: torch.Tensor | None = None):
    """The Triton path (CUDA tensors, or any under TRITON_INTERPRET=1), no choice made here: what
    kernels="triton" runs."""
    _check_inputs(x, weight, residual)
    return RMSNormFunction.apply(x, weight, eps, residual)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float, residual: torch.Tensor | None = None):
    """RMSNorm with the optional fused residual add; Triton on CUDA or under TRITON_INTERPRET=1, else the reference."""
    if use_triton(x):
        return rms_norm_triton(x, weight, eps, residual)
    _check_inputs(x, weight, residual)
    return rms_norm_reference(x, weight, eps, residual)
