"""Sort the (token, expert) pairs of a top-k routing into expert order, each expert padded to whole row blocks.

This is the role of vLLM's `moe_align_block_size`: after it, row block b of the sorted list belongs to one expert
(`block_expert[b]`), so one grouped-GEMM program reads one expert's weights and gathers its token rows straight
from x (pair p = t * K + k is token t's k-th choice; padding slots hold the sentinel P = T * K and read as zeros).
"""

from __future__ import annotations

import torch

from jpmoe.kernels.backend import new_empty, tl, triton, use_triton


def max_blocks(n_pairs: int, num_experts: int, block_m: int) -> int:
    """Upper bound on sum_e ceil(count_e / block_m): sized without reading the counts (no host sync)."""
    return (n_pairs + num_experts * (block_m - 1)) // block_m


def moe_align_reference(
    experts: torch.Tensor, num_experts: int, block_m: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """experts: (T, K) int. Returns sorted_pairs, block_expert, expert_offsets (all int32).

    sorted_pairs: (max_blocks * block_m,): pair ids grouped by expert in ascending pair order (stable), each
    expert's group starting at expert_offsets[e] (a multiple of block_m) and padded with P = T * K to a multiple
    of block_m; the tail past expert_offsets[E] is P too.
    block_expert: (max_blocks,): the expert of each row block, -1 for the unused tail.
    expert_offsets: (E + 1,): padded start of each expert's rows; expert_offsets[E] is the used length.
    """
    flat = experts.reshape(-1).long()  # (P,)
    n_pairs = flat.numel()
    n_blocks = max_blocks(n_pairs, num_experts, block_m)
    counts = torch.bincount(flat, minlength=num_experts)  # (E,)
    padded = (counts + block_m - 1) // block_m * block_m
    offsets = torch.zeros(num_experts + 1, dtype=torch.int64, device=flat.device)
    offsets[1:] = torch.cumsum(padded, 0)
    order = torch.argsort(flat, stable=True)  # (P,) pair ids grouped by expert
    rank = torch.arange(n_pairs, device=flat.device) - (torch.cumsum(counts, 0) - counts)[flat[order]]
    sorted_pairs = torch.full((n_blocks * block_m,), n_pairs, dtype=torch.int32, device=flat.device)
    sorted_pairs[offsets[flat[order]] + rank] = order.to(torch.int32)
    block_expert = torch.full((n_blocks,), -1, dtype=torch.int32, device=flat.device)
    block_of = torch.arange(n_blocks, device=flat.device) * block_m  # first row of each block
    owner = torch.searchsorted(offsets[1:], block_of, right=True)  # expert whose padded range holds the row
    used = block_of < offsets[-1]
    block_expert[used] = owner[used].to(torch.int32)
    return sorted_pairs, block_expert, offsets.to(torch.int32)


# ---------------------------------------------------------------------------------------------------------------
# Triton, two launches: (1) per-chunk expert histograms added into counts; (2) one program per expert turns the
# counts into padded offsets, writes its block ids, then scans the pairs in order and writes its own (stable).
# ---------------------------------------------------------------------------------------------------------------
@triton.jit
def _count_kernel(
    experts_ptr,  # (P,) int64 expert of each pair
    counts_ptr,  # (E,) int32, zeroed: pairs per expert
    n_pairs, num_experts,
    BLOCK: tl.constexpr, BLOCK_E: tl.constexpr,
):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    ex = tl.load(experts_ptr + offs, mask=offs < n_pairs, other=-1)
    cols = tl.arange(0, BLOCK_E)
    hist = tl.sum((ex[:, None] == cols[None, :]).to(tl.int32), axis=0)  # (BLOCK_E,) one-hot column sums
    tl.atomic_add(counts_ptr + cols, hist, mask=cols < num_experts)  # integer adds: order-independent


@triton.jit
def _align_kernel(
    experts_ptr, counts_ptr,  # (P,) int64; (E,) int32 from _count_kernel
    sorted_ptr, block_expert_ptr, offsets_ptr,  # out: (n_blocks * BLOCK_M,), (n_blocks,), (E + 1,) int32
    n_pairs, num_experts, n_blocks,
    BLOCK: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_M: tl.constexpr,
):
    e = tl.program_id(0)
    cols = tl.arange(0, BLOCK_E)
    counts = tl.load(counts_ptr + cols, mask=cols < num_experts, other=0)
    padded = (counts + BLOCK_M - 1) // BLOCK_M * BLOCK_M
    start = tl.sum(tl.where(cols < e, padded, 0), axis=0)  # exclusive prefix sum of the padded counts
    count = tl.sum(tl.where(cols == e, counts, 0), axis=0)
    end = start + tl.sum(tl.where(cols == e, padded, 0), axis=0)
    tl.store(offsets_ptr + e, start)
    blocks = tl.arange(0, BLOCK_M)
    for b0 in range(start // BLOCK_M, end // BLOCK_M, BLOCK_M):  # this expert's row blocks
        tl.store(block_expert_ptr + b0 + blocks, e + 0 * blocks, mask=b0 + blocks < end // BLOCK_M)
    seen = start * 0  # pairs of expert e written so far
    lanes = tl.arange(0, BLOCK)
    for p0 in range(0, n_pairs, BLOCK):
        offs = p0 + lanes
        mine = tl.load(experts_ptr + offs, mask=offs < n_pairs, other=-1) == e
        slot = start + seen + tl.cumsum(mine.to(tl.int32), axis=0) - 1  # stable: rank in pair order
        tl.store(sorted_ptr + slot, offs.to(tl.int32), mask=mine)
        seen += tl.sum(mine.to(tl.int32), axis=0)
    pad = start + count + blocks  # at most BLOCK_M - 1 padding slots
    tl.store(sorted_ptr + pad, n_pairs + 0 * blocks, mask=pad < end)
    if e == num_experts - 1:  # the last expert's program also writes the total and fills the unused tail
        tl.store(offsets_ptr + num_experts, end)
        for b0 in range(end // BLOCK_M, n_blocks, BLOCK_M):
            tl.store(block_expert_ptr + b0 + blocks, -1 + 0 * blocks, mask=b0 + blocks < n_blocks)
        for r0 in range(end, n_blocks * BLOCK_M, BLOCK):
            rows = r0 + lanes
            tl.store(sorted_ptr + rows, n_pairs + 0 * lanes, mask=rows < n_blocks * BLOCK_M)


def moe_align_triton(experts: torch.Tensor, num_experts: int, block_m: int):
    """Launcher of the two kernels; same outputs as `moe_align_reference`."""
    flat = experts.reshape(-1).long().contiguous()  # (P,)
    n_pairs = flat.numel()
    n_blocks = max_blocks(n_pairs, num_experts, block_m)
    counts = torch.zeros(num_experts, dtype=torch.int32, device=flat.device)
    sorted_pairs = new_empty((n_blocks * block_m,), torch.int32, flat.device)
    block_expert = new_empty((n_blocks,), torch.int32, flat.device)
    offsets = new_empty((num_experts + 1,), torch.int32, flat.device)
    block_e = triton.next_power_of_2(num_experts)
    chunk = max(16, min(1024, 8192 // block_e))  # one-hot tile chunk x block_e stays <= 8192 elements
    if n_pairs:
        _count_kernel[(triton.cdiv(n_pairs, chunk),)](flat, counts, n_pairs, num_experts, BLOCK=chunk,
                                                      BLOCK_E=block_e)
    _align_kernel[(num_experts,)](flat, counts, sorted_pairs, block_expert, offsets, n_pairs, num_experts, n_blocks,
                                  BLOCK=1024, BLOCK_E=block_e, BLOCK_M=block_m)
    return sorted_pairs, block_expert, offsets


def check_experts(experts: torch.Tensor, num_experts: int) -> None:
    """A clear error for expert ids outside [0, E) (they would otherwise be dropped silently). Syncs once, so it is
    skipped while torch.compile traces (a graph cannot branch on data)."""
    if experts.numel() + num_experts * 256 >= 2**31:
        raise ValueError(f"{experts.numel()} (token, expert) pairs: sorted ids are int32, split the batch")
    if torch.compiler.is_compiling():
        return
    if experts.numel() and bool(((experts < 0) | (experts >= num_experts)).any()):
        bad = experts[(experts < 0) | (experts >= num_experts)][0].item()
        raise ValueError(f"expert id {bad} is outside [0, {num_experts})")


def moe_align(experts: torch.Tensor, num_experts: int, block_m: int):
    """Public entry: Triton on CUDA or under TRITON_INTERPRET=1, else the reference."""
    check_experts(experts, num_experts)
    if use_triton(experts):
        return moe_align_triton(experts, num_experts, block_m)
    return moe_align_reference(experts, num_experts, block_m)
