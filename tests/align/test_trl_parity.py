"""Every loss type equals TRL's value on the anchors' fixed inputs (shared/anchors/align-anchors.md section 6).

Inputs: the fixture's token-summed sequence log-probs (seed 0, B = 4 pairs; chosen lengths 4, 7, 3, 6, rejected
6, 2, 5, 3); averaged log-probs are sums / lengths. Expected values were produced by TRL 1.16.0 and 0.28.0
(`DPOTrainer._compute_loss`, `DPOTrainer.dpo_loss`, `ORPOTrainer.odds_ratio_loss`, `CPOTrainer.cpo_loss`).
"""

import pytest
import torch

from jpalign import dpo_loss, orpo_loss, orpo_odds_ratio_loss, simpo_loss

POLICY_CHOSEN = torch.tensor([-3.241539, -5.727571, -1.467557, -5.174460])
POLICY_REJECTED = torch.tensor([-6.231596, -0.203217, -5.684425, -5.638870])
REF_CHOSEN = torch.tensor([-3.518417, -3.247279, -1.683625, -3.440496])
REF_REJECTED = torch.tensor([-7.374998, -1.081236, -3.757127, -2.147358])
LEN_CHOSEN = torch.tensor([4.0, 7.0, 3.0, 6.0])
LEN_REJECTED = torch.tensor([6.0, 2.0, 5.0, 3.0])

# (loss_type, beta, label_smoothing, TRL mean, TRL per-pair or None, which TRL)
DPO_CASES = [
    ("sigmoid", 0.1, 0.0, 0.70333576, [0.737412, 0.875095, 0.591710, 0.609126], "1.16 and 0.28"),
    ("sigmoid", 0.5, 0.0, 0.85626757, [0.933062, 1.850190, 0.294483, 0.347336], "1.16 and 0.28"),
    ("sigmoid", 0.1, 0.1, 0.70252593, None, "0.28 cDPO (1.16 ignores label_smoothing for sigmoid)"),
    ("ipo", 0.1, 0.0, 24.36058235, [26.228199, 33.562752, 20.634466, 17.016916], "1.16 and 0.28, averaged"),
    ("ipo", 0.5, 0.0, 1.19586694, [1.257421, 3.216058, 0.294326, 0.015664], "1.16 and 0.28, averaged"),
    ("hinge", 0.1, 0.0, 1.00809813, None, "1.16 and 0.28"),
    ("robust", 0.1, 0.1, 0.70434797, None, "1.16 and 0.28"),
]


def _close(actual, expected):
    # TRL's float32 result vs ours from the table's 6-decimal inputs: 1e-6 relative (+1e-6 for the rounded inputs)
    torch.testing.assert_close(actual, torch.as_tensor(expected, dtype=actual.dtype), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("loss_type", "beta", "eps", "mean", "per_pair", "trl"), DPO_CASES)
def test_dpo_matches_trl(loss_type, beta, eps, mean, per_pair, trl):
    scale_c, scale_r = (LEN_CHOSEN, LEN_REJECTED) if loss_type == "ipo" else (1.0, 1.0)
    losses, chosen_rewards, rejected_rewards = dpo_loss(
        POLICY_CHOSEN / scale_c,
        POLICY_REJECTED / scale_r,
        REF_CHOSEN / scale_c,
        REF_REJECTED / scale_r,
        beta=beta,
        loss_type=loss_type,
        label_smoothing=eps,
    )
    _close(losses.mean(), mean)
    if per_pair is not None:
        _close(losses, per_pair)
    torch.testing.assert_close(chosen_rewards, beta * (POLICY_CHOSEN - REF_CHOSEN) / scale_c)
    torch.testing.assert_close(rejected_rewards, beta * (POLICY_REJECTED - REF_REJECTED) / scale_r)


def test_rpo_sigmoid_plus_half_sft_matches_trl():
    losses, _, _ = dpo_loss(POLICY_CHOSEN, POLICY_REJECTED, REF_CHOSEN, REF_REJECTED, beta=0.1)
    nll = -POLICY_CHOSEN.sum() / LEN_CHOSEN.sum()  # token-mean NLL of the chosen responses
    _close(nll, 0.78055640)
    _close(losses.mean() + 0.5 * nll, 1.09361398)  # TRL 1.16 loss_type=["sigmoid", "sft"], weights [1, 0.5]


@pytest.mark.parametrize(("beta", "gamma", "mean", "per_pair"), [
    (2.0, 1.0, 1.09480023, [1.001420, 2.517346, 0.556316, 0.304119]),
    (2.5, 0.75, 0.97708673, None),
])
def test_simpo_matches_trl_cpo(beta, gamma, mean, per_pair):
    losses, cr, rr = simpo_loss(POLICY_CHOSEN / LEN_CHOSEN, POLICY_REJECTED / LEN_REJECTED, beta=beta, gamma=gamma)
    _close(losses.mean(), mean)
    if per_pair is not None:
        _close(losses, per_pair)
    torch.testing.assert_close(cr, beta * POLICY_CHOSEN / LEN_CHOSEN)


@pytest.mark.parametrize(("beta", "mean"), [(0.1, 0.08888122), (0.25, 0.22220307)])
def test_orpo_odds_ratio_matches_trl(beta, mean):
    losses, log_odds = orpo_odds_ratio_loss(POLICY_CHOSEN / LEN_CHOSEN, POLICY_REJECTED / LEN_REJECTED, beta=beta)
    _close(losses.mean(), mean)  # TRL returns +beta log sigmoid and subtracts its mean: same number
    _close(log_odds, [0.379559, -2.471630, 1.210490, 1.400004])


def _logits_with_logps(per_token_logp: torch.Tensor) -> torch.Tensor:
    """Two-class logits whose log-softmax at class 0 equals the given log-probs: [0, log((1 - p) / p)]."""
    p = per_token_logp.double().exp()
    return torch.stack([torch.zeros_like(p), torch.log1p(-p) - p.log()], -1).float()


def test_orpo_total_with_response_nll_matches_trl():
    # every response token of a pair gets that pair's averaged log-prob: same sums, same averages as the fixture
    t = 8
    def rows(sums, lens):
        logp = torch.zeros(4, t)
        labels = torch.full((4, t), -100)
        for i, (s, n) in enumerate(zip(sums.tolist(), lens.int().tolist())):
            logp[i, t - n :] = s / n
            labels[i, t - n :] = 0
        return _logits_with_logps(logp), labels
    chosen_logits, chosen_labels = rows(POLICY_CHOSEN, LEN_CHOSEN)
    rejected_logits, rejected_labels = rows(POLICY_REJECTED, LEN_REJECTED)
    out = orpo_loss(chosen_logits, rejected_logits, chosen_labels, rejected_labels, beta=0.1)
    _close(out.nll, 0.78055640)
    _close(out.loss, 0.86943763)
    _close(out.odds_ratio_losses.mean(), 0.08888122)
