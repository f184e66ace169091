"""The torch fast path of the expert MLP against the reference oracle: output and every gradient."""

import pytest
import torch

import jpmoe.grouped_mlp as gm
from jpmoe.kernels.moe_mlp import moe_mlp_reference


def inputs(T, E, K, H, inter, dtype=torch.float32, skip_expert=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, H, generator=g)
    w_gate_up = torch.randn(E, 2 * inter, H, generator=g) * 0.2
    w_down = torch.randn(E, H, inter, generator=g) * 0.2
    logits = torch.randn(T, E, generator=g)
    if skip_expert is not None:
        logits[:, skip_expert] = -1e9  # no token chooses it: its gradients must be exactly zero
    weights, experts = logits.softmax(-1).topk(K, -1)
    return [t.to(dtype) for t in (x, w_gate_up, w_down)] + [weights, experts]


@pytest.mark.parametrize("chunk", [4096, 8, 1])
@pytest.mark.parametrize("T,E,K,H,inter", [(37, 5, 2, 24, 20), (1, 3, 1, 8, 6), (50, 8, 3, 16, 12)])
def test_forward_and_grads_match_reference(T, E, K, H, inter, chunk, monkeypatch):
    monkeypatch.setattr(gm, "CHUNK_ROWS", chunk)
    args = inputs(T, E, K, H, inter, skip_expert=E - 1)
    results = []
    for fn in (gm.grouped_moe_mlp, moe_mlp_reference):
        leaves = [a.clone().requires_grad_(a.is_floating_point()) for a in args]
        out = fn(*leaves)
        grad_out = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
        results.append([out, *torch.autograd.grad(out, leaves[:4], grad_out)])
    for name, a, b in zip(["out", "x", "w_gate_up", "w_down", "weights"], *results):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5, msg=name)
    assert torch.count_nonzero(results[0][2][E - 1]) == 0 and torch.count_nonzero(results[0][3][E - 1]) == 0


def test_bf16_is_close_to_fp32_reference():
    args = inputs(300, 8, 2, 64, 96)
    ref = moe_mlp_reference(*args)
    low = gm.grouped_moe_mlp(*[a.bfloat16() for a in args[:3]], *args[3:])  # routing weights stay fp32
    assert low.dtype == torch.bfloat16
    assert (low.float() - ref).abs().max() <= 2e-2 * ref.abs().max()


def test_row_buckets():
    sizes = list(range(0, 5000, 7))
    buckets = [gm.align_rows(n) for n in sizes]
    assert all(b >= n and b - n <= max(31, n // 16) for n, b in zip(sizes, buckets))
    assert len(set(buckets)) < len(sizes) / 6


@pytest.mark.parametrize("chunk", [4096, 8])
def test_inference_path_matches_reference(chunk, monkeypatch):
    monkeypatch.setattr(gm, "CHUNK_ROWS", chunk)
    args = inputs(41, 6, 2, 16, 12, skip_expert=2)
    with torch.no_grad():
        torch.testing.assert_close(gm.grouped_moe_mlp(*args), moe_mlp_reference(*args), atol=1e-5, rtol=1e-5)
