"""Precompute and cache the reference model's log-probs of preference pairs (DPO without a second live model).

The cache stores, per pair, the summed response log-probs and the response token counts, so both bases are
available (summed for DPO sigmoid/hinge/robust, averaged for IPO). It is keyed by a fingerprint of the pairs'
token ids and a caller-given model tag: loading it for other data or another reference model is an error, not a
silent reuse (TRL's old bug of evaluating with the trained policy as reference).

The pass is long for a large preference set, so it prints progress and, through `cached_reference_logps`, keeps
a partial file (`<cache>.partial`, the pairs scored so far) that a rerun after a kill continues from: no pair is
scored twice, and the result equals an uninterrupted pass.
"""

from __future__ import annotations

import hashlib
import pickle
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from jpalign.chunking import IGNORE_INDEX
from jpalign.fused_losses import fused_sequence_logps
from jpalign.logps import sequence_logps
from jpalign.pairs import EncodedPair, collate_pairs
from jpalign.sft import shift_labels

# forward(batch) -> logits (2B, T, V) aligned with input_ids, or (hidden (2B, T, H), lm_head weight (V, H))
_TENSORS = ("chosen_sum", "rejected_sum", "chosen_count", "rejected_count")
Forward = Callable[[dict], "torch.Tensor | tuple[torch.Tensor, torch.Tensor]"]


def fingerprint(pairs: list[EncodedPair], model_tag: str) -> str:
    """sha256 over the model tag and every pair's prompt/chosen/rejected ids."""
    h = hashlib.sha256(model_tag.encode())
    for p in pairs:
        for ids in (p.prompt_ids, p.chosen_ids, p.rejected_ids):
            h.update(torch.tensor(ids, dtype=torch.int64).numpy().tobytes())
            h.update(b"|")
    return h.hexdigest()


@dataclass
class ReferenceLogps:
    chosen_sum: torch.Tensor  # (N,) float32
    rejected_sum: torch.Tensor  # (N,)
    chosen_count: torch.Tensor  # (N,) int64 response tokens scored
    rejected_count: torch.Tensor  # (N,)
    fingerprint: str

    def for_batch(self, indices: list[int] | torch.Tensor, *, average: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(ref_chosen, ref_rejected) for the pairs at `indices`, summed or averaged per token."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        c, r = self.chosen_sum[idx], self.rejected_sum[idx]
        if average:
            return c / self.chosen_count[idx].clamp(min=1), r / self.rejected_count[idx].clamp(min=1)
        return c, r

    def save(self, path: str | Path) -> None:
        """Write atomically (a temporary file, then a rename): a kill never leaves a half-written file."""
        path = Path(path)
        fp = torch.tensor(list(self.fingerprint.encode()), dtype=torch.uint8)
        tensors = {k: getattr(self, k) for k in _TENSORS}
        tmp = path.with_name(path.name + ".tmp")
        torch.save({**tensors, "fingerprint": fp}, tmp)
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path, *, expected_fingerprint: str) -> ReferenceLogps:
        try:  # tensors and plain data only: a cache file someone handed over never runs code
            state = torch.load(path, weights_only=True)
        except Exception as err:  # torch's message would suggest weights_only=False: never for a cache file
            if isinstance(err, pickle.UnpicklingError) and "GLOBAL" in str(err):  # asks for code, not damage
                raise ValueError(f"{path}: refused to load it: it asks for {str(err).split('GLOBAL ')[1].split()[0]}, "
                                 "which a reference log-prob cache never holds (it may have been tampered with; "
                                 "nothing from it was run); delete it to recompute") from None
            raise ValueError(f"{path}: not a readable reference log-prob cache ({type(err).__name__}); "
                             "delete it to recompute") from None
        if not isinstance(state, dict) or set(state) != {*_TENSORS, "fingerprint"} or not all(
                isinstance(v, torch.Tensor) for v in state.values()):
            raise ValueError(f"{path}: not a reference log-prob cache (other contents); delete it to recompute")
        found = bytes(state.pop("fingerprint").tolist()).decode()
        if found != expected_fingerprint:
            raise ValueError(f"{path}: reference log-probs were computed for other pairs or another model tag")
        return cls(**state, fingerprint=found)


