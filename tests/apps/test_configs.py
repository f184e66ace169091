"""Every apps/configs/*.toml parses into its app's Args (unknown keys would be an error), and every one that names a
model builds that model (on the meta device: no memory, no time) exactly as its app would."""

from __future__ import annotations

import re

import pytest
from app_helpers import ROOT, load_app

from jpmoe.train import parse_args

CONFIGS = {"pretrain_demo.toml": "pretrain", "pretrain_moe_2b.toml": "pretrain",
           "tokenizer_32k.toml": "train_tokenizer", "prepare_ja_web.toml": "prepare_data",
           "sft_demo.toml": "sft", "dpo_demo.toml": "dpo",
           "pretrain_2b_moe_200b.toml": "pretrain", "pretrain_8b_dense_200b.toml": "pretrain",
           "ablate_demo.toml": "ablate"}


@pytest.mark.parametrize(("config", "app"), sorted(CONFIGS.items()))
def test_config_parses(config, app):
    module = load_app(app)
    args = parse_args(module.Args, ["--config", str(ROOT / "apps/configs" / config)])
    assert args.config.endswith(config)


def test_every_config_is_listed():
    assert {p.name for p in (ROOT / "apps/configs").glob("*.toml")} <= set(CONFIGS)


class _Tokenizer:
    """What build_model_config reads from a tokenizer (a 32k SentencePiece one, as tokenizer_32k.toml trains)."""

    bos_token_id, eos_token_id, pad_token_id = 1, 2, 3

    def __len__(self) -> int:
        return 32000


@pytest.mark.parametrize("config", sorted(c for c, app in CONFIGS.items() if app == "pretrain"))
def test_every_shipped_model_config_builds_its_model(config):
    """pretrain_moe_2b.toml named a preset `moe-2b` that no longer existed: parsing passed, the run died with
    KeyError: unknown preset."""
    import torch

    from jpmoe import Transformer

    module = load_app("pretrain")
    args = parse_args(module.Args, ["--config", str(ROOT / "apps/configs" / config)])
    cfg = module.build_model_config(args, _Tokenizer(), torch.device("meta"))
    with torch.device("meta"):
        model = Transformer(cfg)
    assert sum(p.numel() for p in model.parameters()) == cfg.num_params()
    assert cfg.max_seq_len >= args.seq_len and model.config.kernels == "torch"  # "auto" off CUDA


def test_pretrain_leaves_the_kernel_decision_to_jpmoe():
    """--kernels auto is resolved by jpmoe's one decision (tests/moe/kernels/test_kernel_choice.py), for the device
    the run trains on."""
    from jpmoe.kernels.dispatch import resolve_kernels

    module = load_app("pretrain")
    assert parse_args(module.Args, []).kernels == "auto"
    assert module.resolve_kernels is resolve_kernels


def test_every_config_named_in_an_app_docstring_exists():
    for app in ("prepare_data", "train_tokenizer", "pretrain", "demo", "ablate"):
        for name in re.findall(r"apps/configs/([\w.-]+\.toml)", load_app(app).__doc__):
            assert (ROOT / "apps/configs" / name).is_file(), f"apps/{app}.py names a missing apps/configs/{name}"
