import pytest
import torch
from kernel_cases import DEVICE, DTYPES, TOL, grads_of, randn

from jpmoe.kernels.rmsnorm import rms_norm, rms_norm_reference

SHAPES = [(1, 1), (3, 5, 129), (2, 16), (20, 48)]  # 20 rows > 8 backward programs: each program loops over rows


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_rms_norm_forward_and_grads_match_reference(shape, dtype, gen):
    x = randn(shape, dtype, gen, scale=3.0, grad=True)
    w = randn(shape[-1:], dtype, gen, grad=True)
    dy = randn(shape, dtype, gen)
    y = rms_norm(x, w, 1e-5)
    xr, wr = x.detach().float().requires_grad_(), w.detach().float().requires_grad_()
    ref = rms_norm_reference(xr, wr, 1e-5)
    torch.testing.assert_close(y, ref.to(dtype), **TOL[dtype])
    for got, want in zip(grads_of(y, [x, w], dy), grads_of(ref, [xr, wr], dy.float())):
        torch.testing.assert_close(got, want.to(dtype), **TOL[dtype])


@pytest.mark.parametrize("shape", [(1, 1), (3, 5, 129), (20, 48)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_rms_norm_with_residual_returns_sum_and_grads_of_both_outputs(shape, dtype, gen):
    x = randn(shape, dtype, gen, grad=True)
    res = randn(shape, dtype, gen, scale=2.0, grad=True)
    w = randn(shape[-1:], dtype, gen, grad=True)
    dy, ds = randn(shape, dtype, gen), randn(shape, dtype, gen)
    y, s = rms_norm(x, w, 1e-6, residual=res)
    leaves = [t.detach().float().requires_grad_() for t in (x, w, res)]  # fp32 oracle ...
    rs = (leaves[0] + leaves[2]).to(dtype).float()  # ... with s rounded to the dtype, as the contract says
    ry = rms_norm_reference(rs, leaves[1], 1e-6)
    torch.testing.assert_close(s, rs.to(dtype), rtol=0, atol=0)  # x + residual, rounded once to the dtype
    torch.testing.assert_close(y, ry.to(dtype), **TOL[dtype])
    got = torch.autograd.grad((y, s), (x, w, res), (dy, ds))
    want = torch.autograd.grad((ry, rs), leaves, (dy.float(), ds.float()))
    for g, wnt in zip(got, want):
        torch.testing.assert_close(g, wnt.to(dtype), **TOL[dtype])


def test_rms_norm_fp32_weight_on_fp16_input_promotes_like_reference(gen):
    x = randn((4, 24), torch.float16, gen)
    w = randn((24,), torch.float32, gen)
    y = rms_norm(x, w, 1e-5)
    ref = rms_norm_reference(x, w, 1e-5)
    assert y.dtype == ref.dtype == torch.float32
    torch.testing.assert_close(y, ref, **TOL[torch.float32])


def test_rms_norm_rejects_wrong_weight_and_residual():
    x = torch.ones(2, 8, device=DEVICE)
    with pytest.raises(ValueError, match="weight shape"):
        rms_norm(x, torch.ones(7, device=DEVICE), 1e-5)
    with pytest.raises(ValueError, match="residual must match"):
        rms_norm(x, torch.ones(8, device=DEVICE), 1e-5, residual=torch.ones(2, 8, device=DEVICE, dtype=torch.float16))
