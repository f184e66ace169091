"""Tensor losses: known values, gradient directions, stability, and agreement with independent formulas."""

import math

import pytest
import torch
import torch.nn.functional as F

from jpalign import (
    dpo_loss,
    log1mexp,
    orpo_loss,
    orpo_odds_ratio_loss,
    sequence_logps,
    sft_loss,
    shift_labels,
    simpo_loss,
    uses_average_logps,
)


def _logps(seed=0, b=5):
    g = torch.Generator().manual_seed(seed)
    return [-torch.rand(b, generator=g, dtype=torch.float64) * 20 for _ in range(4)]


@pytest.mark.parametrize(
    ("loss_type", "beta", "eps", "expected"),
    [
        ("sigmoid", 0.1, 0.0, math.log(2)),
        ("sigmoid", 0.3, 0.2, math.log(2)),  # cDPO: (1-eps) log 2 + eps log 2
        ("robust", 0.1, 0.2, math.log(2)),  # ((1-eps) log 2 - eps log 2) / (1 - 2 eps)
        ("hinge", 0.1, 0.0, 1.0),
        ("ipo", 0.1, 0.0, 25.0),  # (0 - 1/(2 beta))^2
    ],
)
def test_policy_equal_to_reference_gives_known_value(loss_type, beta, eps, expected):
    pc, pr, _, _ = _logps()
    losses, cr, rr = dpo_loss(pc, pr, pc.clone(), pr.clone(), beta=beta, loss_type=loss_type, label_smoothing=eps)
    torch.testing.assert_close(losses, torch.full_like(losses, expected))
    assert not cr.any() and not rr.any()


@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo", "hinge", "robust"])
def test_gradient_raises_chosen_and_lowers_rejected(loss_type):
    pc, pr, rc, rr = _logps(1)
    pc.requires_grad_()
    pr.requires_grad_()
    eps = 0.1 if loss_type == "robust" else 0.0
    # margin d = -1: below IPO's target 1/(2 beta) and inside the hinge, so every type pushes the same way
    rc, rr = pc.detach() + 0.5, pr.detach() - 0.5
    losses, _, _ = dpo_loss(pc, pr, rc, rr, beta=0.1, loss_type=loss_type, label_smoothing=eps)
    g_c, g_r = torch.autograd.grad(losses.sum(), (pc, pr))
    assert bool((g_c < 0).all()) and bool((g_r > 0).all())


def test_sigmoid_is_independent_formula_and_decreases_with_margin():
    pc, pr, rc, rr = _logps(2)
    losses, _, _ = dpo_loss(pc, pr, rc, rr, beta=0.2)
    margin = 0.2 * ((pc - rc) - (pr - rr))
    torch.testing.assert_close(losses, torch.log1p(torch.exp(-margin)))
    wider, _, _ = dpo_loss(pc + 1, pr, rc, rr, beta=0.2)
    assert bool((wider < losses).all())


def test_simpo_known_value_and_direction():
    a = torch.tensor([-1.0, -2.0], requires_grad=True)
    b = torch.tensor([-1.5, -0.5], requires_grad=True)
    losses, _, _ = simpo_loss(a, b, beta=2.0, gamma=0.5)
    z = 2.0 * (a - b) - 0.5
    torch.testing.assert_close(losses, -F.logsigmoid(z))
    g_a, g_b = torch.autograd.grad(losses.sum(), (a, b))
    assert bool((g_a < 0).all()) and bool((g_b > 0).all())


def test_log1mexp_matches_float64_and_stays_finite():
    x = -torch.logspace(-7, 2, 200, dtype=torch.float64)
    ref = torch.log(-torch.expm1(x))  # exact in float64 over this range
    torch.testing.assert_close(log1mexp(x.float()), ref.float(), rtol=2e-6, atol=1e-7)
    naive = torch.log1p(-torch.exp(torch.tensor([-1e-9])))  # the pre-0.28 TRL / Liger formula
    assert torch.isinf(naive).all()
    assert torch.isfinite(log1mexp(torch.tensor([-1e-9, 0.0]))).all()


