"""The debug model gives the same logits, losses and gradients with kernels="torch" and kernels="triton"; the
dtype handling both paths share (autocast, a low-precision sublayer onto the fp32 residual stream)."""

import dataclasses

import pytest
import torch
from kernel_cases import DEVICE

from jpmoe import ModelConfig
from jpmoe.kernels.dispatch import KERNELS
from jpmoe.model import Transformer


def _run(cfg: ModelConfig, state, ids, attention_mask):
    model = Transformer(cfg).to(DEVICE)
    model.load_state_dict(state)
    out = model(ids, attention_mask=attention_mask)
    loss = out.logits.float().square().mean() + out.aux_loss  # touches every logit and the router losses
    loss.backward()
    return out, {n: p.grad for n, p in model.named_parameters()}


@pytest.mark.parametrize("preset, padded", [("debug", False), ("debug", True), ("debug-dense", False)])
def test_debug_model_logits_and_grads_agree_between_torch_and_triton(preset, padded, gen):
    base = ModelConfig.preset(preset, kernels="torch", init_std=0.2)  # large enough that routing is not uniform
    torch.manual_seed(0)
    state = Transformer(base).state_dict()
    ids = torch.randint(0, base.vocab_size, (2, 7), generator=gen).to(DEVICE)
    mask = None
    if padded:  # left padding on the first row: the router statistics skip the padded tokens
        mask = torch.ones(2, 7, dtype=torch.long, device=DEVICE)
        mask[0, :2] = 0
    ref, ref_grads = _run(base, state, ids, mask)
    got, grads = _run(dataclasses.replace(base, kernels="triton"), state, ids, mask)
    torch.testing.assert_close(got.logits, ref.logits, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(got.aux_loss, ref.aux_loss, atol=1e-6, rtol=1e-5)
    if ref.expert_load is not None:
        assert torch.equal(got.expert_load, ref.expert_load)  # same routing decisions in every layer
    assert grads.keys() == ref_grads.keys()
    for name, g in grads.items():
        torch.testing.assert_close(g, ref_grads[name], atol=1e-5, rtol=1e-4, msg=lambda m, n=name: f"{n}: {m}")


def test_moe_mlp_under_autocast_computes_in_the_autocast_dtype(gen):
    """Custom autograd Functions are not autocast: the dispatch casts as F.linear would, so a bf16/fp16 autocast
    training step neither runs the expert GEMMs in fp32 (triton) nor fails on mixed dtypes (torch). fp16 here:
    the interpreter cannot do bf16."""
    T, E, K, H, inter = 9, 4, 2, 32, 48
    x = torch.randn(T, H, generator=gen).to(DEVICE)
    w_gu = (torch.randn(E, 2 * inter, H, generator=gen) * 0.1).to(DEVICE)
    w_down = (torch.randn(E, H, inter, generator=gen) * 0.1).to(DEVICE)
    weights, experts = KERNELS["torch"].route(torch.randn(T, E, generator=gen).to(DEVICE), K)
    want = KERNELS["torch"].moe_mlp(x.half(), w_gu.half(), w_down.half(), weights, experts)
    for backend in ("triton", "torch"):
        xi = x.clone().requires_grad_()
        with torch.autocast(DEVICE, dtype=torch.float16):
            got = KERNELS[backend].moe_mlp(xi, w_gu, w_down, weights, experts)
        assert got.dtype == torch.float16
        torch.testing.assert_close(got, want, atol=2e-3, rtol=2e-3)
        got.float().sum().backward()  # the backward runs outside autocast on fp16 saved tensors
        assert xi.grad.dtype == torch.float32 and torch.isfinite(xi.grad).all()


def test_rms_norm_promotes_a_low_precision_sublayer_output_onto_the_fp32_residual_stream(gen):
    """Under autocast the attention/MLP output is fp16/bf16 while the residual stream stays fp32: both paths add
    them in fp32, as x + residual does in the reference."""
    x = torch.randn(5, 32, generator=gen).to(DEVICE, torch.float16).requires_grad_()
    res = torch.randn(5, 32, generator=gen).to(DEVICE).requires_grad_()
    w = torch.randn(32, generator=gen).to(DEVICE)
    want_y, want_s = KERNELS["torch"].rms_norm(x.float(), w, 1e-5, res.float())
    for backend in ("torch", "triton"):
        y, s = KERNELS[backend].rms_norm(x, w, 1e-5, res)
        assert y.dtype == s.dtype == torch.float32
        torch.testing.assert_close(s, want_s)
        torch.testing.assert_close(y, want_y, atol=1e-5, rtol=1e-4)
        (gx, gr) = torch.autograd.grad((y.sum() + s.sum()), (x, res))
        assert gx.dtype == torch.float16 and gr.dtype == torch.float32
