"""Conversion types: every field of a Hugging Face config.json and of our config.json is checked for its JSON type
with an error naming the field and the file; a tied config with a stored lm_head that differs from the embedding is
an error; exported .safetensors files are as readable as the other files (umask respected)."""

from __future__ import annotations

import json
import os
import stat

import pytest
import torch
from hf_cases import DENSE, MOE
from safetensors.torch import load_file, save_file

from jpmoe import ModelConfig, Transformer
from jpmoe.config import FIELD_KINDS, ConfigTypeError
from jpmoe.hf import config_from_hf, config_to_hf, load_hf, save_hf
from jpmoe.hf.__main__ import main as cli
from jpmoe.hf.configs import HF_FIELD_KINDS, ROPE_FIELD_KINDS
from jpmoe.model_dir import load_checkpoint, load_config, save_checkpoint

WRONG = {"int": "2", "float": "1e-5", "bool": "true", "str": 3, "int?": "2", "ids?": "2", "dict?": [1]}


def _hf(config=MOE) -> dict:
    return json.loads(json.dumps(config_to_hf(config)))  # as read from the file


@pytest.mark.parametrize("field", sorted(HF_FIELD_KINDS))
def test_every_hf_field_of_the_wrong_type_is_named(field):
    d = _hf(MOE if field not in ("attention_bias", "mlp_bias", "pretraining_tp") else DENSE)
    d[field] = WRONG[HF_FIELD_KINDS[field]]
    with pytest.raises(ConfigTypeError, match=f"config.json field '{field}' must be "):
        config_from_hf(d)


@pytest.mark.parametrize("field", sorted(ROPE_FIELD_KINDS))
def test_every_rope_field_of_the_wrong_type_is_named(field):
    d = _hf()
    d["rope_parameters"][field] = WRONG[ROPE_FIELD_KINDS[field]]
    with pytest.raises(ConfigTypeError, match=f"rope_parameters field '{field}'"):
        config_from_hf(d)


@pytest.mark.parametrize(("field", "value"), [("hidden_size", "64"), ("hidden_size", 64.0), ("eos_token_id", "2"),
                                              ("eos_token_id", [2, "3"]), ("eos_token_id", True),
                                              ("tie_word_embeddings", "false"), ("num_local_experts", 4.0)])
def test_the_reported_cases_name_file_and_field_also_through_the_cli(tmp_path, capsys, field, value):
    """"hidden_size": "64" was a TypeError inside a comparison; eos_token_id "2" was accepted as a string."""
    save_hf(Transformer(MOE).state_dict(), MOE, tmp_path / "hf")
    d = json.loads((tmp_path / "hf" / "config.json").read_text()) | {field: value}
    (tmp_path / "hf" / "config.json").write_text(json.dumps(d))
    with pytest.raises(ValueError, match=f"{tmp_path / 'hf' / 'config.json'}: config.json field '{field}'"):
        load_hf(tmp_path / "hf")
    assert cli(["from-hf", str(tmp_path / "hf"), str(tmp_path / "ours")]) == 2
    assert f"field '{field}' must be" in capsys.readouterr().err


def test_null_means_left_out_where_transformers_reads_it_so():
    d = _hf() | {"rms_norm_eps": None, "initializer_range": None, "tie_word_embeddings": None, "sliding_window": None}
    cfg = config_from_hf(d)
    assert (cfg.rms_norm_eps, cfg.init_std, cfg.tie_embeddings) == (1e-5, 0.02, False)
    with pytest.raises(ValueError, match=r"lacks \['hidden_size'\]"):
        config_from_hf(_hf() | {"hidden_size": None})


@pytest.mark.parametrize("field", sorted(FIELD_KINDS))
def test_every_field_of_our_config_json_of_the_wrong_type_is_named(tmp_path, field):
    save_checkpoint(Transformer(MOE), MOE, tmp_path)
    file = tmp_path / "config.json"
    d = json.loads(file.read_text())
    d["model"][field] = WRONG[FIELD_KINDS[field]]
    file.write_text(json.dumps(d))
    with pytest.raises(ConfigTypeError, match=f"{file}: ModelConfig field '{field}' must be "):
        load_config(tmp_path)


def test_our_config_accepts_an_integer_for_a_float_and_stores_a_float(tmp_path):
    cfg = ModelConfig.from_dict(MOE.to_dict() | {"rope_theta": 10000, "aux_loss_coef": 0})
    assert isinstance(cfg.rope_theta, float) and isinstance(cfg.aux_loss_coef, float)
    (tmp_path / "config.json").write_text('{"format": "jpmoe", "model": [1]}')
    with pytest.raises(ValueError, match="config.json: the model config must be a JSON object"):
        load_config(tmp_path)


TIED = DENSE  # tie_embeddings=True


def test_tied_config_with_a_different_stored_lm_head_is_an_error(tmp_path):
    """tie_word_embeddings: true with a stored lm_head that differs silently dropped the lm_head: another model."""
    assert TIED.tie_embeddings
    torch.manual_seed(0)
    save_hf(Transformer(TIED).state_dict(), TIED, tmp_path / "hf")
    (shard,) = (tmp_path / "hf").glob("model-*.safetensors")
    sd = load_file(shard)
    save_file(sd | {"lm_head.weight": sd["model.embed_tokens.weight"].clone()}, shard)
    load_hf(tmp_path / "hf")  # an identical copy (some exporters write it) is fine
    save_file(sd | {"lm_head.weight": torch.randn_like(sd["model.embed_tokens.weight"])}, shard)
    with pytest.raises(ValueError, match="ties the embeddings, but the stored lm_head.weight and "
                                         "model.embed_tokens.weight differ.*Untie them"):
        load_hf(tmp_path / "hf")

    model = Transformer(TIED)
    ours = {k: v.clone() for k, v in model.state_dict().items()}
    ours["lm_head.weight"] = torch.randn_like(ours["tok_embeddings.weight"])
    with pytest.raises(ValueError, match="stored lm_head.weight and tok_embeddings.weight differ"):
        save_checkpoint(ours, TIED, tmp_path / "ours")
    save_checkpoint(model, TIED, tmp_path / "ours")
    save_file(load_file(tmp_path / "ours" / "model.safetensors") | {"lm_head.weight": ours["lm_head.weight"]},
              tmp_path / "ours" / "model.safetensors")
    with pytest.raises(ValueError, match="differ"):
        load_checkpoint(tmp_path / "ours")


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_exported_safetensors_are_readable_like_the_other_files(tmp_path, umask):
    """safetensors writes 0600; the config next to it follows the umask (0644 under 022)."""
    old = os.umask(umask)
    try:
        save_checkpoint(Transformer(MOE), MOE, tmp_path / "ours")
        save_hf(Transformer(MOE).state_dict(), MOE, tmp_path / "hf", max_shard_bytes=50_000)
    finally:
        os.umask(old)
    files = [*(tmp_path / "ours").iterdir(), *(tmp_path / "hf").iterdir()]
    assert len([f for f in files if f.suffix == ".safetensors"]) > 2
    modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in files}
    assert set(modes.values()) == {0o666 & ~umask}, modes
