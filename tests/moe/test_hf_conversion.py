"""Conversion against transformers 5.x Llama/Mixtral: logits, routing, aux loss, bit-exact round trips, errors."""

import json

import pytest
import torch
import torch.nn.functional as F
from hf_cases import CONFIGS, DENSE, MOE, batch_with_padding, hf_class, ours_and_hf
from safetensors.torch import load_file, save_file

from jpmoe import ModelConfig, Transformer
from jpmoe.hf import config_from_hf, config_to_hf, from_hf_state_dict, load_hf, save_hf, to_hf_state_dict
from jpmoe.hf.__main__ import main as cli
from jpmoe.model_dir import load_checkpoint, save_checkpoint

pytest.importorskip("transformers")


@pytest.mark.parametrize("name", ["mixtral", "mixtral-k1", "llama"])
def test_ours_to_hf_logits_routing_and_aux_loss(name, tmp_path):
    cfg = CONFIGS[name]
    ours, hf, info = ours_and_hf(cfg, tmp_path)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs")), info
    ids, mask, pos = batch_with_padding(cfg.vocab_size)
    with torch.no_grad():
        o = ours(ids, position_ids=pos, attention_mask=mask)
        h = hf(ids, attention_mask=mask, position_ids=pos, output_router_logits=cfg.is_moe)
    real = mask.bool()
    torch.testing.assert_close(o.logits[real], h.logits[real], atol=1e-4, rtol=0)
    if cfg.is_moe:  # same router logits and top-k experts per real token in every layer, same global aux loss
        flat = real.flatten()
        for layer, x, router_logits in zip(ours.layers, _mlp_inputs(ours, ids, pos, mask), h.router_logits):
            logits_ours = F.linear(x, layer.mlp.router.weight)  # (N, E)
            torch.testing.assert_close(logits_ours[flat], router_logits[flat], atol=1e-5, rtol=0)
            top_ours = torch.topk(logits_ours.softmax(-1), cfg.experts_per_token, dim=-1).indices
            top_hf = torch.topk(router_logits.softmax(-1), cfg.experts_per_token, dim=-1).indices
            assert torch.equal(top_ours[flat], top_hf[flat])
        torch.testing.assert_close(o.load_balancing_loss, h.aux_loss, atol=1e-6, rtol=0)


def _mlp_inputs(model: Transformer, ids, pos, mask) -> list[torch.Tensor]:
    """The normalised inputs (N, H) of each layer's MoE, captured with forward hooks."""
    seen = []
    hooks = [b.mlp.register_forward_hook(lambda m, args, out: seen.append(args[0].reshape(-1, args[0].shape[-1])))
             for b in model.layers]
    with torch.no_grad():
        model(ids, position_ids=pos, attention_mask=mask)
    for h in hooks:
        h.remove()
    return seen


