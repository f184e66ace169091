import math

import torch

from jpalign import sequence_logps


def test_uniform_logits_give_minus_n_log_v():
    V, T = 7, 5
    logits = torch.zeros(2, T, V)
    labels = torch.randint(0, V, (2, T))
    labels[1, :2] = -100
    out = sequence_logps(logits, labels)
    torch.testing.assert_close(out, torch.tensor([-T * math.log(V), -(T - 2) * math.log(V)]))
    avg = sequence_logps(logits, labels, average=True)
    torch.testing.assert_close(avg, torch.full((2,), -math.log(V)))


def test_matches_cross_entropy():
    torch.manual_seed(0)
    logits = torch.randn(3, 6, 11)
    labels = torch.randint(0, 11, (3, 6))
    labels[0, 0] = -100
    ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, reduction="none").sum(-1)
    torch.testing.assert_close(sequence_logps(logits, labels), -ce)
