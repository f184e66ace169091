"""Autoregressive generation with a KV cache: greedy or sampled (temperature, top-k, top-p), repetition penalty,
stop tokens and stop strings, batched prompts of different lengths.

`generate` runs every prompt to completion on `jpmoe.decoder.Decoder` (static KV cache, rows leave as they
finish); a server or a chat loop drives the Decoder step by step itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from jpmoe.decoder import Decoder, Row
from jpmoe.model import Transformer
from jpmoe.sampling import (  # noqa: F401 (re-exported: the public generation API lives here)
    SamplingParams,
    apply_repetition_penalty,
    filter_top_k_top_p,
    next_tokens,
    sample_rows,
)

GREEDY_32 = SamplingParams()  # the default: 32 greedy tokens


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


def hit_stop_string(tokens: list[int], stops: tuple[str, ...], decode: Callable[[list[int]], str]) -> bool:
    text = decode(tokens)
    return any(s in text for s in stops)


@torch.no_grad()
def generate(model: Transformer, prompts: Sequence[Sequence[int]], params: SamplingParams = GREEDY_32, *,
             decode: Callable[[list[int]], str] | None = None, pad_id: int = 0,
             generator: torch.Generator | None = None) -> list[list[int]]:
    """Generate for each prompt (a list of token ids); returns the new tokens of each row, ending with the stop
    token or the token that completed a stop string when one was hit. `pad_id` is kept for callers of the older
    left-padded implementation; the static cache needs no padding token."""
    if params.stop_strings and decode is None:
        raise ValueError("stop_strings need a `decode` function (token ids -> text)")
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError("every prompt needs at least one token")
    P = max(len(p) for p in prompts)
    if P + params.max_new_tokens > model.config.max_seq_len:
        raise ValueError(f"prompt length {P} + max_new_tokens {params.max_new_tokens} exceeds max_seq_len "
                         f"{model.config.max_seq_len}")
    if is_sharded(model):  # FSDP2: the weights are DTensor shards, the forward is collective
        return generate_sharded(model, prompts, params, decode=decode, pad_id=pad_id, generator=generator)
    dec = Decoder(model, max_batch=len(prompts), max_len=P + params.max_new_tokens)
    rows = [Row(list(p), params, generator) for p in prompts]
    dec.add(rows)
    while True:
        if params.stop_strings:
            for r in list(dec.rows):
                if hit_stop_string(r.tokens, params.stop_strings, decode):
                    dec.finish(r, "stop")
        if not dec.rows:
            break
        dec.step()
    return [r.tokens for r in rows]


def is_sharded(model: torch.nn.Module) -> bool:
    """True when the parameters are DTensors (FSDP2): the Decoder reads raw weights, which a shard is not."""
    return any(type(p).__name__ == "DTensor" for p in model.parameters())


def generate_sharded(model: Transformer, prompts: Sequence[Sequence[int]], params: SamplingParams, *,
                     decode: Callable[[list[int]], str] | None, pad_id: int,
                     generator: torch.Generator | None) -> list[list[int]]:
    """`generate` through the model's own forward (left padding, per-row positions, the model's KV cache), for a
    model under FSDP2 whose every rank must run the same forwards (sample generations during training)."""
    device = model.tok_embeddings.weight.device
    ids, mask = left_pad(prompts, pad_id, device)
    B, P = ids.shape
    cache = model.new_cache(B, P + params.max_new_tokens)
    seen = torch.zeros(B, model.config.vocab_size, dtype=torch.long, device=device).scatter_add_(
        1, ids, mask.long()) > 0  # (B, V)
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
            if t in stop_ids or (params.stop_strings and hit_stop_string(out[b], params.stop_strings, decode)):
                done[b] = True
        if all(done) or step == params.max_new_tokens - 1:
            break  # every rank sees the same tokens, so every rank stops at the same step
        seen[torch.arange(B, device=device), tok] = True
        mask = torch.cat([mask, mask.new_ones(B, 1)], dim=1)
        logits = model(tok[:, None], position_ids=next_pos, attention_mask=mask, cache=cache).logits[:, -1]
        next_pos = next_pos + 1
    return out
