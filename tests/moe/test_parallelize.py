"""FSDP2 on two CPU processes (gloo) against one process with the same global batch; activation checkpointing
and compile leave the numbers unchanged."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from jpmoe import ModelConfig, Transformer
from jpmoe.parallelize import parallelize

WORKER = Path(__file__).with_name("fsdp_worker.py")


def run(cmd: list[str]) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


@pytest.mark.slow
def test_fsdp2_two_processes_match_one_process(tmp_path):
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    run(torchrun + [str(WORKER), str(tmp_path / "fsdp")])
    run([sys.executable, str(WORKER), str(tmp_path / "single")])
    l2 = json.loads((tmp_path / "fsdp" / "losses.json").read_text())
    l1 = json.loads((tmp_path / "single" / "losses.json").read_text())
    assert len(l1) == 3 and l1 != [l1[0]] * 3
    torch.testing.assert_close(torch.tensor(l2), torch.tensor(l1), rtol=1e-6, atol=1e-6)
    w2, w1 = load_file(tmp_path / "fsdp" / "model.safetensors"), load_file(tmp_path / "single" / "model.safetensors")
    assert sorted(w2) == sorted(w1)
    torch.manual_seed(0)
    init = Transformer(ModelConfig.preset("debug", vocab_size=128, hidden_size=32, intermediate_size=48,
                                          max_seq_len=32, init_std=0.1)).state_dict()
    for k in w1:
        torch.testing.assert_close(w2[k], w1[k], rtol=1e-5, atol=1e-6, msg=k)
        assert not torch.equal(w1[k], init[k]), f"{k} was not updated"


def test_activation_checkpointing_keeps_keys_and_gradients():
    cfg = ModelConfig.preset("debug", init_std=0.1)
    torch.manual_seed(0)
    a, b = Transformer(cfg), Transformer(cfg)
    b.load_state_dict(a.state_dict())
    parallelize(b, None, activation_checkpointing=True)
    assert list(a.state_dict()) == list(b.state_dict())
    ids = torch.randint(0, cfg.vocab_size, (2, 9))
    for m in (a, b):
        out = m(ids)
        (out.logits.float().logsumexp(-1).mean() + out.aux_loss).backward()
    for (k, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=k)


@pytest.mark.slow
def test_compile_and_checkpointing_match_eager():
    cfg = ModelConfig.preset("debug", init_std=0.1)
    torch.manual_seed(0)
    a, b = Transformer(cfg), Transformer(cfg)
    b.load_state_dict(a.state_dict())
    parallelize(b, None, compile=True, activation_checkpointing=True)
    ids = torch.randint(0, cfg.vocab_size, (2, 16))
    la, lb = a(ids).logits, b(ids).logits
    torch.testing.assert_close(lb, la, atol=1e-5, rtol=1e-5)
    la.float().logsumexp(-1).mean().backward()
    lb.float().logsumexp(-1).mean().backward()
    for (k, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(q.grad, p.grad, atol=1e-5, rtol=1e-5, msg=k)
