"""For the "torch" expert MLP (moe_mlp_torch.py): where each (token, expert) pair of a dropless MoE layer lives in
the expert-sorted, padded row buffer.

Experts are cut into runs of consecutive experts ("groups"); every expert of a group gets the same number of rows
(the group's capacity, its largest padded count), so one group is one `torch.bmm` over a (experts, capacity, N)
view of the buffer against the contiguous weight slice w[e0:e1]. One batched call instead of one matmul per expert
keeps 2 threads busy on small per-expert matmuls (E=64: 1.2x in fp32, 2x in bf16, measured) and costs one thread
synchronisation instead of E. The cut minimises padded rows + GROUP_COST_ROWS per group (a dynamic programme):
balanced routing gives one group, a skewed one several, the worst case one expert per group (the plain loop).
Padding rows are zero in every gathered input, so they add zeros to the weight gradients and are never read back.

Letters: T tokens, K experts per token, P = T*K pairs, E experts, N rows of the padded buffer.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

GROUP_COST_ROWS = {4: 32, 2: 256}  # a group's fixed cost in padded rows by element size (measured: batching pays
# more in bf16, where oneDNN's per-call setup is larger, than in fp32 MKL, where padding costs more); tests vary it
MAX_GROUP_EXPERTS = 64  # bounds the dynamic programme's window (E=256: 16k steps)


def align_rows(n: int, dtype: torch.dtype = torch.bfloat16) -> int:
    """Round an expert's row count up. 16-bit dtypes: multiples of 32, or of n/16 for large n (<= 6.25% padding),
    so oneDNN's JIT-compiled (AMX) kernels see few distinct shapes and are reused. fp32 (MKL): multiples of 8."""
    if n == 0:
        return 0
    if dtype.itemsize >= 4:
        return -(-n // 8) * 8
    step = max(32, 1 << max(n.bit_length() - 5, 0))
    return -(-n // step) * step


class Group(NamedTuple):
    e0: int  # first expert
    e1: int  # one past the last expert
    row0: int  # first row of the group in the buffer
    cap: int  # rows per expert


def plan_groups(caps: list[int], cost_rows: int, batch_round: int = 1) -> list[Group]:
    """Cut experts 0..E-1 into runs minimising the sum over runs of len * (max cap in run) + cost_rows, where a
    run of n > 1 experts counts as ceil(n / batch_round) * batch_round of them (MKL's fp32 bmm gives each thread
    whole matrices: 3 experts on 2 threads take as long as 4)."""
    E = len(caps)
    size = [0, 1] + [-(-n // batch_round) * batch_round for n in range(2, MAX_GROUP_EXPERTS + 1)]
    best, cut = [0] + [float("inf")] * E, [0] * (E + 1)
    for j in range(1, E + 1):
        m, bj, cj = 0, float("inf"), 0
        for i in range(j - 1, max(j - MAX_GROUP_EXPERTS, 0) - 1, -1):
            if caps[i] > m:
                m = caps[i]
            if size[j - i] * m + cost_rows >= bj:
                break  # longer runs cost at least this much even where best[i] is 0: none can win
            c = best[i] + size[j - i] * m + cost_rows
            if c < bj:
                bj, cj = c, i
        best[j], cut[j] = bj, cj
    bounds, j = [], E
    while j > 0:
        bounds.append((cut[j], j))
        j = cut[j]
    groups, row = [], 0
    for e0, e1 in reversed(bounds):
        cap = max(caps[e0:e1])
        groups.append(Group(e0, e1, row, cap))
        row += (e1 - e0) * cap
    return groups


class ExpertLayout:
    """slot (P,): buffer row of pair p = t*K + k; row_token (N,): token of each row (0 on padding rows);
    pad_rows: padding row ids; sorted_slot/sorted_pair: pairs in expert order and their rows; bag_offsets (T,):
    first pair of each token (t*K); groups.

    The index arithmetic runs in numpy on the host (P is small): its stable argsort of 8/16-bit expert ids is a
    radix sort, 20x faster than torch's (E=64, P=16K: 0.03 against 0.54 ms; the whole layout 1.4 -> 0.5 ms)."""

    def __init__(self, experts: torch.Tensor, num_experts: int, dtype: torch.dtype):
        T, K = experts.shape
        dev = experts.device
        flat = experts.reshape(-1).cpu().numpy()  # (P,)
        counts = np.bincount(flat, minlength=num_experts)  # (E,)
        caps = [align_rows(n, dtype) for n in counts.tolist()]
        fp32 = dtype.itemsize >= 4  # MKL's bmm splits the batch over threads; oneDNN's (16-bit) splits rows too
        self.groups = plan_groups(caps, GROUP_COST_ROWS[4 if fp32 else 2], torch.get_num_threads() if fp32 else 1)
        self.rows = sum((g.e1 - g.e0) * g.cap for g in self.groups)
        base = np.array([g.row0 + (e - g.e0) * g.cap for g in self.groups for e in range(g.e0, g.e1)],
                        dtype=np.int64)  # expert's first row
        key = flat.astype(np.uint8 if num_experts <= 256 else np.uint16 if num_experts <= 65536 else np.int64)
        sorted_pair = np.argsort(key, kind="stable")  # pair ids grouped by expert
        e_sorted = flat[sorted_pair]
        rank = np.arange(flat.size) - (np.cumsum(counts) - counts)[e_sorted]
        sorted_slot = base[e_sorted] + rank  # (P,)
        slot = np.empty_like(sorted_slot)
        slot[sorted_pair] = sorted_slot
        row_token = np.zeros(self.rows, dtype=np.int64)
        row_token[sorted_slot] = sorted_pair // K
        is_pad = np.ones(self.rows, dtype=bool)
        is_pad[sorted_slot] = False

        def tensor(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(a).to(device=dev, dtype=torch.long)

        self.sorted_pair, self.sorted_slot, self.slot = tensor(sorted_pair), tensor(sorted_slot), tensor(slot)
        self.row_token, self.pad_rows = tensor(row_token), tensor(np.flatnonzero(is_pad))
        self.bag_offsets = torch.arange(0, flat.size, K, device=dev)  # token t's pairs start at t*K

    def gather_rows(self, src: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """out (N, C) = src[row_token] with zero padding rows."""
        torch.index_select(src, 0, self.row_token, out=out)
        return out.index_fill_(0, self.pad_rows, 0) if self.pad_rows.numel() else out

    def row_weights(self, w: torch.Tensor) -> torch.Tensor:
        """(N, 1) routing weight of each row's pair, 0 on padding rows. w: (T, K)."""
        out = w.new_zeros(self.rows, 1)
        out[self.sorted_slot, 0] = w.reshape(-1)[self.sorted_pair]
        return out

    def rows_of(self, buf: torch.Tensor, g: Group) -> torch.Tensor:
        """Group g's rows of a (N, C) buffer."""
        return buf[g.row0 : g.row0 + (g.e1 - g.e0) * g.cap]

    def batches(self, buf: torch.Tensor, g: Group) -> torch.Tensor:
        """The (experts, cap, C) view of group g's rows of a (N, C) buffer."""
        return buf[g.row0 : g.row0 + (g.e1 - g.e0) * g.cap].view(g.e1 - g.e0, g.cap, buf.shape[1])
