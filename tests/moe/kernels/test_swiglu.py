import pytest
import torch
from kernel_cases import DEVICE, DTYPES, TOL, grads_of, randn

from jpmoe.kernels.swiglu import swiglu, swiglu_reference


@pytest.mark.parametrize("shape", [(1, 1), (3, 7, 131), (2, 1100)])  # 1100 > one 1024 block: two column blocks
@pytest.mark.parametrize("dtype", DTYPES)
def test_swiglu_forward_and_grads_match_reference(shape, dtype, gen):
    gate = randn(shape, dtype, gen, scale=2.0, grad=True)
    up = randn(shape, dtype, gen, grad=True)
    dout = randn(shape, dtype, gen)
    out = swiglu(gate, up)
    ref = swiglu_reference(gate.float(), up.float())  # fp32 oracle
    torch.testing.assert_close(out, ref.to(dtype), **TOL[dtype])
    got = grads_of(out, [gate, up], dout)
    want = grads_of(ref, [gate, up], dout.float())
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w.to(dtype), **TOL[dtype])


def test_swiglu_reads_strided_halves_of_a_fused_projection(gen):
    h = randn((5, 2 * 37), torch.float32, gen, grad=True)  # (T, 2I): gate columns then up columns
    gate, up = h[:, :37], h[:, 37:]  # non-contiguous views, row stride 2I
    out = swiglu(gate, up)
    torch.testing.assert_close(out, swiglu_reference(gate, up), **TOL[torch.float32])
    dout = randn((5, 37), torch.float32, gen)
    (got,) = torch.autograd.grad(out, h, dout)
    (want,) = torch.autograd.grad(swiglu_reference(gate, up), h, dout)
    torch.testing.assert_close(got, want, **TOL[torch.float32])


def test_swiglu_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="must match"):
        swiglu(torch.zeros(2, 3, device=DEVICE), torch.zeros(2, 4, device=DEVICE))