def test_orpo_stays_finite_for_a_confident_model():
    chosen = torch.tensor([-1e-6, -1e-9, 0.0, -0.3], requires_grad=True)
    rejected = torch.tensor([-2.0, -1e-7, -1e-9, -0.3], requires_grad=True)
    losses, log_odds = orpo_odds_ratio_loss(chosen, rejected, beta=0.1)
    assert torch.isfinite(losses).all() and torch.isfinite(log_odds).all()
    grads = torch.autograd.grad(losses.sum(), (chosen, rejected))
    assert all(torch.isfinite(g).all() for g in grads)
    torch.testing.assert_close(losses[3], torch.tensor(0.1 * math.log(2)))  # equal responses: odds ratio 1


def test_orpo_gradient_direction():
    chosen = torch.tensor([-1.2, -0.4], requires_grad=True)
    rejected = torch.tensor([-0.9, -0.8], requires_grad=True)
    losses, _ = orpo_odds_ratio_loss(chosen, rejected, beta=0.1)
    g_c, g_r = torch.autograd.grad(losses.sum(), (chosen, rejected))
    assert bool((g_c < 0).all()) and bool((g_r > 0).all())


def test_orpo_nll_span_option():
    torch.manual_seed(3)
    logits_c, logits_r = torch.randn(2, 6, 9), torch.randn(2, 6, 9)
    full = torch.randint(0, 9, (2, 6))
    response = full.clone()
    response[:, :3] = -100  # prompt
    rejected = torch.randint(0, 9, (2, 6))
    rejected[:, :3] = -100
    on_response = orpo_loss(logits_c, logits_r, response, rejected)
    on_all = orpo_loss(logits_c, logits_r, response, rejected, nll_labels=full)
    torch.testing.assert_close(on_response.nll, F.cross_entropy(logits_c.flatten(0, 1), response.flatten()))
    torch.testing.assert_close(on_all.nll, F.cross_entropy(logits_c.flatten(0, 1), full.flatten()))
    torch.testing.assert_close(on_all.odds_ratio_losses, on_response.odds_ratio_losses)


@pytest.mark.parametrize("z_loss", [0.0, 1e-3])
def test_sft_loss_matches_cross_entropy(z_loss):
    torch.manual_seed(4)
    logits = torch.randn(3, 7, 11)
    labels = torch.randint(0, 11, (3, 7))
    labels[0, :4] = -100
    expected = F.cross_entropy(logits.flatten(0, 1), labels.flatten())
    mask = labels != -100
    expected = expected + z_loss * (torch.logsumexp(logits, -1)[mask] ** 2).mean()
    torch.testing.assert_close(sft_loss(logits, labels, z_loss=z_loss), expected)
    per_token = sft_loss(logits, labels, z_loss=z_loss, reduction="none")
    torch.testing.assert_close(sft_loss(logits, labels, z_loss=z_loss, num_items=100), per_token.sum() / 100)


def test_shift_labels_respects_packed_boundaries():
    labels = torch.tensor([[5, 6, 7, 8, 9, 10]])
    pos = torch.tensor([[0, 1, 2, 0, 1, 2]])
    assert shift_labels(labels).tolist() == [[6, 7, 8, 9, 10, -100]]
    assert shift_labels(labels, pos).tolist() == [[6, 7, -100, 9, 10, -100]]


def test_sequence_logps_average_basis():
    assert uses_average_logps("ipo") and uses_average_logps("orpo") and not uses_average_logps("sigmoid")
    with pytest.raises(ValueError, match="unknown loss_type"):
        uses_average_logps("kto")
    logits = torch.zeros(1, 4, 8)
    labels = torch.tensor([[-100, 1, 2, 3]])
    torch.testing.assert_close(sequence_logps(logits, labels, average=True), torch.tensor([-math.log(8)]))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"loss_type": "kto"}, "loss_type"),
        ({"label_smoothing": 0.5}, "label_smoothing"),
        ({"beta": 0.0}, "beta"),
    ],
)
def test_dpo_rejects_bad_arguments(kwargs, match):
    pc, pr, rc, rr = _logps()
    with pytest.raises(ValueError, match=match):
        dpo_loss(pc, pr, rc, rr, **kwargs)


def test_sft_rejects_bad_arguments():
    with pytest.raises(ValueError, match="reduction"):
        sft_loss(torch.zeros(1, 2, 3), torch.zeros(1, 2, dtype=torch.long), reduction="avg")
    with pytest.raises(ValueError, match="do not align"):
        sft_loss(torch.zeros(1, 2, 3), torch.zeros(1, 3, dtype=torch.long))