def test_loss_with_labels_matches_hf(tmp_path):
    ours, hf, _ = ours_and_hf(MOE, tmp_path)
    ids = torch.randint(0, MOE.vocab_size, (2, 16), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        o = ours(ids)
        h = hf(ids, labels=ids, output_router_logits=True)
    ce = F.cross_entropy(o.logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten())
    torch.testing.assert_close(o.load_balancing_loss, h.aux_loss, atol=1e-6, rtol=0)
    torch.testing.assert_close(ce + o.aux_loss, h.loss, atol=1e-5, rtol=0)  # z_loss_coef = 0 in MOE


@pytest.mark.parametrize("name", ["mixtral", "llama"])
def test_hf_to_ours_logits(name, tmp_path):
    cfg = CONFIGS[name]
    torch.manual_seed(1)
    hf_cfg = ours_and_hf(cfg, tmp_path / "seed")[1].config  # a transformers config of the same shape
    hf_cfg.initializer_range = 0.1
    hf = hf_class(cfg)(hf_cfg).eval()
    hf.save_pretrained(tmp_path / "hf")  # transformers' own writer: per-expert keys on disk
    on_disk = set(load_file(next((tmp_path / "hf").glob("*.safetensors"))))
    if cfg.is_moe:
        assert "model.layers.0.block_sparse_moe.experts.3.w2.weight" in on_disk
    config, sd = load_hf(tmp_path / "hf")
    ours = Transformer(config).eval()
    ours.load_state_dict(sd, strict=not config.tie_embeddings)
    ids, mask, pos = batch_with_padding(cfg.vocab_size, seed=2)
    with torch.no_grad():
        a = ours(ids, position_ids=pos, attention_mask=mask).logits
        b = hf(ids, attention_mask=mask, position_ids=pos).logits
    torch.testing.assert_close(a[mask.bool()], b[mask.bool()], atol=1e-4, rtol=0)


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("name", ["mixtral", "llama"])
def test_round_trip_is_bit_exact(name, fused, tmp_path):
    cfg = CONFIGS[name]
    torch.manual_seed(0)
    sd = Transformer(cfg).state_dict()
    save_hf(sd, cfg, tmp_path, max_shard_bytes=30_000, fused=fused)
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1  # really sharded
    if cfg.is_moe:
        key = "mlp.experts.gate_up_proj" if fused else "block_sparse_moe.experts.2.w3.weight"
        key = "model.layers.1." + key
        assert key in index["weight_map"]
    config, back = load_hf(tmp_path)
    assert config == cfg
    want = {k: v for k, v in sd.items() if not (cfg.tie_embeddings and k == "lm_head.weight")}
    assert sorted(back) == sorted(want)
    for k, v in want.items():
        assert back[k].dtype == v.dtype and torch.equal(back[k], v), k


def test_cli_both_ways_copies_tokenizer(tmp_path):
    torch.manual_seed(0)
    save_checkpoint(Transformer(MOE), MOE, tmp_path / "ckpt")
    tok = tmp_path / "tok"
    tok.mkdir()
    (tok / "tokenizer.json").write_text("{}")
    (tok / "tokenizer_config.json").write_text("{}")
    assert cli(["to-hf", str(tmp_path / "ckpt"), str(tmp_path / "hf"), "--tokenizer", str(tok)]) == 0
    for f in ("config.json", "generation_config.json", "model.safetensors.index.json", "tokenizer.json",
              "tokenizer_config.json"):
        assert (tmp_path / "hf" / f).is_file(), f
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["architectures"] == ["MixtralForCausalLM"]
    assert cli(["from-hf", str(tmp_path / "hf"), str(tmp_path / "back")]) == 0
    with pytest.raises(ValueError, match="is a jpmoe checkpoint"):
        load_hf(tmp_path / "ckpt")
    assert (tmp_path / "back" / "tokenizer.json").is_file()
    (c1, a), (c2, b) = load_checkpoint(tmp_path / "ckpt"), load_checkpoint(tmp_path / "back")
    assert c1 == c2 and all(torch.equal(a[k], b[k]) for k in a)


def test_unsupported_architecture_is_named(tmp_path):
    with pytest.raises(ValueError, match="Qwen2ForCausalLM.*LlamaForCausalLM"):
        config_from_hf({"architectures": ["Qwen2ForCausalLM"], "hidden_size": 8})
    with pytest.raises(ValueError, match="attention_bias"):
        config_from_hf({"architectures": ["LlamaForCausalLM"], "attention_bias": True})
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["GPT2LMHeadModel"]}))
    assert cli(["from-hf", str(tmp_path), str(tmp_path / "out")]) == 2


def test_broken_files_are_named(tmp_path):
    """A broken config, index or weights file is an error that names the file, not a parser traceback."""
    torch.manual_seed(0)
    save_checkpoint(Transformer(MOE), MOE, tmp_path / "ckpt")
    assert cli(["to-hf", str(tmp_path / "ckpt"), str(tmp_path / "hf"), "--max-shard-gb", "0.0001"]) == 0
    hf, ckpt = tmp_path / "hf", tmp_path / "ckpt"
    index = json.loads((hf / "model.safetensors.index.json").read_text())
    shard = sorted(set(index["weight_map"].values()))[-1]
    (hf / shard).write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match=f"{shard} is not a readable safetensors file"):
        load_hf(hf)
    (hf / shard).unlink()
    with pytest.raises(FileNotFoundError, match=f"{shard} does not exist"):
        load_hf(hf)
    (hf / "model.safetensors.index.json").write_text("[]")
    with pytest.raises(ValueError, match="index.json holds a JSON list, not an object"):
        load_hf(hf)
    (hf / "config.json").write_text("{bad json")
    with pytest.raises(ValueError, match=r"hf/config.json is not valid JSON"):
        load_hf(hf)
    assert cli(["from-hf", str(hf), str(tmp_path / "out")]) == 2
    (ckpt / "model.safetensors").write_bytes(b"\x00" * 3)
    with pytest.raises(ValueError, match="model.safetensors is not a readable safetensors file"):
        load_checkpoint(ckpt)
    (ckpt / "config.json").write_text("{")
    with pytest.raises(ValueError, match="ckpt/config.json is not valid JSON"):
        load_checkpoint(ckpt)


