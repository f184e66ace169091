"""One optimiser step: gradient accumulation over micro-batches, clipping, loss-spike detection.

The loss is a function the app passes in: `loss_fn(micro_batch) -> (loss, stats)`, where `loss` is the scalar to
minimise (LM loss plus MoE aux loss) and `stats` holds detached tensors to log (e.g. "ce", "aux_loss",
"expert_load" (L, E)). For pretraining the app builds it from jpalign's chunked linear cross-entropy, so full
logits never exist. No Trainer class: the app writes its loop around this function.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence

import torch

from jpmoe.train.dist import all_reduce_mean

LossFn = Callable[[torch.Tensor], tuple[torch.Tensor, dict[str, torch.Tensor]]]


class SpikeDetector:
    """Flags a loss that jumps `sigma` standard deviations (and at least `min_delta`) above the recent mean,
    or that is not finite. Its window is part of the checkpoint, so a resumed run makes the same decisions."""

    def __init__(self, *, window: int = 50, sigma: float = 6.0, min_delta: float = 0.5, min_history: int = 10):
        self.window, self.sigma, self.min_delta, self.min_history = window, sigma, min_delta, min_history
        self.history: deque[float] = deque(maxlen=window)

    def is_spike(self, loss: float) -> bool:
        if not math.isfinite(loss):
            return True
        if len(self.history) < self.min_history:
            return False
        mean = sum(self.history) / len(self.history)
        std = math.sqrt(sum((x - mean) ** 2 for x in self.history) / len(self.history))
        return loss > mean + max(self.sigma * std, self.min_delta)

    def update(self, loss: float) -> None:
        self.history.append(loss)

    def state_dict(self) -> dict:
        return {"history": list(self.history)}

    def load_state_dict(self, state: dict) -> None:
        self.history = deque(state.get("history", []), maxlen=self.window)


def _grad_norm(model: torch.nn.Module, max_norm: float) -> torch.Tensor:
    """Clip to `max_norm` (inf: measure only); FSDP2 gives a DTensor norm, made whole here."""
    params = [p for p in model.parameters() if p.grad is not None]
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm if max_norm > 0 else float("inf"), foreach=True)
    return norm.full_tensor() if hasattr(norm, "full_tensor") else norm


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler, micro_batches: Sequence,
               loss_fn: LossFn, *, max_grad_norm: float = 1.0, spikes: SpikeDetector | None = None) -> dict:
    """Accumulate gradients over `micro_batches`, then step unless the loss spiked.

    Returns floats: loss (mean over micro-batches and ranks), grad_norm, lr, skipped (1.0 when the update was
    dropped), and the mean of each scalar stat; "expert_load" comes back as a (L, E) CPU tensor.
    """
    n = len(micro_batches)
    total: torch.Tensor | float = 0.0
    sums: dict[str, torch.Tensor] = {}
    for mb in micro_batches:
        loss, stats = loss_fn(mb)
        (loss / n).backward()
        total = total + loss.detach().float()  # stays on the device: no host sync per micro-batch
        for k, v in stats.items():
            v = v.detach().float()
            sums[k] = sums[k] + v if k in sums else v
    load = sums.pop("expert_load", None)
    names = sorted(sums)
    # one collective for the loss and every scalar stat (on the loss's device: NCCL needs CUDA tensors)
    scalars = all_reduce_mean(torch.stack([torch.as_tensor(total)] + [sums[k] for k in names]) / n).tolist()
    loss_mean, out = scalars[0], dict(zip(names, scalars[1:]))
    if load is not None:
        out["expert_load"] = all_reduce_mean(load).cpu()  # (L, E) summed over micro-batches, mean over ranks
    lr = optimizer.param_groups[0]["lr"]
    grad_norm = float(_grad_norm(model, max_grad_norm))
    spiked = spikes is not None and (spikes.is_spike(loss_mean) or not math.isfinite(grad_norm))
    if spiked:
        optimizer.zero_grad(set_to_none=True)
    else:
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if spikes is not None:
            spikes.update(loss_mean)
    return {"loss": loss_mean, "grad_norm": grad_norm, "lr": lr, "skipped": float(spiked), **out}


def expert_load_metrics(load: torch.Tensor) -> dict[str, float]:
    """(L, E) routed-token counts -> per-layer max/mean imbalance and each expert's share (for logging)."""
    share = load / load.sum(dim=1, keepdim=True).clamp(min=1)  # (L, E)
    out = {f"moe/imbalance_l{i}": float(share[i].max() * load.shape[1]) for i in range(load.shape[0])}
    out.update({f"moe/load_l{i}_e{j}": float(share[i, j]) for i in range(load.shape[0]) for j in range(load.shape[1])})
    return out
