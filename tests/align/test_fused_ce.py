"""fused_linear_cross_entropy equals the unfused path (full logits + torch cross-entropy): loss and gradients."""

import pytest
import torch
import torch.nn.functional as F

from jpalign import fused_linear_cross_entropy, fused_linear_cross_entropy_reference, fused_token_logps


def _inputs(n=45, h=24, v=67, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(n, h, generator=g).to(dtype).requires_grad_()
    weight = (torch.randn(v, h, generator=g) * 0.3).to(dtype).requires_grad_()
    labels = torch.randint(0, v, (n,), generator=g)
    labels[::4] = -100
    return hidden, weight, labels


def _grads(loss, *xs):
    return torch.autograd.grad(loss if loss.dim() == 0 else (loss * torch.linspace(0.5, 2, loss.numel())).sum(), xs)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("z_loss", [0.0, 1e-2])
@pytest.mark.parametrize("chunk_size", [1, 7, 1000])
def test_equals_torch_cross_entropy(reduction, z_loss, chunk_size):
    hidden, weight, labels = _inputs()
    kw = {"chunk_size": chunk_size, "z_loss": z_loss, "reduction": reduction}
    fused = fused_linear_cross_entropy(hidden, weight, labels, **kw)
    logits = hidden @ weight.t()
    ref = F.cross_entropy(logits, labels, reduction=reduction)
    if z_loss:
        lse = torch.logsumexp(logits, -1) * (labels != -100)
        extra = z_loss * lse.square()
        ref = ref + {"mean": extra.sum() / (labels != -100).sum(), "sum": extra.sum(), "none": extra}[reduction]
    torch.testing.assert_close(fused, ref, rtol=1e-5, atol=1e-6)
    for a, b in zip(_grads(fused, hidden, weight), _grads(ref, hidden, weight)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_leading_dims_and_scaled_upstream_gradient():
    hidden, weight, labels = _inputs(n=2 * 13)
    h3, y3 = hidden.view(2, 13, -1), labels.view(2, 13)
    fused = 3.0 * fused_linear_cross_entropy(h3, weight, y3, chunk_size=5)
    ref = 3.0 * fused_linear_cross_entropy_reference(h3, weight, y3)
    torch.testing.assert_close(fused, ref)
    for a, b in zip(_grads(fused, hidden, weight), _grads(ref, hidden, weight)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    none = fused_linear_cross_entropy(h3, weight, y3, reduction="none")
    assert none.shape == (2, 13) and bool((none[y3 == -100] == 0).all())


def test_bf16_hidden_accumulates_in_fp32():
    hidden, weight, labels = _inputs(dtype=torch.bfloat16)
    fused = fused_linear_cross_entropy(hidden, weight, labels, chunk_size=8)
    assert fused.dtype == torch.float32
    ref = fused_linear_cross_entropy_reference(hidden, weight, labels)  # fp32 logits from the bf16 values
    torch.testing.assert_close(fused, ref, rtol=1e-5, atol=1e-6)
    gh, gw = _grads(fused, hidden, weight)
    rh, rw = _grads(ref, hidden, weight)
    assert gh.dtype == torch.bfloat16 and gw.dtype == torch.bfloat16
    torch.testing.assert_close(gh, rh)
    torch.testing.assert_close(gw, rw)


def test_mixed_bf16_hidden_fp32_weight():
    hidden, weight, labels = _inputs()
    hb = hidden.detach().bfloat16().requires_grad_()
    fused = fused_linear_cross_entropy(hb, weight, labels, chunk_size=9)
    ref = fused_linear_cross_entropy_reference(hb, weight, labels)
    torch.testing.assert_close(fused, ref, rtol=1e-5, atol=1e-6)
    gw, rw = _grads(fused, weight)[0], _grads(ref, weight)[0]
    assert gw.dtype == torch.float32
    torch.testing.assert_close(gw, rw, rtol=1e-5, atol=1e-6)


def test_no_grad_and_all_ignored():
    hidden, weight, labels = _inputs()
    with torch.no_grad():
        loss = fused_linear_cross_entropy(hidden, weight, labels)
    torch.testing.assert_close(loss, fused_linear_cross_entropy_reference(hidden, weight, labels).detach())
    empty = torch.full_like(labels, -100)
    loss = fused_linear_cross_entropy(hidden, weight, empty)
    assert loss.item() == 0.0
    gh, gw = torch.autograd.grad(loss, (hidden, weight))
    assert not gh.any() and not gw.any()


def test_only_weight_requires_grad():
    hidden, weight, labels = _inputs()
    loss = fused_linear_cross_entropy(hidden.detach(), weight, labels, chunk_size=4)
    ref = fused_linear_cross_entropy_reference(hidden.detach(), weight, labels)
    torch.testing.assert_close(torch.autograd.grad(loss, weight)[0], torch.autograd.grad(ref, weight)[0])


def test_token_logps_match_log_softmax():
    hidden, weight, labels = _inputs()
    logp, lse = fused_token_logps(hidden, weight, labels, chunk_size=6)
    logits = hidden @ weight.t()
    mask = labels != -100
    ref = torch.log_softmax(logits, -1).gather(1, labels.clamp(min=0)[:, None]).squeeze(1) * mask
    torch.testing.assert_close(logp, ref)
    torch.testing.assert_close(lse, torch.logsumexp(logits, -1) * mask)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"reduction": "avg"}, "reduction"),
        ({"chunk_size": 0}, "chunk_size"),
    ],
)
def test_bad_arguments(kwargs, match):
    hidden, weight, labels = _inputs()
    with pytest.raises(ValueError, match=match):
        fused_linear_cross_entropy(hidden, weight, labels, **kwargs)


def test_bad_shapes_and_labels():
    hidden, weight, labels = _inputs()
    with pytest.raises(ValueError, match="hidden size"):
        fused_linear_cross_entropy(hidden[:, :5], weight, labels)
    with pytest.raises(ValueError, match="do not align"):
        fused_linear_cross_entropy(hidden, weight, labels[:-1])
    bad = labels.clone()
    bad[1] = weight.shape[0]
    with pytest.raises(ValueError, match="labels must lie"):
        fused_linear_cross_entropy(hidden, weight, bad)
