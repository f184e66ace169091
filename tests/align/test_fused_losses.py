"""Fused (token-chunked) SFT, DPO, SimPO and ORPO equal the unfused losses on hidden @ weight.T: values and grads."""

import pytest
import torch

from jpalign import (
    dpo_loss,
    fused_dpo_loss,
    fused_orpo_loss,
    fused_sequence_logps,
    fused_sft_loss,
    fused_simpo_loss,
    orpo_loss,
    sequence_logps,
    sft_loss,
    simpo_loss,
    uses_average_logps,
)

B, T, H, V = 3, 11, 16, 41
TOL = {"rtol": 1e-5, "atol": 1e-6}


def _pairs(seed=0):
    """hidden (2B, T, H) chosen rows first, weight (V, H), labels with prompts and padding ignored."""
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(2 * B, T, H, generator=g).requires_grad_()
    weight = (torch.randn(V, H, generator=g) * 0.4).requires_grad_()
    labels = torch.randint(0, V, (2 * B, T), generator=g)
    for row, (prompt, length) in enumerate([(2, 9), (4, 11), (1, 5), (2, 7), (4, 10), (1, 11)]):
        labels[row, :prompt] = -100
        labels[row, length:] = -100
    return hidden, weight, labels


def _grads(loss, hidden, weight):
    return torch.autograd.grad(loss, (hidden, weight))


def _assert_same(fused_loss, ref_loss, hidden, weight):
    torch.testing.assert_close(fused_loss, ref_loss, **TOL)
    for a, b in zip(_grads(fused_loss, hidden, weight), _grads(ref_loss, hidden, weight)):
        torch.testing.assert_close(a, b, **TOL)


@pytest.mark.parametrize("average", [False, True])
def test_sequence_logps_rows_and_segments(average):
    hidden, weight, labels = _pairs()
    logits = hidden @ weight.t()
    ref = sequence_logps(logits, labels, average=average)
    fused = fused_sequence_logps(hidden, weight, labels, average=average, chunk_size=5)
    torch.testing.assert_close(fused, ref, **TOL)
    segments = torch.arange(2 * B).unsqueeze(1).expand(-1, T)  # one packed row holding all sequences
    packed = fused_sequence_logps(hidden.reshape(1, -1, H), weight, labels.reshape(1, -1), average=average,
                                  segment_ids=segments.reshape(1, -1), chunk_size=7)
    torch.testing.assert_close(packed, ref, **TOL)


@pytest.mark.parametrize(("loss_type", "eps"), [("sigmoid", 0.0), ("sigmoid", 0.1), ("ipo", 0.0),
                                                 ("hinge", 0.0), ("robust", 0.1)])
@pytest.mark.parametrize(("chunk_size", "strategy"), [(3, "recompute"), (64, "recompute"), (3, "accumulate"),
                                                      (64, "accumulate")])
def test_dpo_fused_equals_unfused(loss_type, eps, chunk_size, strategy):
    hidden, weight, labels = _pairs()
    average = uses_average_logps(loss_type)
    g = torch.Generator().manual_seed(9)
    ref_hidden, ref_weight = torch.randn(2 * B, T, H, generator=g), torch.randn(V, H, generator=g) * 0.4
    ref_logps = sequence_logps(ref_hidden @ ref_weight.t(), labels, average=average)
    kw = {"beta": 0.1, "loss_type": loss_type, "label_smoothing": eps}
    fused = fused_dpo_loss(hidden, weight, labels, ref_hidden=ref_hidden, ref_weight=ref_weight,
                           chunk_size=chunk_size, strategy=strategy, **kw)
    pre = fused_dpo_loss(hidden, weight, labels, ref_chosen_logps=ref_logps[:B], ref_rejected_logps=ref_logps[B:],
                         chunk_size=chunk_size, strategy=strategy, **kw)
    policy = sequence_logps(hidden @ weight.t(), labels, average=average)
    losses, cr, rr = dpo_loss(policy[:B], policy[B:], ref_logps[:B], ref_logps[B:], **kw)
    torch.testing.assert_close(fused.losses, losses, **TOL)
    torch.testing.assert_close(pre.loss, fused.loss)
    torch.testing.assert_close(fused.chosen_rewards, cr, **TOL)
    torch.testing.assert_close(fused.rejected_rewards, rr, **TOL)
    _assert_same(fused.loss, losses.mean(), hidden, weight)


@pytest.mark.parametrize("strategy", ["recompute", "accumulate"])
def test_dpo_with_rpo_nll_term(strategy):
    hidden, weight, labels = _pairs(1)
    ref = torch.zeros(2 * B)
    fused = fused_dpo_loss(hidden, weight, labels, ref_chosen_logps=ref[:B], ref_rejected_logps=ref[B:],
                           nll_weight=0.5, chunk_size=4, strategy=strategy)
    logits = hidden @ weight.t()
    policy = sequence_logps(logits, labels)
    losses, _, _ = dpo_loss(policy[:B], policy[B:], ref[:B], ref[B:])
    _assert_same(fused.loss, losses.mean() + 0.5 * sft_loss(logits[:B], labels[:B]), hidden, weight)


