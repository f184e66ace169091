"""Autoregressive generation with a KV cache: greedy or sampled (temperature, top-k, top-p), repetition penalty,
stop tokens and stop strings, batched prompts of different lengths (left padding, per-row positions)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from jpmoe.model import Transformer


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


def apply_repetition_penalty(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL (arXiv:1909.05858) as transformers: seen tokens' logits divided by penalty if > 0, else multiplied.

    logits (B, V) fp32; seen (B, V) bool."""
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


def left_pad(prompts: Sequence[Sequence[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts of different lengths -> ids (B, P) left-padded and mask (B, P), 1 on real tokens."""
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError("every prompt needs at least one token")
    P = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), P), pad_id, dtype=torch.long, device=device)
    mask = torch.zeros(len(prompts), P, dtype=torch.bool, device=device)
    for b, p in enumerate(prompts):
        ids[b, P - len(p):] = torch.as_tensor(list(p), dtype=torch.long)
        mask[b, P - len(p):] = True
    return ids, mask


def _hit_stop_string(tokens: list[int], stops: tuple[str, ...], decode: Callable[[list[int]], str]) -> bool:
    text = decode(tokens)
    return any(s in text for s in stops)


@torch.no_grad()
def generate(model: Transformer, prompts: Sequence[Sequence[int]], params: SamplingParams = SamplingParams(), *,
             decode: Callable[[list[int]], str] | None = None, pad_id: int = 0,
             generator: torch.Generator | None = None) -> list[list[int]]:
    """Generate for each prompt (a list of token ids); returns the new tokens of each row, ending with the stop
    token or the token that completed a stop string when one was hit."""
    if params.stop_strings and decode is None:
        raise ValueError("stop_strings need a `decode` function (token ids -> text)")
    device = model.tok_embeddings.weight.device
    ids, mask = left_pad(prompts, pad_id, device)
    B, P = ids.shape
    total = P + params.max_new_tokens
    if total > model.config.max_seq_len:
        raise ValueError(f"prompt length {P} + max_new_tokens {params.max_new_tokens} exceeds max_seq_len "
                         f"{model.config.max_seq_len}")
    V = model.config.vocab_size
    if int(ids.min()) < 0 or int(ids.max()) >= V:
        raise ValueError(f"token ids must be in [0, {V}), got min {int(ids.min())} max {int(ids.max())}")
    cache = model.new_cache(B, total)
    seen = torch.zeros(B, V, dtype=torch.long, device=device).scatter_add_(1, ids, mask.long()) > 0  # (B, V)
    positions = (mask.long().cumsum(1) - 1).clamp(min=0)  # (B, P): each row starts at position 0
    out: list[list[int]] = [[] for _ in range(B)]
    done = [False] * B
    stop_ids = set(params.stop_token_ids)
    logits = model(ids, position_ids=positions, attention_mask=mask, cache=cache).logits[:, -1]  # (B, V)
    next_pos = positions[:, -1:] + 1  # (B, 1)
    for step in range(params.max_new_tokens):
        tok = next_tokens(logits, seen, params, generator)  # (B,)
        for b, t in enumerate(tok.tolist()):
            if done[b]:
                continue
            out[b].append(t)
            if t in stop_ids or (params.stop_strings and _hit_stop_string(out[b], params.stop_strings, decode)):
                done[b] = True
        if all(done) or step == params.max_new_tokens - 1:
            break
        seen[torch.arange(B, device=device), tok] = True
        mask = torch.cat([mask, mask.new_ones(B, 1)], dim=1)
        logits = model(tok[:, None], position_ids=next_pos, attention_mask=mask, cache=cache).logits[:, -1]
        next_pos = next_pos + 1
    return out
