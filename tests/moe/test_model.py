"""The Transformer on its own: outputs, causality, KV cache, padding, meta init, bad inputs."""

import pytest
import torch
import torch.nn.functional as F

from jpmoe import ModelConfig, Transformer

CFG = ModelConfig.preset("debug", max_seq_len=32, init_std=0.1)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return Transformer(CFG).eval()


def ids(B=2, T=10, seed=0):
    return torch.randint(0, CFG.vocab_size, (B, T), generator=torch.Generator().manual_seed(seed))


def test_outputs_hidden_and_lm_head(model):
    x = ids()
    with torch.no_grad():
        o = model(x)
        h = model(x, return_hidden=True)
    assert o.logits.shape == (2, 10, CFG.vocab_size) and h.logits is None and h.hidden.shape == (2, 10, 64)
    torch.testing.assert_close(F.linear(h.hidden, model.lm_head.weight), o.logits)
    assert o.expert_load.shape == (CFG.num_layers, CFG.num_experts)
    assert torch.equal(o.expert_load.sum(1), torch.full((CFG.num_layers,), 2.0 * 10 * CFG.experts_per_token))
    torch.testing.assert_close(o.aux_loss, CFG.aux_loss_coef * o.load_balancing_loss + CFG.z_loss_coef * o.z_loss)


def test_causal_future_tokens_do_not_change_the_past(model):
    a, b = ids(seed=1), ids(seed=1)
    b[:, 6:] = (b[:, 6:] + 1) % CFG.vocab_size
    with torch.no_grad():
        la, lb = model(a).logits, model(b).logits
    torch.testing.assert_close(la[:, :6], lb[:, :6])
    assert (la[:, 6:] - lb[:, 6:]).abs().max() > 1e-3


def test_kv_cache_decoding_equals_full_forward(model):
    x = ids(T=12, seed=2)
    with torch.no_grad():
        full = model(x).logits
        cache = model.new_cache(2, 12)
        steps = [model(x[:, :5], cache=cache).logits]
        steps += [model(x[:, t : t + 1], cache=cache).logits for t in range(5, 12)]
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=1e-5)


def test_left_padding_with_positions_equals_unpadded(model):
    x = ids(B=1, T=7, seed=3)
    padded = torch.cat([torch.zeros(1, 4, dtype=torch.long), x], 1)
    mask = torch.cat([torch.zeros(1, 4), torch.ones(1, 7)], 1).long()
    pos = (mask.cumsum(1) - 1).clamp(min=0)
    with torch.no_grad():
        a = model(x)
        b = model(padded, position_ids=pos, attention_mask=mask)
    torch.testing.assert_close(b.logits[:, 4:], a.logits, atol=1e-5, rtol=1e-5)
    assert torch.equal(b.expert_load, a.expert_load)  # padding is not counted as load
    torch.testing.assert_close(b.load_balancing_loss, a.load_balancing_loss)


def test_dense_model_and_tied_embeddings():
    cfg = ModelConfig.preset("debug-dense", tie_embeddings=True)
    m = Transformer(cfg)
    assert m.lm_head.weight is m.tok_embeddings.weight
    o = m(ids())
    assert o.expert_load is None and o.aux_loss.item() == 0.0
    o.logits.sum().backward()
    assert m.tok_embeddings.weight.grad is not None


def test_meta_device_init_then_to_empty():
    with torch.device("meta"):
        m = Transformer(CFG)
    m.to_empty(device="cpu")
    m.init_weights()
    torch.manual_seed(0)
    ref = Transformer(CFG)
    torch.testing.assert_close(m.inv_freq, ref.inv_freq)
    assert torch.isfinite(m(ids()).logits).all()


def test_bad_inputs_are_named(model):
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 512\), got min -1"):
        model(torch.tensor([[1, -1]]))
    with pytest.raises(ValueError, match=r"max 512"):
        model(torch.tensor([[1, 512]]))
    with pytest.raises(ValueError, match="sequence length 33 exceeds max_seq_len 32"):
        model(torch.zeros(1, 33, dtype=torch.long))
    with pytest.raises(ValueError, match=r"integer tensor \(B, T\)"):
        model(torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="attention_mask"):
        model(ids(), attention_mask=torch.ones(2, 9))
    cache = model.new_cache(1, 8)
    model(torch.zeros(1, 6, dtype=torch.long), cache=cache)
    with pytest.raises(ValueError, match="exceeds max_seq_len"):
        model(torch.zeros(1, 27, dtype=torch.long), cache=cache)


def test_presets_have_the_sizes_they_claim():
    def billions(name, active=False):
        return ModelConfig.preset(name).num_params(active) / 1e9

    assert 0.15 < billions("llama-160m") < 0.17
    assert 0.45 < billions("moe-0.5b") < 0.55 and 0.15 < billions("moe-0.5b", active=True) < 0.25
    assert 1.0 < billions("moe-1b") < 1.2
    assert 46 < billions("mixtral-8x7b") < 47.5 and 12.5 < billions("mixtral-8x7b", active=True) < 13.2
    torch.manual_seed(0)
    m = Transformer(CFG)
    assert sum(p.numel() for p in m.parameters()) == CFG.num_params()


def test_bad_positions_masks_and_cache_use_are_named(model):
    """These crashed with a bare shape error inside rotary or the cache write, or (an additive 0/-inf mask, read
    as 1/0) silently masked the wrong tokens."""
    x = torch.zeros(2, 4, dtype=torch.long)
    with pytest.raises(ValueError, match=r"position_ids must be \(B, T\) = \(2, 4\)"):
        model(x, position_ids=torch.arange(3)[None])
    with pytest.raises(ValueError, match="position_ids"):
        model(x, position_ids=torch.arange(4))
    model(x, position_ids=torch.arange(4)[None])  # (1, T) broadcasts over the batch, as in transformers
    with pytest.raises(ValueError, match="additive"):
        model(x, attention_mask=torch.tensor([[0.0, 0, 0, 0], [float("-inf"), 0, 0, 0]]))
    torch.testing.assert_close(model(x, attention_mask=torch.ones(2, 4)).logits, model(x).logits)
    cache = model.new_cache(2, 6)
    model(x, cache=cache)
    with pytest.raises(ValueError, match="4 cached \\+ 4 new positions exceed the KV cache length 6"):
        model(x, cache=cache)
    with pytest.raises(ValueError, match="batch 3 does not match the KV cache batch 2"):
        model(torch.zeros(3, 1, dtype=torch.long), cache=model.new_cache(2, 6))


LATE_INTERPRET = """
import os, torch
os.environ.pop("TRITON_INTERPRET", None)
from jpmoe import ModelConfig, Transformer
os.environ["TRITON_INTERPRET"] = "1"  # too late: the kernels are already defined for a GPU
try:
    Transformer(ModelConfig.preset("debug", kernels="triton"))(torch.zeros(1, 4, dtype=torch.long))
except ValueError as e:
    print(e)
"""


@pytest.mark.skipif(torch.cuda.is_available(), reason="on CUDA the kernels run compiled whatever the variable says")
def test_triton_interpret_set_after_import_is_named():
    """It passed the backend check, then crashed inside Triton with '0 active drivers'."""
    import subprocess
    import sys

    pytest.importorskip("triton")
    out = subprocess.run([sys.executable, "-c", LATE_INTERPRET], capture_output=True, text=True, timeout=120)
    assert "TRITON_INTERPRET=1 was set after jpmoe.kernels was imported" in out.stdout, out.stdout + out.stderr
