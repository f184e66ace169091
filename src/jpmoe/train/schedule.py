"""AdamW and learning-rate schedules: warmup-stable-decay (WSD, arXiv:2404.06395) and cosine.

WSD: linear warmup to the peak, constant, then a linear decay to `min_lr_ratio * peak` over the last
`decay_frac` of training. It lets a run be extended or a stage added without re-warming (the schedule used by
MiniCPM and by staged pretraining). Cosine: warmup then `min + (1 - min) * (1 + cos(pi * progress)) / 2`.
"""

from __future__ import annotations

import math

import torch

SCHEDULES = ("wsd", "cosine", "constant")


def lr_factor(step: int, *, kind: str, warmup: int, total: int, decay_frac: float = 0.2,
              min_lr_ratio: float = 0.1) -> float:
    """Multiplier of the peak learning rate at optimiser step `step` (0-based)."""
    if kind not in SCHEDULES:
        raise ValueError(f"unknown schedule {kind!r}; choose one of {SCHEDULES}")
    if step < warmup:
        return (step + 1) / warmup
    if kind == "constant":
        return 1.0
    if kind == "wsd":
        decay_steps = max(1, int(total * decay_frac))
        start = total - decay_steps
        if step < start:
            return 1.0
        progress = min(1.0, (step - start) / decay_steps)
        return 1.0 - (1.0 - min_lr_ratio) * progress
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_optimizer(model: torch.nn.Module, *, lr: float, weight_decay: float, betas: tuple[float, float],
                    eps: float = 1e-8) -> torch.optim.AdamW:
    """AdamW with no weight decay on 1-D parameters (norm gains, biases), as in GPT-2/Llama recipes."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, foreach=True)


def build_scheduler(optimizer: torch.optim.Optimizer, *, kind: str, warmup: int, total: int, decay_frac: float = 0.2,
                    min_lr_ratio: float = 0.1) -> torch.optim.lr_scheduler.LambdaLR:
    lr_factor(0, kind=kind, warmup=warmup, total=total)  # validates `kind` now, not at the first step
    if not 0 < decay_frac <= 1 or not 0 <= min_lr_ratio <= 1 or warmup < 0:
        raise ValueError(f"need 0 < decay_frac <= 1, 0 <= min_lr_ratio <= 1 and warmup >= 0; got decay_frac="
                         f"{decay_frac}, min_lr_ratio={min_lr_ratio}, warmup={warmup}")
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(
        s, kind=kind, warmup=warmup, total=total, decay_frac=decay_frac, min_lr_ratio=min_lr_ratio))
