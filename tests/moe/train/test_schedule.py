"""Learning-rate schedules against their formulas, and AdamW's parameter groups."""

from __future__ import annotations

import math

import pytest
import torch

from jpmoe.train import build_optimizer, build_scheduler, lr_factor


def test_wsd_warmup_stable_decay():
    f = lambda s: lr_factor(s, kind="wsd", warmup=10, total=100, decay_frac=0.2, min_lr_ratio=0.1)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == f(50) == f(79) == 1.0
    assert f(80) == pytest.approx(1.0) and f(90) == pytest.approx(0.55) and f(100) == pytest.approx(0.1)


def test_cosine_formula():
    f = lambda s: lr_factor(s, kind="cosine", warmup=10, total=110, min_lr_ratio=0.1)
    for s in (10, 35, 60, 110):
        progress = (s - 10) / 100
        assert f(s) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def test_unknown_schedule():
    with pytest.raises(ValueError, match="unknown schedule 'linear'"):
        build_scheduler(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0), kind="linear", warmup=1,
                        total=2)


@pytest.mark.parametrize("bad", [dict(decay_frac=2.0), dict(decay_frac=0.0), dict(min_lr_ratio=1.5),
                                 dict(warmup=-1)])
def test_out_of_range_schedule_values_are_errors(bad):
    """decay_frac 2 made WSD start decaying before step 0; every such value is refused when the scheduler is built."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    with pytest.raises(ValueError, match="need 0 < decay_frac <= 1"):
        build_scheduler(opt, **({"kind": "wsd", "warmup": 1, "total": 10} | bad))


def test_scheduler_drives_the_optimiser():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    opt = build_optimizer(model, lr=2.0, weight_decay=0.1, betas=(0.9, 0.95))
    decayed = {id(p) for p in opt.param_groups[0]["params"]}
    assert decayed == {id(model[0].weight)}  # biases and norm gains are not decayed
    assert opt.param_groups[1]["weight_decay"] == 0.0
    sched = build_scheduler(opt, kind="wsd", warmup=4, total=10)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([2.0 * lr_factor(s, kind="wsd", warmup=4, total=10) for s in range(10)])
