import dataclasses

import pytest

from jpmoe import ModelConfig
from jpmoe.config import PRESETS


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
    with pytest.raises(ValueError, match=r"kernels must be one of \('auto', 'torch', 'triton'\)"):
        ModelConfig.preset("debug", kernels="cuda")


@pytest.mark.parametrize(("override", "named"), [
    ({"num_heads": 0}, "num_heads must be >= 1"), ({"num_kv_heads": 0}, "num_kv_heads must be >= 1"),
    ({"hidden_size": 0}, "hidden_size must be >= 1"), ({"vocab_size": 0}, "vocab_size must be >= 1"),
    ({"intermediate_size": 0}, "intermediate_size must be >= 1"), ({"max_seq_len": 0}, "max_seq_len must be >= 1"),
    ({"num_layers": 0}, "num_layers must be >= 1"), ({"head_dim": -2}, "head_dim must be >= 0"),
    ({"num_experts": -1}, "num_experts must be >= 0"), ({"rms_norm_eps": -1.0}, "rms_norm_eps must be > 0"),
    ({"rope_theta": 0.0}, "rope_theta must be > 0"), ({"rope_type": "linear", "rope_factor": 0.0}, "rope_factor"),
    ({"rope_factor": 4.0}, "no effect with rope_type 'default'"),
    ({"rope_type": "llama3", "rope_low_freq_factor": 4.0, "rope_high_freq_factor": 4.0}, "rope_high_freq_factor"),
])
def test_bad_sizes_and_rope_settings_are_named(override, named):
    """Zero heads crashed with a bare ZeroDivisionError; zero sizes, a negative eps, a rope_factor that the default
    rope ignores and equal llama3 frequency factors (NaN frequencies) were accepted silently."""
    with pytest.raises(ValueError, match=named):
        ModelConfig.preset("debug-dense", **override)


def test_preset_overrides_rederive_head_dim():
    """preset("debug", hidden_size=128) kept the debug head_dim 16, so attention was 64 wide in a 128-wide model."""
    assert ModelConfig.preset("debug", hidden_size=128).head_dim == 32
    assert ModelConfig.preset("debug", num_heads=8, num_kv_heads=4).head_dim == 8
    assert ModelConfig.preset("debug", head_dim=24).head_dim == 24
    assert all(ModelConfig.preset(n) == p for n, p in PRESETS.items())