def _load_partial(path: Path | None, expected: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(sums (2, n), counts (2, n)) of the first n pairs from a partial file of this very pass, else empty. A
    partial file is a ReferenceLogps of those n pairs under the full pass's fingerprint."""
    try:
        ref = ReferenceLogps.load(path, expected_fingerprint=expected) if path and path.exists() else None
    except ValueError:  # unreadable, or another pass's: only ever a speed-up, so recompute
        ref = None
    if ref is None:
        return torch.zeros(2, 0), torch.zeros(2, 0, dtype=torch.long)
    return torch.stack([ref.chosen_sum, ref.rejected_sum]), torch.stack([ref.chosen_count, ref.rejected_count])


def precompute_reference_logps(forward: Forward, pairs: list[EncodedPair], *, pad_token_id: int, model_tag: str,
                               batch_size: int = 8, chunk_size: int | None = None, partial: str | Path | None = None,
                               save_every_s: float = 60.0, progress_every_s: float = 30.0) -> ReferenceLogps:
    """Run the reference `forward` over the pairs in batches under inference mode; keep sums and counts.

    With `partial` (a file path), the pairs scored so far are saved there every `save_every_s` seconds and a
    matching partial file is continued from. A progress line goes to stderr every `progress_every_s` seconds
    (0: none)."""
    if not pairs:
        raise ValueError("no preference pairs to score (were they all dropped? see the DropReport)")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    fp = fingerprint(pairs, model_tag)
    partial = Path(partial) if partial is not None else None
    done_s, done_n = _load_partial(partial, fp)
    sums, counts, first = [done_s], [done_n], done_s.shape[1]
    t0 = last_save = last_print = time.perf_counter()
    with torch.inference_mode():
        for start in range(first, len(pairs), batch_size):
            chunk = pairs[start : start + batch_size]
            batch = collate_pairs(chunk, pad_token_id)
            labels = shift_labels(batch["labels"])
            out = forward(batch)
            if isinstance(out, tuple):
                logps = fused_sequence_logps(out[0], out[1], labels, chunk_size=chunk_size)
            else:
                logps = sequence_logps(out, labels)
            b = len(chunk)
            n = (labels != IGNORE_INDEX).sum(-1)
            sums.append(torch.stack([logps[:b], logps[b:]]).float().cpu())  # (2, b)
            counts.append(torch.stack([n[:b], n[b:]]).cpu())
            now, done = time.perf_counter(), start + b
            if partial is not None and now - last_save >= save_every_s and done < len(pairs):
                sums, counts = [torch.cat(sums, 1)], [torch.cat(counts, 1)]
                ReferenceLogps(*sums[0], *counts[0], fp).save(partial)
                last_save = now
            if progress_every_s and (now - last_print >= progress_every_s or done == len(pairs)):
                rate = (done - first) / max(now - t0, 1e-9)
                print(f"reference log-probs: {done:,}/{len(pairs):,} pairs ({rate:,.1f} pairs/s"
                      f"{f', resumed at {first:,}' if first else ''})", file=sys.stderr, flush=True)
                last_print = now
    s, n = torch.cat(sums, 1), torch.cat(counts, 1)
    return ReferenceLogps(s[0].clone(), s[1].clone(), n[0].clone(), n[1].clone(), fp)


def cached_reference_logps(path: str | Path, forward: Forward, pairs: list[EncodedPair], *, pad_token_id: int,
                           model_tag: str, **kwargs) -> ReferenceLogps:
    """Load the cache at `path` when it matches these pairs and model tag, else compute it and save it there
    (continuing from `<path>.partial` when a killed run left one)."""
    path = Path(path)
    if path.exists():
        return ReferenceLogps.load(path, expected_fingerprint=fingerprint(pairs, model_tag))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    ref = precompute_reference_logps(forward, pairs, pad_token_id=pad_token_id, model_tag=model_tag,
                                     partial=partial, **kwargs)
    ref.save(path)
    partial.unlink(missing_ok=True)
    return ref
