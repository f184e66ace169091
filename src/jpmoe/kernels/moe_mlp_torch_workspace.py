"""Reusable CPU buffers for the large temporaries of the "torch" expert MLP (moe_mlp_torch.py): a small caching
allocator, CPU only.

Why: glibc serves every allocation above its mmap threshold (32 MiB at most) with a fresh mmap, so each large
activation buffer of an MoE layer (e.g. 8192 rows x 2048 fp32 = 64 MiB) is page-faulted in again on every call;
on a 2-core Xeon that cost 20-35% of a float32 forward+backward (measured: 314 -> 260 ms, E=8, 4096 tokens).
Here each buffer is taken from a pool of byte storages that the pool keeps between calls. A storage is free when
nothing but the pool holds it (its use count is back to the count it had when the pool created it), so buffers
saved for the backward stay taken until autograd drops them, and retain_graph and re-entrant calls stay correct.

The pool keeps at most MAX_FREE_BUFFERS unused storages (least recently used dropped first); `release_workspace()`
empties it. CUDA tensors never come from here (the CUDA caching allocator already does this).
"""

from __future__ import annotations

import math
import threading

import torch

MIN_POOLED_BYTES = 1 << 20  # smaller buffers come from malloc's free lists anyway
MAX_FREE_BUFFERS = 64  # unused storages kept for reuse (a training step frees ~6 per MoE layer at once)
_use_count = getattr(torch._C, "_storage_Use_Count", None)  # private torch API; without it: no pooling


class _Buffer:
    __slots__ = ("data", "idle_count", "last_used")

    def __init__(self, nbytes: int):
        self.data = torch.empty(nbytes, dtype=torch.uint8)
        self.idle_count = self._count()  # use count while only the pool holds it
        self.last_used = 0

    def _count(self) -> int:
        return _use_count(self.data.untyped_storage()._cdata)

    def is_free(self) -> bool:
        return self._count() == self.idle_count


class Workspace:
    def __init__(self):
        self._buffers: list[_Buffer] = []
        self._lock = threading.Lock()
        self._clock = 0

    def empty(self, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """An uninitialised tensor of `shape`, from the pool when it is a large CPU buffer."""
        nbytes = math.prod(shape) * dtype.itemsize
        if device.type != "cpu" or nbytes < MIN_POOLED_BYTES or _use_count is None:
            return torch.empty(shape, dtype=dtype, device=device)
        with self._lock:
            self._clock += 1
            fits = [b for b in self._buffers if nbytes <= b.data.numel() <= 2 * nbytes and b.is_free()]
            if fits:
                buf = min(fits, key=lambda b: b.data.numel())
            else:
                buf = _Buffer(nbytes + nbytes // 16)  # headroom: row counts move a little from call to call
                self._trim()
                self._buffers.append(buf)
            buf.last_used = self._clock
            return buf.data[:nbytes].view(dtype).view(shape)  # the view holds the storage: taken until dropped

    def _trim(self) -> None:
        free = sorted((b for b in self._buffers if b.is_free()), key=lambda b: b.last_used)
        drop = {id(b) for b in free[: max(0, len(free) - MAX_FREE_BUFFERS)]}
        self._buffers = [b for b in self._buffers if id(b) not in drop]

    def release(self) -> None:
        """Forget every buffer (those still in use stay alive with their users, outside the pool)."""
        with self._lock:
            self._buffers = []

    def pooled_bytes(self) -> int:
        return sum(b.data.numel() for b in self._buffers)


WORKSPACE = Workspace()


def release_workspace() -> None:
    """Return the expert MLP's cached CPU buffers to the allocator (e.g. after training, before other work)."""
    WORKSPACE.release()