def test_bad_hf_keys_and_shapes_are_named():
    torch.manual_seed(0)
    hf = to_hf_state_dict(Transformer(MOE).state_dict(), MOE)
    missing = dict(hf)
    del missing["model.layers.1.block_sparse_moe.experts.3.w1.weight"]
    with pytest.raises(KeyError, match=r"layers\.1\.mlp\.experts\.3\.w1"):
        from_hf_state_dict(missing, MOE)
    extra = dict(hf) | {"model.layers.2.self_attn.q_proj.weight": torch.zeros(40, 48)}
    with pytest.raises(KeyError, match=r"layers\.2\.self_attn\.q_proj"):
        from_hf_state_dict(extra, MOE)
    wrong = dict(hf) | {"model.norm.weight": torch.zeros(47)}
    with pytest.raises(ValueError, match=r"norm\.weight: \(47,\) != expected \(48,\)"):
        from_hf_state_dict(wrong, MOE)


def test_mixtral_sliding_window_and_v4_rope_fields():
    d = {"architectures": ["MixtralForCausalLM"], "vocab_size": 10, "hidden_size": 8, "intermediate_size": 4,
         "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1, "rope_theta": 1e6,
         "max_position_embeddings": 32768, "sliding_window": 4096, "num_local_experts": 8,
         "num_experts_per_tok": 2}
    cfg = config_from_hf(d)
    assert cfg.rope_theta == 1e6 and cfg.max_seq_len == 4096 and cfg.num_experts == 8


