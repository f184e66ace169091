"""Sampling: the parameters of one generation and the per-step choice of the next token (greedy, temperature,
top-k, top-p, repetition penalty), for a batch whose rows may each have their own parameters and random stream."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SamplingParams:
    max_new_tokens: int = 32
    temperature: float = 0.0  # 0: greedy
    top_k: int = 0  # 0: off
    top_p: float = 1.0  # 1: off
    repetition_penalty: float = 1.0  # 1: off; > 1 discourages tokens already in the prompt or output (CTRL)
    stop_token_ids: tuple[int, ...] = ()
    stop_strings: tuple[str, ...] = ()  # needs `decode`; the token that completes a stop string is kept

    def __post_init__(self):
        for name in ("max_new_tokens", "top_k"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool):
                raise ValueError(f"{name} must be an int, got {v!r}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        # `not x >= 0` also catches NaN, which every comparison lets through
        if not 0 <= self.temperature < math.inf:
            raise ValueError(f"temperature must be finite and >= 0 (0: greedy), got {self.temperature}")
        if not 0 < self.repetition_penalty < math.inf:
            raise ValueError(f"repetition_penalty must be finite and > 0 (1: off), got {self.repetition_penalty}")
        if not 0 < self.top_p <= 1 or self.top_k < 0:
            raise ValueError(f"top_p must be in (0, 1] and top_k >= 0, got top_p={self.top_p} top_k={self.top_k}")
        for name in ("stop_token_ids", "stop_strings"):  # a bare str would be read as one stop string per character
            v = getattr(self, name)
            if isinstance(v, (str, int)):
                raise ValueError(f"{name} must be a sequence, got {v!r}: wrap it as ({v!r},)")
            object.__setattr__(self, name, tuple(v))
        if any(not isinstance(s, str) or not s for s in self.stop_strings):
            raise ValueError(f"stop_strings must be non-empty strings, got {self.stop_strings!r}")


def apply_repetition_penalty(logits: torch.Tensor, seen: torch.Tensor, penalty: float | torch.Tensor) -> torch.Tensor:
    """CTRL (arXiv:1909.05858) as transformers: seen tokens' logits divided by penalty if > 0, else multiplied.

    logits (B, V) fp32; seen (B, V) bool; penalty a float or (B, 1) per row."""
    penalised = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, penalised, logits)


def filter_top_k_top_p(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Set to -inf every logit outside the top k and outside the smallest set whose probability reaches top_p
    (the most likely token always stays). logits (B, V) fp32."""
    if top_k > 0:
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # (B, V)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop = cum - sorted_logits.softmax(-1) >= top_p  # mass before this token already reaches top_p
        drop[:, 0] = False
        logits = logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))
    return logits


def next_tokens(logits: torch.Tensor, seen: torch.Tensor, params: SamplingParams,
                generator: torch.Generator | None) -> torch.Tensor:
    """logits (B, V) -> token ids (B,): repetition penalty, then greedy or temperature/top-k/top-p sampling."""
    logits = logits.float()
    if params.repetition_penalty != 1.0:
        logits = apply_repetition_penalty(logits, seen, params.repetition_penalty)
    if params.temperature == 0.0:
        return logits.argmax(-1)
    logits = filter_top_k_top_p(logits / params.temperature, params.top_k, params.top_p)
    return torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(1)


def sample_rows(logits: torch.Tensor, seen: torch.Tensor, params: Sequence[SamplingParams],
                generators: Sequence[torch.Generator | None]) -> list[int]:
    """One token per row, each row with its own parameters and random stream: logits (B, V), seen (B, V) bool.

    Greedy rows cost one batched argmax; only sampled rows are visited one by one (their own generator)."""
    logits = logits.float()
    penalties = [p.repetition_penalty for p in params]
    if any(p != 1.0 for p in penalties):
        pen = torch.tensor(penalties, dtype=logits.dtype, device=logits.device)[:, None]  # (B, 1)
        logits = apply_repetition_penalty(logits, seen, pen)
    out = logits.argmax(-1).tolist()
    for b, p in enumerate(params):
        if p.temperature > 0.0:
            row = filter_top_k_top_p(logits[b : b + 1] / p.temperature, p.top_k, p.top_p)  # (1, V)
            out[b] = int(torch.multinomial(row.softmax(-1), 1, generator=generators[b]))
    return out
