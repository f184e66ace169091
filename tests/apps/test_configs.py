"""Every apps/configs/*.toml parses into its app's Args (unknown keys would be an error)."""

from __future__ import annotations

import pytest
from app_helpers import ROOT, load_app

from jpmoe.train import parse_args

CONFIGS = {"pretrain_demo.toml": "pretrain", "pretrain_moe_2b.toml": "pretrain"}


@pytest.mark.parametrize(("config", "app"), sorted(CONFIGS.items()))
def test_config_parses(config, app):
    module = load_app(app)
    args = parse_args(module.Args, ["--config", str(ROOT / "apps/configs" / config)])
    assert args.config.endswith(config)


def test_every_pretrain_config_is_listed():
    assert {p.name for p in (ROOT / "apps/configs").glob("pretrain_*.toml")} <= set(CONFIGS)
