"""Sample generations during training: greedy continuations of fixed prompts with jpmoe.generate (greedy draws
no random numbers, so a resumed run stays bit-identical). Under FSDP2 every rank calls it (the forward is
collective); rank 0 writes."""

from __future__ import annotations

import torch

from jpmoe.generate import SamplingParams, generate


@torch.no_grad()
def greedy_continuations(model: torch.nn.Module, tokenizer, prompts: list[str], *,
                         max_new_tokens: int = 32) -> list[str]:
    was_training = model.training
    model.eval()
    ids = [tokenizer.encode(p, add_special_tokens=True) for p in prompts]
    room = model.config.max_seq_len - max(len(i) for i in ids)
    params = SamplingParams(max_new_tokens=max(1, min(max_new_tokens, room)), stop_token_ids=(tokenizer.eos_token_id,))
    outs = generate(model, ids, params, pad_id=tokenizer.pad_token_id)
    model.train(was_training)
    return [tokenizer.decode(o, skip_special_tokens=True) for o in outs]
