"""The torch fast path of the expert MLP against the reference oracle: output and every gradient."""

import pytest
import torch

import jpmoe.kernels.moe_mlp_torch as gm
import jpmoe.kernels.moe_mlp_torch_layout as cl
import jpmoe.kernels.moe_mlp_torch_workspace as cw
from jpmoe.kernels.moe_mlp import moe_mlp_reference


def inputs(T, E, K, H, inter, dtype=torch.float32, skip_expert=None, seed=0, skew=0.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, H, generator=g)
    w_gate_up = torch.randn(E, 2 * inter, H, generator=g) * 0.2
    w_down = torch.randn(E, H, inter, generator=g) * 0.2
    logits = torch.randn(T, E, generator=g) + skew * torch.arange(E)  # skew > 0: later experts get more tokens
    if skip_expert is not None:
        logits[:, skip_expert] = -1e9  # no token chooses it: its gradients must be exactly zero
    weights, experts = logits.softmax(-1).topk(K, -1)
    return [t.to(dtype) for t in (x, w_gate_up, w_down)] + [weights, experts]


def outputs_and_grads(fn, args, need=(True, True, True, True)):
    leaves = [a.clone().requires_grad_(a.is_floating_point() and n) for a, n in zip(args, (*need, False))]
    out = fn(*leaves)
    grad_out = torch.randn(out.shape, generator=torch.Generator().manual_seed(1)).to(out.dtype)
    wanted = [t for t in leaves[:4] if t.requires_grad]
    return [out, *torch.autograd.grad(out, wanted, grad_out)]


@pytest.fixture
def small_pool(monkeypatch):
    """Every buffer comes from the pool (so small tests exercise its reuse), starting empty."""
    monkeypatch.setattr(cw, "MIN_POOLED_BYTES", 0)
    monkeypatch.setattr(cw, "WORKSPACE", cw.Workspace())
    monkeypatch.setattr(gm, "WORKSPACE", cw.WORKSPACE)


@pytest.mark.parametrize("group_cost", [None, 0, 10**9])  # default cuts, one expert per group, one group
@pytest.mark.parametrize("T,E,K,H,inter,skew", [(37, 5, 2, 24, 20, 0.0), (1, 3, 1, 8, 6, 0.0),
                                                (50, 8, 3, 16, 12, 0.0), (200, 9, 2, 16, 12, 0.6)])
def test_forward_and_grads_match_reference(T, E, K, H, inter, skew, group_cost, monkeypatch, small_pool):
    if group_cost is not None:
        monkeypatch.setattr(cl, "GROUP_COST_ROWS", {4: group_cost, 2: group_cost})
    args = inputs(T, E, K, H, inter, skip_expert=E - 1, skew=skew)
    ours, ref = outputs_and_grads(gm.moe_mlp_torch, args), outputs_and_grads(moe_mlp_reference, args)
    for name, a, b in zip(["out", "x", "w_gate_up", "w_down", "weights"], ours, ref):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5, msg=name)
    assert torch.count_nonzero(ours[2][E - 1]) == 0 and torch.count_nonzero(ours[3][E - 1]) == 0


@pytest.mark.parametrize("copy_a", [False, True])  # weight gradients from a transposed view / a transposed copy
@pytest.mark.parametrize("K", [2, 6])
def test_bf16_output_and_grads_are_close_to_fp32_reference(K, copy_a, small_pool, monkeypatch):
    if copy_a:
        monkeypatch.setattr(gm, "WGRAD_COPY_MIN_N", 1)
        monkeypatch.setattr(gm, "TRANSPOSE_ROWS", 8)  # several row blocks per expert
    args = inputs(300, 8, K, 64, 96)
    ref = outputs_and_grads(moe_mlp_reference, args)
    low = outputs_and_grads(gm.moe_mlp_torch, [a.bfloat16() for a in args[:3]] + args[3:])  # routing stays fp32
    assert low[0].dtype == torch.bfloat16 and low[4].dtype == torch.float32
    for name, a, b in zip(["out", "x", "w_gate_up", "w_down", "weights"], low, ref):
        assert (a.float() - b).abs().max() <= 3e-2 * b.abs().max(), name


@pytest.mark.parametrize("weighted", [True, False])  # the combine, and the input gradient's sum over K
def test_bf16_combine_rounds_once(weighted):
    """The fused gather + sum accumulates bf16 rows in fp32 and rounds once: within half a bf16 ulp of the exact
    sum (a bf16 chain of adds is off by hundreds of ulps where the terms cancel)."""
    g = torch.Generator().manual_seed(0)
    T, K, E, H = 300, 6, 8, 64
    experts = torch.stack([torch.randperm(E, generator=g)[:K] for _ in range(T)])
    lay = cl.ExpertLayout(experts, E, torch.bfloat16)
    rows = torch.randn(lay.rows, H, generator=g).bfloat16()
    w = torch.rand(T, K, generator=g).bfloat16() if weighted else torch.ones(T, K, dtype=torch.bfloat16)
    out = gm._bag_sum(rows, lay, w if weighted else None)
    exact = (w.double()[:, :, None] * rows[lay.slot].view(T, K, H).double()).sum(1)
    ulp = torch.exp2(torch.floor(torch.log2(exact.abs().clamp_min(1e-30))) - 7)
    assert out.dtype == torch.bfloat16 and ((out.double() - exact).abs() / ulp).max() <= 0.5


