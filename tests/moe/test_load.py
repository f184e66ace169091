"""jpmoe.load.load_pretrained: every kind of model directory gives the same weights; damaged files are named."""

import pytest
import torch
from hf_cases import DENSE, MOE

from jpmoe import Transformer
from jpmoe.hf import save_hf
from jpmoe.load import load_pretrained, resolve_model_path
from jpmoe.model_dir import save_checkpoint
from jpmoe.train import CheckpointManager, TrainState, build_optimizer, build_scheduler


def _same(a: Transformer, b: Transformer):
    ids = torch.randint(0, a.config.vocab_size, (1, 9), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a(ids).logits, b(ids).logits)


@pytest.mark.parametrize("config", [MOE, DENSE], ids=["moe", "dense-tied"])
def test_hf_and_jpmoe_dirs_load_the_same_model(config, tmp_path):
    torch.manual_seed(0)
    ours = Transformer(config).eval()
    save_hf(ours.state_dict(), config, tmp_path / "hf")
    save_checkpoint(ours, config, tmp_path / "ckpt")
    a, b = load_pretrained(tmp_path / "hf"), load_pretrained(tmp_path / "ckpt")
    assert (a.kind, b.kind) == ("hf", "jpmoe")
    _same(ours, a.model)
    _same(ours, b.model)


def test_training_run_dir_loads_latest_step(tmp_path):
    torch.manual_seed(0)
    model = Transformer(MOE)
    opt = build_optimizer(model, lr=1e-3, weight_decay=0.0, betas=(0.9, 0.95))
    sched = build_scheduler(opt, kind="constant", warmup=0, total=10)
    ckpt = CheckpointManager(tmp_path / "run" / "checkpoints", fingerprint={"model": MOE.to_dict()}, keep=2)
    ckpt.save(TrainState(step=1), model, opt, sched)
    with torch.no_grad():
        model.tok_embeddings.weight.add_(1.0)
    ckpt.save(TrainState(step=2), model, opt, sched)
    loaded = load_pretrained(tmp_path / "run")
    assert loaded.kind == "training" and loaded.path.name.endswith("2")
    _same(model.eval(), loaded.model)


def test_damaged_files_are_named(tmp_path):
    torch.manual_seed(0)
    save_hf(Transformer(DENSE).state_dict(), DENSE, tmp_path / "hf")
    shard = sorted((tmp_path / "hf").glob("*.safetensors"))[0]
    shard.write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match=shard.name):
        load_pretrained(tmp_path / "hf")
    (tmp_path / "hf" / "config.json").write_text("{broken")
    with pytest.raises(ValueError, match="config.json"):
        load_pretrained(tmp_path / "hf")
    with pytest.raises(FileNotFoundError, match="holds no model"):
        resolve_model_path((tmp_path / "empty").mkdir() or tmp_path / "empty")
