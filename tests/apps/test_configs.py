"""Every apps/configs/*.toml parses into its app's Args (unknown keys would be an error)."""

from __future__ import annotations

import re

import pytest
from app_helpers import ROOT, load_app

from jpmoe.train import parse_args

CONFIGS = {"pretrain_demo.toml": "pretrain", "pretrain_moe_2b.toml": "pretrain",
           "tokenizer_32k.toml": "train_tokenizer", "prepare_ja_web.toml": "prepare_data",
           "pretrain_2b_moe_200b.toml": "pretrain", "pretrain_8b_dense_200b.toml": "pretrain",
           "ablate_demo.toml": "ablate"}


@pytest.mark.parametrize(("config", "app"), sorted(CONFIGS.items()))
def test_config_parses(config, app):
    module = load_app(app)
    args = parse_args(module.Args, ["--config", str(ROOT / "apps/configs" / config)])
    assert args.config.endswith(config)


def test_every_pretrain_config_is_listed():
    assert {p.name for p in (ROOT / "apps/configs").glob("pretrain_*.toml")} <= set(CONFIGS)


def test_kernels_auto_picks_triton_only_on_a_cuda_device_where_it_runs(monkeypatch):
    import torch

    module = load_app("pretrain")
    assert parse_args(module.Args, []).kernels == "auto"
    assert module.resolve_kernels("auto", torch.device("cpu")) == "torch"  # even with TRITON_INTERPRET set
    monkeypatch.setattr(module, "triton_unavailable_reason", lambda: None)
    assert module.resolve_kernels("auto", torch.device("cuda", 0)) == "triton"
    monkeypatch.setattr(module, "triton_unavailable_reason", lambda: "the triton package is not installed")
    assert module.resolve_kernels("auto", torch.device("cuda", 0)) == "torch"
    assert module.resolve_kernels("triton", torch.device("cpu")) == "triton"  # an explicit choice is kept


def test_every_config_named_in_an_app_docstring_exists():
    for app in ("prepare_data", "train_tokenizer", "pretrain", "demo", "ablate"):
        for name in re.findall(r"apps/configs/([\w.-]+\.toml)", load_app(app).__doc__):
            assert (ROOT / "apps/configs" / name).is_file(), f"apps/{app}.py names a missing apps/configs/{name}"