def test_only_the_gradients_asked_for(small_pool):
    args = inputs(40, 4, 2, 16, 12)
    ours = outputs_and_grads(gm.moe_mlp_torch, args, need=(True, False, False, False))
    ref = outputs_and_grads(moe_mlp_reference, args, need=(True, False, False, False))
    assert len(ours) == 2
    torch.testing.assert_close(ours[1], ref[1], atol=1e-5, rtol=1e-5)


def test_row_buckets():
    sizes = list(range(0, 5000, 7))
    buckets = [cl.align_rows(n) for n in sizes]
    assert all(b >= n and b - n <= max(31, n // 16) for n, b in zip(sizes, buckets))
    assert len(set(buckets)) < len(sizes) / 6
    assert [cl.align_rows(n, torch.float32) for n in (0, 1, 8, 9, 1021)] == [0, 8, 8, 16, 1024]


def test_plan_groups_known_cuts():
    # one big expert among small ones: its own group; the equal neighbours share one
    assert cl.plan_groups([32, 32, 320, 32], 64) == [cl.Group(0, 2, 0, 32), cl.Group(2, 3, 64, 320),
                                                      cl.Group(3, 4, 384, 32)]
    assert cl.plan_groups([256, 288, 256, 256], 128) == [cl.Group(0, 4, 0, 288)]  # balanced: one bmm
    assert [(g.e0, g.e1) for g in cl.plan_groups([5, 6, 7], 0)] == [(0, 1), (1, 2), (2, 3)]
    assert cl.plan_groups([0, 0], 64) == [cl.Group(0, 2, 0, 0)]  # nobody routed: no rows, zero gradients
    # fp32 bmm on 2 threads: 3 experts cost as much as 4, so 3 equal experts become a pair and a single
    assert [(g.e0, g.e1) for g in cl.plan_groups([100] * 3, 50)] == [(0, 3)]
    assert [(g.e0, g.e1) for g in cl.plan_groups([100] * 3, 50, batch_round=2)] == [(0, 2), (2, 3)]


def _plan_cost(groups, caps, cost_rows, batch_round):
    size = [e1 - e0 if e1 - e0 == 1 else -(-(e1 - e0) // batch_round) * batch_round for e0, e1 in groups]
    return sum(n * max(caps[e0:e1]) + cost_rows for n, (e0, e1) in zip(size, groups))


def test_plan_groups_is_optimal_against_every_cut():
    """The pruned dynamic programme finds the cheapest of all 2^(E-1) ways to cut E experts into runs."""
    import itertools
    import random

    rng = random.Random(0)
    for _ in range(300):
        E = rng.randint(1, 7)
        caps = [rng.choice([0, 8, 32, 256, 288, 320, 1024]) for _ in range(E)]
        cost_rows, batch_round = rng.choice([0, 32, 256]), rng.choice([1, 2, 3])
        got = [(g.e0, g.e1) for g in cl.plan_groups(caps, cost_rows, batch_round)]
        assert got[0][0] == 0 and got[-1][1] == E and all(a[1] == b[0] for a, b in zip(got, got[1:]))
        best = min(_plan_cost(list(zip((0, *cuts), (*cuts, E))), caps, cost_rows, batch_round)
                   for r in range(E) for cuts in itertools.combinations(range(1, E), r))
        assert _plan_cost(got, caps, cost_rows, batch_round) == best, (caps, cost_rows, batch_round)


@pytest.mark.parametrize("group_cost", [0, 10**9])
def test_inference_path_matches_reference(group_cost, monkeypatch, small_pool):
    monkeypatch.setattr(cl, "GROUP_COST_ROWS", {4: group_cost, 2: group_cost})
    args = inputs(41, 6, 2, 16, 12, skip_expert=2)
    with torch.no_grad():
        torch.testing.assert_close(gm.moe_mlp_torch(*args), moe_mlp_reference(*args), atol=1e-5, rtol=1e-5)


def test_no_tokens_gives_empty_output_and_zero_weight_grads():
    x, w_gate_up, w_down, weights, experts = [a.clone() for a in inputs(0, 4, 2, 8, 6)]
    leaves = [t.requires_grad_() for t in (x, w_gate_up, w_down, weights)]
    out = gm.moe_mlp_torch(*leaves, experts)
    grads = torch.autograd.grad(out.sum(), leaves)
    assert out.shape == (0, 8) and grads[0].shape == (0, 8) and grads[3].shape == (0, 2)
    assert torch.count_nonzero(grads[1]) == 0 and torch.count_nonzero(grads[2]) == 0


def test_hand_written_backward_passes_gradcheck(small_pool):
    """float64 finite differences against the hand-written backward: x, both expert weights and the routing
    weights, with an expert nobody is routed to and uneven groups; the reference agrees to rounding."""
    g = torch.Generator().manual_seed(0)
    T, E, K, H, inter = 12, 4, 2, 6, 5
    x = torch.randn(T, H, generator=g, dtype=torch.float64, requires_grad=True)
    w_gate_up = (0.5 * torch.randn(E, 2 * inter, H, generator=g, dtype=torch.float64)).requires_grad_()
    w_down = (0.5 * torch.randn(E, H, inter, generator=g, dtype=torch.float64)).requires_grad_()
    weights = torch.rand(T, K, generator=g, dtype=torch.float64, requires_grad=True)
    experts = torch.stack([torch.randperm(E - 1, generator=g)[:K] for _ in range(T)])  # expert E-1 unused
    args = (x, w_gate_up, w_down, weights, experts)
    assert torch.autograd.gradcheck(gm.moe_mlp_torch, args)
    torch.testing.assert_close(gm.moe_mlp_torch(*args), moe_mlp_reference(*args), atol=1e-12, rtol=1e-12)
