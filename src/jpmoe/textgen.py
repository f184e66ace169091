"""Text in, text out on top of `jpmoe.generate`: what evaluation (and any app that scores a model on prompts)
needs from a loaded model and its Hugging Face tokenizer.

- `generate_texts`: batched generation of many prompts (sorted by length so a batch pads little), prompts cut
  from the left when prompt + new tokens would pass `max_seq_len` (flagged), each answer returned with its token
  ids and whether it stopped (EOS, an end-of-turn token or a stop string) or ran into max tokens.
- `choice_logprobs`: the log-likelihood of each candidate continuation after one context, the way
  lm-evaluation-harness scores multiple choice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from jpmoe.generate import SamplingParams, generate
from jpmoe.model import Transformer

END_OF_TURN = ("<|end|>", "<|im_end|>", "<|eot_id|>", "<|endoftext|>")


@dataclass
class Generation:
    text: str
    token_ids: list[int]
    finish: str  # "stop": EOS / end-of-turn / stop string; "length": ran into max_new_tokens
    truncated: bool  # the prompt was cut from the left to fit max_seq_len


def stop_token_ids(tokenizer) -> tuple[int, ...]:
    """EOS and the end-of-turn markers the tokenizer knows as single tokens."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    vocab = tokenizer.get_vocab()
    ids |= {vocab[t] for t in END_OF_TURN if t in vocab}
    return tuple(sorted(ids))


def _fit(prompt: list[int], max_seq_len: int, max_new: int) -> tuple[list[int], bool]:
    keep = max_seq_len - max_new
    return (prompt, False) if len(prompt) <= keep else (prompt[len(prompt) - keep:], True)


def generate_texts(model: Transformer, tokenizer, prompts: list[list[int]], params: SamplingParams, *,
                   batch_size: int = 8, generator: torch.Generator | None = None,
                   progress: Callable[[int, int, float], None] | None = None) -> list[Generation]:
    """Generate for every prompt (token ids); `progress(done, total, new_tokens_per_second)` after each batch.
    max_new_tokens is lowered to half of max_seq_len when it would leave no room for the prompt."""
    max_len = model.config.max_seq_len
    params = replace(params, max_new_tokens=min(params.max_new_tokens, max_len // 2),
                     stop_token_ids=tuple(params.stop_token_ids) or stop_token_ids(tokenizer))
    stops = set(params.stop_token_ids)

    def decode(ids: list[int]) -> str:
        return tokenizer.decode(ids, skip_special_tokens=False)

    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[Generation | None] = [None] * len(prompts)
    t0, new_tokens = time.perf_counter(), 0
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        fitted = [_fit(list(prompts[i]), max_len, params.max_new_tokens) for i in idx]
        rows = generate(model, [p for p, _ in fitted], params, decode=decode if params.stop_strings else None,
                        pad_id=tokenizer.pad_token_id or 0, generator=generator)
        for i, (_, cut), ids in zip(idx, fitted, rows):
            new_tokens += len(ids)
            stopped = bool(ids) and ids[-1] in stops
            text = decode(ids[:-1] if stopped else ids)
            hit = [s for s in params.stop_strings if s in text]
            if hit:
                text = text[:min(text.index(s) for s in hit)]
            out[i] = Generation(text, ids, "stop" if stopped or hit else "length", cut)
        if progress:
            progress(min(start + batch_size, len(order)), len(order), new_tokens / (time.perf_counter() - t0))
    return out  # type: ignore[return-value]


@torch.no_grad()
def choice_logprobs(model: Transformer, context: list[int], choices: list[list[int]]) -> list[float]:
    """Sum of log p(choice tokens | context) for each choice (one batch, right-padded; the context is cut from the
    left when context + the longest choice passes max_seq_len)."""
    if not choices or any(not c for c in choices):
        raise ValueError("every choice needs at least one token")
    longest = max(len(c) for c in choices)
    ctx = context[-(model.config.max_seq_len - longest):]
    rows = [ctx + c for c in choices]
    T = max(len(r) for r in rows)
    device = model.tok_embeddings.weight.device
    ids = torch.zeros(len(rows), T, dtype=torch.long, device=device)  # (B, T), right padding is never attended
    for b, r in enumerate(rows):
        ids[b, :len(r)] = torch.as_tensor(r)
    logp = model(ids).logits.float().log_softmax(-1)  # (B, T, V)
    out = []
    for b, c in enumerate(choices):
        pos = torch.arange(len(ctx) - 1, len(ctx) - 1 + len(c), device=device)  # logits that predict the choice
        out.append(float(logp[b, pos, torch.as_tensor(c, device=device)].sum()))
    return out
