"""train_step: accumulation equals the full batch, clipping, loss-spike skipping."""

from __future__ import annotations

import math

import pytest
import torch

from jpmoe.train import SpikeDetector, build_scheduler, expert_load_metrics, train_step


def make(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Linear(6, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    return model, opt, build_scheduler(opt, kind="constant", warmup=1, total=10)


def mse(model):
    return lambda xy: (torch.nn.functional.mse_loss(model(xy[0]), xy[1]), {"aux": torch.tensor(1.0)})


def test_accumulation_equals_one_big_batch():
    x, y = torch.randn(8, 6), torch.randn(8, 3)
    m1, o1, s1 = make()
    m2, o2, s2 = make()
    r1 = train_step(m1, o1, s1, [(x, y)], mse(m1), max_grad_norm=0)
    r2 = train_step(m2, o2, s2, [(x[:4], y[:4]), (x[4:], y[4:])], mse(m2), max_grad_norm=0)
    assert math.isclose(r1["loss"], r2["loss"], rel_tol=1e-6)
    assert math.isclose(r1["grad_norm"], r2["grad_norm"], rel_tol=1e-5)
    torch.testing.assert_close(m1.weight, m2.weight)
    assert r2["aux"] == 1.0 and r2["skipped"] == 0.0


@pytest.mark.filterwarnings("ignore:Seems like `optimizer.step\\(\\)` has been overridden")
def test_clipping_reports_the_norm_before_clipping():
    model, opt, sched = make()
    x, y = torch.randn(8, 6), 100 * torch.randn(8, 3)
    loss_fn = mse(model)
    loss, _ = loss_fn((x, y))
    loss.backward()
    want = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))
    opt.zero_grad()
    seen = {}
    orig = opt.step

    def spy():
        seen["norm"] = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))
        orig()

    opt.step = spy
    result = train_step(model, opt, sched, [(x, y)], loss_fn, max_grad_norm=0.5)
    assert math.isclose(result["grad_norm"], float(want), rel_tol=1e-5)
    assert math.isclose(float(seen["norm"]), 0.5, rel_tol=1e-4)


def test_spike_skips_the_update():
    model, opt, sched = make()
    spikes = SpikeDetector(window=20, sigma=3.0, min_delta=0.5, min_history=5)
    for loss in (2.0, 2.1, 1.9, 2.0, 2.05):
        spikes.update(loss)
    before = [p.detach().clone() for p in model.parameters()]
    big = lambda _: (torch.tensor(9.0, requires_grad=True) * 1.0 + 0 * model.weight.sum(), {})
    result = train_step(model, opt, sched, [None], big, spikes=spikes)
    assert result["skipped"] == 1.0
    for b, p in zip(before, model.parameters()):
        torch.testing.assert_close(b, p)
    assert len(spikes.history) == 5  # a spike does not enter the window
    nan = lambda _: (torch.tensor(float("nan"), requires_grad=True) + 0 * model.weight.sum(), {})
    assert train_step(model, opt, sched, [None], nan, spikes=spikes)["skipped"] == 1.0
    fine = lambda _: (torch.tensor(2.02) + 0 * model.weight.sum(), {})
    assert train_step(model, opt, sched, [None], fine, spikes=spikes)["skipped"] == 0.0


def test_spike_detector_state_round_trips():
    a = SpikeDetector(min_history=2)
    for v in (1.0, 2.0, 3.0):
        a.update(v)
    b = SpikeDetector(min_history=2)
    b.load_state_dict(a.state_dict())
    assert list(b.history) == [1.0, 2.0, 3.0] and b.is_spike(50.0) and not b.is_spike(2.5)


def test_expert_load_metrics():
    load = torch.tensor([[30.0, 10.0, 0.0, 0.0], [10.0, 10.0, 10.0, 10.0]])
    m = expert_load_metrics(load)
    assert m["moe/imbalance_l0"] == 3.0 and m["moe/imbalance_l1"] == 1.0
    assert m["moe/load_l0_e0"] == 0.75