def test_cli_exports_a_training_checkpoint_step(tmp_path):
    """to-hf reads a DCP training checkpoint (as apps/pretrain.py writes it): same logits in transformers."""
    from transformers import MixtralForCausalLM

    from jpmoe.train import CheckpointManager, TrainState, build_scheduler

    torch.manual_seed(0)
    model = Transformer(MOE)
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    mgr = CheckpointManager(tmp_path / "run", fingerprint={"model": MOE.to_dict(), "seq_len": 8})
    step = mgr.save(TrainState(step=7), model, opt, build_scheduler(opt, kind="constant", warmup=1, total=10))
    assert cli(["to-hf", str(tmp_path / "run"), str(tmp_path / "hf")]) == 2  # the run dir: name a step
    assert cli(["to-hf", str(step), str(tmp_path / "hf")]) == 0
    # only HF files: the step's DCP shards, optimiser and trainer state were copied along as "tokenizer files"
    assert {f.name for f in (tmp_path / "hf").iterdir()} == {
        "config.json", "generation_config.json", "model.safetensors.index.json", "model-00001-of-00001.safetensors"}
    hf = MixtralForCausalLM.from_pretrained(tmp_path / "hf").eval()
    ids = torch.randint(0, MOE.vocab_size, (2, 6))
    with torch.no_grad():
        torch.testing.assert_close(hf(ids).logits, model(ids).logits, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", ["mixtral", "llama"])
def test_fields_left_out_of_config_json_take_transformers_defaults(name, tmp_path):
    """A trimmed config.json (no rope_parameters, rms_norm_eps, max_position_embeddings): transformers uses its class
    defaults (Mixtral: rope_theta 1e6, eps 1e-5); we used Llama's (1e4, 1e-6) and gave other logits silently."""
    cfg = CONFIGS[name]
    ours_and_hf(cfg, tmp_path)
    d = json.loads((tmp_path / "config.json").read_text())
    for k in ("rope_parameters", "rope_theta", "rope_scaling", "rms_norm_eps", "max_position_embeddings",
              "router_aux_loss_coef"):
        d.pop(k, None)
    (tmp_path / "config.json").write_text(json.dumps(d))
    hf = hf_class(cfg).from_pretrained(tmp_path, attn_implementation="eager").eval()
    config, sd = load_hf(tmp_path)
    assert (config.rope_theta, config.rms_norm_eps) == (hf.config.rope_parameters["rope_theta"], hf.config.rms_norm_eps)
    assert config.max_seq_len == hf.config.max_position_embeddings
    ours = Transformer(config).eval()
    ours.load_state_dict(sd, strict=not config.tie_embeddings)
    ids = torch.randint(0, cfg.vocab_size, (1, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ours(ids).logits, hf(ids).logits, atol=1e-4, rtol=0)


def test_incomplete_hf_configs_are_named():
    base = {"architectures": ["LlamaForCausalLM"], "vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1,
            "num_attention_heads": 2}
    with pytest.raises(ValueError, match=r"lacks \['intermediate_size'\]"):
        config_from_hf(base)
    with pytest.raises(ValueError, match=r"'linear' needs \['factor'\]"):
        config_from_hf(base | {"intermediate_size": 4, "rope_parameters": {"rope_type": "linear"}})


def test_shards_that_disagree_with_their_index_are_named(tmp_path):
    """A key stored in two shards was silently taken from the last one read, and a mis-shaped per-expert tensor
    crashed inside torch.stack."""
    torch.manual_seed(0)
    sd = Transformer(MOE).state_dict()
    save_hf(sd, MOE, tmp_path, max_shard_bytes=20000)
    shards = sorted(tmp_path.glob("model-*.safetensors"))
    first, last = load_file(shards[0]), load_file(shards[-1])
    key = next(iter(first))
    save_file(last | {key: torch.full_like(first[key], 7.0)}, shards[-1])
    with pytest.raises(ValueError, match=f"{key} is stored in both {shards[0].name} and {shards[-1].name}"):
        load_hf(tmp_path)
    moved = next(iter(last))
    save_file({k: v for k, v in last.items() if k != moved}, shards[-1])
    save_file(first | {moved: last[moved]}, shards[0])
    with pytest.raises(KeyError, match=f"puts {moved} in {shards[-1].name}, which lacks it"):
        load_hf(tmp_path)
    hf = to_hf_state_dict(sd, MOE)
    hf["model.layers.1.block_sparse_moe.experts.3.w2.weight"] = torch.zeros(48, 39)
    with pytest.raises(ValueError, match=r"experts\.3\.w2\.weight: \(48, 39\) != expected \(48, 40\)"):
        from_hf_state_dict(hf, MOE)


@pytest.mark.parametrize("name", ["mixtral", "llama"])
def test_export_also_speaks_transformers_4(name, tmp_path):
    """Only `rope_parameters` was written: a transformers 4.x reader (vLLM pinned to it) does not know that field
    and took Mixtral's default rope_theta 1e6 (ours 1e4) or dropped the llama3 scaling: other logits, silently."""
    cfg = CONFIGS[name]
    _, hf, _ = ours_and_hf(cfg, tmp_path)
    d = json.loads((tmp_path / "config.json").read_text())
    assert d["rope_theta"] == d["rope_parameters"]["rope_theta"] == cfg.rope_theta
    assert d["torch_dtype"] == d["dtype"] == "float32"
    assert hf.config.rope_parameters == d["rope_parameters"]  # transformers 5 still reads rope_parameters
    if cfg.rope_type == "default":
        assert "rope_scaling" not in d
    else:
        assert d["rope_scaling"] == {k: v for k, v in d["rope_parameters"].items() if k != "rope_theta"}
    v4_view = {k: v for k, v in d.items() if k not in ("rope_parameters", "dtype")}  # the fields a 4.x reader knows
    assert config_from_hf(v4_view) == config_from_hf(d) == cfg


def test_a_list_of_eos_ids_survives_both_ways(tmp_path):
    """Llama 3.1 lists three eos ids; from-hf kept only the first, so the exported model (and transformers' generate
    on it) no longer stopped at <|eot_id|>."""
    torch.manual_seed(0)
    cfg = ModelConfig.from_dict(DENSE.to_dict() | {"eos_token_id": [90, 91, 92]})
    assert cfg.eos_token_id == (90, 91, 92)
    save_hf(Transformer(cfg).state_dict(), cfg, tmp_path / "hf")
    for name in ("config.json", "generation_config.json"):
        assert json.loads((tmp_path / "hf" / name).read_text())["eos_token_id"] == [90, 91, 92]
    config, _ = load_hf(tmp_path / "hf")
    assert config == cfg and json.loads(json.dumps(cfg.to_dict())) == cfg.to_dict()
    assert config_from_hf(config_to_hf(cfg) | {"eos_token_id": [7]}).eos_token_id == 7


def test_export_over_an_older_export_replaces_its_weights(tmp_path):
    """transformers prefers model.safetensors to an index: a single-file model left in OUT by an earlier save was
    loaded instead of the new shards, silently giving the old weights."""
    from transformers import MixtralForCausalLM

    torch.manual_seed(0)
    old = Transformer(MOE).eval()
    (tmp_path / "hf").mkdir()
    for stale in ("model.safetensors", "model-00001-of-00003.safetensors"):
        save_file({"x": torch.zeros(1)}, tmp_path / "hf" / stale)
    save_hf(old.state_dict(), MOE, tmp_path / "hf")
    assert sorted(f.name for f in (tmp_path / "hf").glob("*.safetensors")) == ["model-00001-of-00001.safetensors"]
    hf = MixtralForCausalLM.from_pretrained(tmp_path / "hf").eval()
    ids = torch.randint(0, MOE.vocab_size, (1, 8))
    with torch.no_grad():
        torch.testing.assert_close(hf(ids).logits, old(ids).logits, atol=1e-4, rtol=0)
    save_checkpoint(old, MOE, tmp_path / "ckpt")
    assert cli(["to-hf", str(tmp_path / "ckpt"), str(tmp_path / "ckpt")]) == 2
    assert load_checkpoint(tmp_path / "ckpt")[0] == MOE
