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
