import pytest
import torch
from kernel_cases import DEVICE, DTYPES, TOL, grads_of, randn

from jpmoe.kernels.rotary import rotary, rotary_reference

# (B, T, nH, D): one token and one head; odd head count; D/2 not a power of two; more heads than one head block.
SHAPES = [(1, 1, 1, 2), (2, 3, 5, 20), (1, 4, 3, 34), (1, 2, 70, 64)]


def _angles(B, T, half, gen, dtype):
    theta = torch.rand((B, T, half), generator=gen) * 6.3
    return theta.cos().to(DEVICE, dtype), theta.sin().to(DEVICE, dtype)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_rotary_forward_and_grads_of_x_cos_sin_match_reference(shape, dtype, gen):
    B, T, _, D = shape
    x = randn(shape, dtype, gen, grad=True)
    cos, sin = (t.requires_grad_() for t in _angles(B, T, D // 2, gen, dtype))
    dy = randn(shape, dtype, gen)
    out = rotary(x, cos, sin)
    leaves = [t.detach().float().requires_grad_() for t in (x, cos, sin)]
    ref = rotary_reference(*leaves)
    torch.testing.assert_close(out, ref.to(dtype), **TOL[dtype])
    for got, want in zip(grads_of(out, [x, cos, sin], dy), grads_of(ref, leaves, dy.float())):
        torch.testing.assert_close(got, want.to(dtype), **TOL[dtype])


def test_rotary_strided_q_view_and_broadcast_angles(gen):
    B, T, nH, D = 2, 5, 3, 16
    qkv = randn((B, T, 3 * nH * D), torch.float32, gen, grad=True)
    q = qkv[..., : nH * D].view(B, T, nH, D)  # a view into a fused projection: row stride 3*nH*D
    cos1, sin1 = _angles(1, T, D // 2, gen, torch.float32)
    cos, sin = cos1.expand(B, T, D // 2), sin1.expand(B, T, D // 2)  # same positions for every sequence: stride 0
    out = rotary(q, cos, sin)
    torch.testing.assert_close(out, rotary_reference(q, cos, sin), **TOL[torch.float32])
    dy = randn((B, T, nH, D), torch.float32, gen)
    (got,) = torch.autograd.grad(out, qkv, dy)
    (want,) = torch.autograd.grad(rotary_reference(q, cos, sin), qkv, dy)
    torch.testing.assert_close(got, want, **TOL[torch.float32])


def test_rotary_rejects_bad_shapes():
    x = torch.ones(1, 2, 3, 8, device=DEVICE)
    with pytest.raises(ValueError, match="D even"):
        rotary(torch.ones(1, 2, 3, 7, device=DEVICE), torch.ones(1, 2, 3, device=DEVICE),
               torch.ones(1, 2, 3, device=DEVICE))
    with pytest.raises(ValueError, match="cos and sin"):
        rotary(x, torch.ones(1, 2, 8, device=DEVICE), torch.ones(1, 2, 8, device=DEVICE))