@pytest.mark.parametrize("nll_weight", [0.0, 1.0])
@pytest.mark.parametrize("strategy", ["recompute", "accumulate"])
def test_simpo_fused_equals_unfused(nll_weight, strategy):
    hidden, weight, labels = _pairs(2)
    fused = fused_simpo_loss(hidden, weight, labels, beta=2.0, gamma=0.7, label_smoothing=0.05,
                             nll_weight=nll_weight, chunk_size=6, strategy=strategy)
    logits = hidden @ weight.t()
    avg = sequence_logps(logits, labels, average=True)
    losses, _, _ = simpo_loss(avg[:B], avg[B:], beta=2.0, gamma=0.7, label_smoothing=0.05)
    _assert_same(fused.loss, losses.mean() + nll_weight * sft_loss(logits[:B], labels[:B]), hidden, weight)


@pytest.mark.parametrize("with_prompt", [False, True])
def test_orpo_fused_equals_unfused(with_prompt):
    hidden, weight, labels = _pairs(3)
    full = torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(5))
    full = torch.where(labels[:B] != -100, labels[:B], full)  # the prompt kept, the response as in labels
    full[:, -1] = labels[:B, -1]  # padding stays ignored where the row is padded
    nll_labels = full if with_prompt else None
    fused = fused_orpo_loss(hidden, weight, labels, beta=0.2, nll_labels=nll_labels, chunk_size=5)
    logits = hidden @ weight.t()
    ref = orpo_loss(logits[:B], logits[B:], labels[:B], labels[B:], beta=0.2, nll_labels=nll_labels)
    torch.testing.assert_close(fused.losses, ref.odds_ratio_losses, **TOL)
    torch.testing.assert_close(fused.nll, ref.nll.detach(), **TOL)
    _assert_same(fused.loss, ref.loss, hidden, weight)


def test_orpo_rejects_inconsistent_nll_labels():
    hidden, weight, labels = _pairs()
    bad = labels[:B].clone()
    bad[labels[:B] != -100] = (bad[labels[:B] != -100] + 1) % V
    with pytest.raises(ValueError, match="nll_labels"):
        fused_orpo_loss(hidden, weight, labels, nll_labels=bad)


@pytest.mark.parametrize("z_loss", [0.0, 1e-3])
def test_sft_fused_equals_unfused(z_loss):
    hidden, weight, labels = _pairs(4)
    fused = fused_sft_loss(hidden, weight, labels, z_loss=z_loss, chunk_size=8)
    _assert_same(fused, sft_loss(hidden @ weight.t(), labels, z_loss=z_loss), hidden, weight)
    fused_n = fused_sft_loss(hidden, weight, labels, num_items=50)
    _assert_same(fused_n, sft_loss(hidden @ weight.t(), labels, num_items=50), hidden, weight)


@pytest.mark.parametrize("strategy", ["recompute", "accumulate"])
def test_bf16_dpo_close_to_fp32_logits_of_the_same_values(strategy):
    hidden, weight, labels = _pairs(6)
    hb, wb = hidden.detach().bfloat16().requires_grad_(), weight.detach().bfloat16().requires_grad_()
    ref0 = torch.zeros(B)
    fused = fused_dpo_loss(hb, wb, labels, ref_chosen_logps=ref0, ref_rejected_logps=ref0, chunk_size=4,
                           strategy=strategy)
    policy = sequence_logps(hb.float() @ wb.float().t(), labels)
    losses, _, _ = dpo_loss(policy[:B], policy[B:], ref0, ref0)
    torch.testing.assert_close(fused.loss, losses.mean(), **TOL)
    gh, gw = torch.autograd.grad(fused.loss, (hb, wb))
    assert gh.dtype == torch.bfloat16 and gw.dtype == torch.bfloat16 and torch.isfinite(gw.float()).all()


def test_pair_layout_and_reference_errors():
    hidden, weight, labels = _pairs()
    with pytest.raises(ValueError, match="chosen rows first"):
        zero = torch.zeros(2)
        fused_dpo_loss(hidden[:5], weight, labels[:5], ref_chosen_logps=zero, ref_rejected_logps=zero)
    with pytest.raises(ValueError, match="ref_hidden"):
        fused_dpo_loss(hidden, weight, labels)


def test_strategies_agree_and_auto_rule():
    from jpalign.fused_segments import accumulate_pays

    assert accumulate_pays(2, 4096, 1024) and not accumulate_pays(2, 4096, 4096)
    hidden, weight, labels = _pairs(7)
    ref = torch.zeros(B)
    outs = [fused_dpo_loss(hidden, weight, labels, ref_chosen_logps=ref, ref_rejected_logps=ref, strategy=s)
            for s in ("recompute", "accumulate", "auto")]
    grads = [torch.autograd.grad(o.loss, (hidden, weight)) for o in outs]
    for o, g in zip(outs[1:], grads[1:]):
        torch.testing.assert_close(o.loss, outs[0].loss, **TOL)
        for a, b in zip(g, grads[0]):
            torch.testing.assert_close(a, b, **TOL)
    with pytest.raises(ValueError, match="strategy"):
        fused_dpo_loss(hidden, weight, labels, ref_chosen_logps=ref, ref_rejected_logps=ref, strategy="fast")
    with torch.no_grad():  # forward only: no accumulators are built
        out = fused_dpo_loss(hidden, weight, labels, ref_chosen_logps=ref, ref_rejected_logps=ref,
                             strategy="accumulate")
    torch.testing.assert_close(out.loss, outs[0].loss.detach(), **TOL)
