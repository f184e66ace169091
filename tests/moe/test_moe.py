"""The MoE layer against an independent per-token loop, and the auxiliary losses against transformers' formula
and known values."""

import pytest
import torch
import torch.nn.functional as F

from jpmoe import ModelConfig, Transformer
from jpmoe.moe import MoE

CFG = ModelConfig.preset("debug", hidden_size=24, intermediate_size=20, num_experts=5, experts_per_token=2,
                         init_std=0.2)


def per_token_moe(layer: MoE, x: torch.Tensor, renormalize: bool) -> torch.Tensor:
    """out[t] = sum over the top-k experts of p_e * SwiGLU_e(x[t]) (p renormalised or not); one token at a time."""
    inter = layer.w_down.shape[2]
    out = torch.zeros_like(x)
    for t in range(x.shape[0]):
        p = torch.softmax(layer.router.weight @ x[t], -1)
        top = torch.topk(p, CFG.experts_per_token).indices
        w = p[top] / p[top].sum() if renormalize else p[top]
        for e, we in zip(top.tolist(), w):
            h = layer.w_gate_up[e] @ x[t]
            out[t] += we * (layer.w_down[e] @ (F.silu(h[:inter]) * h[inter:]))
    return out


@pytest.mark.parametrize("renormalize", [True, False])
def test_moe_layer_equals_per_token_loop(renormalize):
    torch.manual_seed(0)
    cfg = ModelConfig(**(CFG.to_dict() | {"router_renormalize": renormalize}))
    layer = Transformer(cfg).layers[0].mlp
    x = torch.randn(2, 9, 24)
    y, stats = layer(x)
    with torch.no_grad():
        want = per_token_moe(layer, x.reshape(-1, 24), renormalize)
    torch.testing.assert_close(y.reshape(-1, 24), want, atol=1e-5, rtol=1e-5)
    assert stats.counts.sum() == 18 * 2 and stats.tokens == 18


def test_shared_expert_is_added():
    torch.manual_seed(0)
    cfg = ModelConfig(**(CFG.to_dict() | {"shared_expert_size": 12}))
    layer = Transformer(cfg).layers[0].mlp
    x = torch.randn(7, 24)
    y, _ = layer(x)
    with torch.no_grad():
        want = per_token_moe(layer, x, True) + layer.shared(x)
    torch.testing.assert_close(y, want, atol=1e-5, rtol=1e-5)


def test_aux_losses_equal_transformers_formula_per_layer_and_global():
    from transformers.models.mixtral.modeling_mixtral import load_balancing_loss_func

    torch.manual_seed(0)
    cfg = ModelConfig(**(CFG.to_dict() | {"num_layers": 3}))
    model = Transformer(cfg)
    ids = torch.randint(0, cfg.vocab_size, (2, 11))
    mask = torch.ones(2, 11, dtype=torch.long)
    mask[0, :3] = 0
    # the layer's router logits, recomputed from each MoE input captured by a hook
    seen = []
    for b in model.layers:
        b.mlp.register_forward_hook(lambda m, a, o: seen.append(F.linear(a[0].reshape(-1, 24), m.router.weight)))
    pos = (mask.cumsum(1) - 1).clamp(min=0)
    out = model(ids, position_ids=pos, attention_mask=mask)
    k, E = cfg.experts_per_token, cfg.num_experts
    per_layer = sum(load_balancing_loss_func((lg,), E, k, mask) for lg in seen)
    torch.testing.assert_close(out.load_balancing_loss, per_layer)
    glob = Transformer(ModelConfig(**(cfg.to_dict() | {"aux_loss_scope": "global"})))
    glob.load_state_dict(model.state_dict())
    torch.testing.assert_close(glob(ids, position_ids=pos, attention_mask=mask).load_balancing_loss,
                               load_balancing_loss_func(tuple(seen[:3]), E, k, mask))
    z = sum((torch.logsumexp(lg, -1) ** 2)[mask.flatten().bool()].mean() for lg in seen[:3])
    torch.testing.assert_close(out.z_loss, z)
    out.aux_loss.backward()
    assert model.layers[0].mlp.router.weight.grad.abs().sum() > 0  # the aux losses train the router


def test_uniform_router_known_values():
    torch.manual_seed(0)
    model = Transformer(CFG)
    for b in model.layers:
        torch.nn.init.zeros_(b.mlp.router.weight)
    out = model(torch.randint(0, CFG.vocab_size, (2, 8)))
    n = CFG.num_layers
    # uniform probabilities: E * sum_e f_e / E = sum_e f_e = K per layer; logsumexp(0) = log E
    torch.testing.assert_close(out.load_balancing_loss, torch.tensor(float(CFG.experts_per_token * n)))
    torch.testing.assert_close(out.z_loss, torch.tensor(n * torch.log(torch.tensor(5.0)).item() ** 2))
