"""Our safetensors checkpoints: bit-exact save/load, and clear errors for mismatched keys, shapes and formats."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from jpmoe import ModelConfig, Transformer
from jpmoe.model_dir import load_checkpoint, load_model, save_checkpoint

CFG = ModelConfig.preset("debug")


@pytest.mark.parametrize("tie", [False, True])
def test_save_load_round_trip(tie, tmp_path):
    cfg = ModelConfig.preset("debug", tie_embeddings=tie, kernels="torch")
    torch.manual_seed(0)
    model = Transformer(cfg)
    save_checkpoint(model, cfg, tmp_path)
    assert ("lm_head.weight" in load_file(tmp_path / "model.safetensors")) is not tie
    loaded = load_model(tmp_path)
    assert loaded.config == cfg and (loaded.lm_head.weight is loaded.tok_embeddings.weight) is tie
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    x = torch.randint(0, cfg.vocab_size, (1, 5))
    assert torch.equal(loaded(x).logits, model(x).logits)


def test_mismatched_checkpoint_is_named(tmp_path):
    torch.manual_seed(0)
    save_checkpoint(Transformer(CFG), CFG, tmp_path)
    sd = load_file(tmp_path / "model.safetensors")
    sd["layers.1.mlp.w_down"] = torch.zeros(4, 64, 100)
    save_file(sd, tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match=r"layers\.1\.mlp\.w_down: \(4, 64, 100\) != expected \(4, 64, 128\)"):
        load_checkpoint(tmp_path)
    del sd["layers.1.mlp.w_down"]
    sd["layers.7.attn.wq.weight"] = torch.zeros(1)
    save_file(sd, tmp_path / "model.safetensors")
    with pytest.raises(KeyError, match=r"missing \['layers\.1\.mlp\.w_down'\], unexpected \['layers\.7\.attn"):
        load_checkpoint(tmp_path)


def test_config_that_does_not_fit_the_weights(tmp_path):
    torch.manual_seed(0)
    save_checkpoint(Transformer(CFG), CFG, tmp_path)
    d = json.loads((tmp_path / "config.json").read_text())
    d["model"]["num_experts"] = 8
    (tmp_path / "config.json").write_text(json.dumps(d))
    with pytest.raises(ValueError, match=r"mlp\.router\.weight: \(4, 64\) != expected \(8, 64\)"):
        load_checkpoint(tmp_path)
    d["model"]["flash"] = True
    (tmp_path / "config.json").write_text(json.dumps(d))
    with pytest.raises(ValueError, match=r"unknown ModelConfig fields: \['flash'\]"):
        load_checkpoint(tmp_path)


def test_hf_directory_is_recognised(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["MixtralForCausalLM"]}))
    with pytest.raises(ValueError, match="from-hf"):
        load_checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_checkpoint(tmp_path / "nowhere")
