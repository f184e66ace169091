"""Shared pieces of the chunked (fused linear + loss) ops: argument checks, chunk sizing, fp32 logits of one chunk.

The fused ops never build the (tokens, vocabulary) logits: they walk over the labelled tokens in chunks of
`chunk_size` rows, so at most one (chunk_size, V) float32 buffer is alive at a time.
"""

from __future__ import annotations

import torch

IGNORE_INDEX = -100

# Default chunk: about 2**25 float32 logits (128 MiB) per chunk, i.e. 512 tokens at V = 65,536.
_CHUNK_ELEMENTS = 1 << 25


def default_chunk_size(vocab_size: int) -> int:
    """Tokens per chunk so that one chunk's float32 logits hold about 2**25 elements (at least 32 tokens)."""
    return max(32, min(8192, _CHUNK_ELEMENTS // max(vocab_size, 1)))


def flatten_inputs(
    hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, ignore_index: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Check shapes and label range; return hidden as (N, H) and labels as (N,) (views when possible)."""
    if weight.dim() != 2:
        raise ValueError(f"weight must be (V, H), got shape {tuple(weight.shape)}")
    if hidden.shape[-1] != weight.shape[1]:
        raise ValueError(f"hidden size {hidden.shape[-1]} does not match weight (V, H) = {tuple(weight.shape)}")
    if hidden.shape[:-1] != labels.shape:
        raise ValueError(f"hidden {tuple(hidden.shape)} and labels {tuple(labels.shape)} do not align")
    if labels.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"labels must be int64 or int32, got {labels.dtype}")
    flat_h = hidden.reshape(-1, hidden.shape[-1])  # (N, H)
    flat_y = labels.reshape(-1).long()  # (N,)
    valid = flat_y[flat_y != ignore_index]
    if valid.numel() and (int(valid.min()) < 0 or int(valid.max()) >= weight.shape[0]):
        raise ValueError(
            f"labels must lie in [0, {weight.shape[0]}) or equal ignore_index={ignore_index}; "
            f"got min {int(valid.min())}, max {int(valid.max())}"
        )
    return flat_h, flat_y


def weight_fp32(weight: torch.Tensor) -> torch.Tensor:
    """The lm_head weight in float32 (no copy when it already is): logits are always accumulated in fp32."""
    return weight if weight.dtype == torch.float32 else weight.float()


def chunk_logits(hidden: torch.Tensor, rows: torch.Tensor, w32: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gather `rows` of hidden (N, H), upcast to fp32, and project: returns (h (C, H) fp32, logits (C, V) fp32)."""
    h = hidden.index_select(0, rows).float()  # (C, H)
    return h, h @ w32.t()  # (C, V)


def logsumexp_(logits: torch.Tensor) -> torch.Tensor:
    """Log-sum-exp over the last dim of logits (C, V) in fp32, using the buffer as scratch (it is overwritten)."""
    m = logits.amax(dim=-1, keepdim=True)  # (C, 1)
    return (m + logits.sub_(m).exp_().sum(dim=-1, keepdim=True).log()).squeeze(-1)


def softmax_lse_(logits: torch.Tensor) -> torch.Tensor:
    """Turn logits (C, V) into softmax probabilities in place; return the log-sum-exp (C,) in fp32."""
    m = logits.amax(dim=-1, keepdim=True)  # (C, 1)
    logits.sub_(m).exp_()
    s = logits.sum(dim=-1, keepdim=True)  # (C, 1)
    logits.div_(s)
    return (m + s.log()).squeeze(-1)
