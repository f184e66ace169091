"""Golden loss curve: the first steps of the `debug` MoE on fixed synthetic tokens, with the pretraining loss
(jpalign's chunked linear cross-entropy + MoE aux loss), AdamW and WSD. A change to the model, its init, the
loss or the runtime that moves these numbers fails here. Regenerate deliberately with JPLLM_REGEN_GOLDEN=1."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from jpalign import fused_linear_cross_entropy
from jpmoe.config import ModelConfig
from jpmoe.model import Transformer
from jpmoe.train import build_optimizer, build_scheduler, train_step

GOLDEN = Path(__file__).parent / "golden" / "debug_loss.txt"
STEPS = 12


def loss_curve() -> list[float]:
    torch.manual_seed(0)
    config = ModelConfig.preset("debug")
    model = Transformer(config)
    opt = build_optimizer(model, lr=3e-3, weight_decay=0.1, betas=(0.9, 0.95))
    sched = build_scheduler(opt, kind="wsd", warmup=3, total=STEPS)
    g = torch.Generator().manual_seed(1)
    # a learnable stream: 4 fixed sequences of 33 tokens, cycled
    data = torch.randint(0, config.vocab_size, (4, 2, 33), generator=g)

    def loss_fn(tokens):
        out = model(tokens[:, :-1], return_hidden=True)
        ce = fused_linear_cross_entropy(out.hidden.flatten(0, 1), model.lm_head.weight, tokens[:, 1:].flatten())
        return ce + out.aux_loss, {"ce": ce}

    return [train_step(model, opt, sched, [data[s % 4]], loss_fn)["loss"] for s in range(STEPS)]


def test_golden_loss_curve():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same sums on any machine, and no spinning on a shared CPU
    try:
        losses = loss_curve()
    finally:
        torch.set_num_threads(threads)
    if os.environ.get("JPLLM_REGEN_GOLDEN"):
        GOLDEN.write_text("".join(f"{i + 1} {v:.6f}\n" for i, v in enumerate(losses)))
    want = [float(line.split()[1]) for line in GOLDEN.read_text().splitlines()]
    torch.testing.assert_close(torch.tensor(losses), torch.tensor(want), rtol=0, atol=2e-4)
    assert losses[-1] < losses[0] - 0.5  # and it learns
