import dataclasses

import pytest

from jpmoe import ModelConfig


def test_debug_preset_is_small_moe():
    cfg = ModelConfig.preset("debug")
    assert cfg.is_moe and cfg.num_experts >= 2
    assert cfg.head_dim * cfg.num_heads == cfg.hidden_size


def test_config_is_frozen():
    cfg = ModelConfig.preset("debug")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.hidden_size = 1  # type: ignore[misc]


def test_bad_head_count_is_rejected():
    with pytest.raises(ValueError, match="num_kv_heads"):
        ModelConfig(hidden_size=64, num_heads=4, num_kv_heads=3)


def test_unknown_preset_names_known_ones():
    with pytest.raises(KeyError, match="debug"):
        ModelConfig.preset("nope")


def test_unknown_kernels_backend_is_rejected_at_construction():
    with pytest.raises(ValueError, match="kernels must be 'torch' or 'triton'"):
        ModelConfig.preset("debug", kernels="cuda")
