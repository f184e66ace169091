"""Exact Jaccard of candidate pairs, on the sets of (32-bit) shingle hashes.

MinHash LSH proposes pairs; verification keeps a pair only when the Jaccard similarity of the two shingle sets is at
least the threshold, which removes LSH false positives before they can merge clusters. Shingles are compared by their
32-bit hashes: two distinct shingles of a pair of 1,000-shingle documents collide with probability ~2e-4, which moves a
Jaccard value by at most 1e-3.
"""

from __future__ import annotations

import numpy as np

from jpcurate.dedup.shingles import shingle_hashes


def shingle_sets(texts: list[str], ngram: int, unit: str) -> list[np.ndarray]:
    """Sorted unique shingle hashes of each (normalised) text."""
    values, offsets = shingle_hashes(texts, ngram, unit)
    return [np.unique(values[offsets[i] : offsets[i + 1]]) for i in range(len(texts))]


def jaccard_sorted(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard similarity of two sorted unique arrays (0 when both are empty)."""
    if len(a) == 0 and len(b) == 0:
        return 0.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)


def verify_pairs(pairs: np.ndarray, sets, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(kept pairs, jaccard of every input pair) for pairs of keys present in `sets` (a dict or a `SetStore`)."""
    jac = np.array([jaccard_sorted(sets[int(a)], sets[int(b)]) for a, b in pairs], dtype=np.float64)
    return pairs[jac >= threshold] if len(pairs) else pairs, jac


class SetStore:
    """Shingle sets of many documents in three flat arrays (sorted keys, offsets, values): ~4 bytes per shingle,
    no Python object per document. ``store[key]`` is that document's sorted unique shingle hashes."""

    def __init__(self, keys: np.ndarray, offsets: np.ndarray, values: np.ndarray) -> None:
        self.keys, self.offsets, self.values = keys, offsets, values

    @classmethod
    def from_sets(cls, keys: list[int], sets: list[np.ndarray]) -> SetStore:
        order = np.argsort(np.asarray(keys, dtype=np.int64), kind="stable")
        sizes = np.array([len(sets[i]) for i in order], dtype=np.int64)
        offsets = np.zeros(len(order) + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        values = np.concatenate([sets[i] for i in order]) if len(order) else np.zeros(0, np.uint32)
        return cls(np.asarray(keys, dtype=np.int64)[order], offsets, values.astype(np.uint32, copy=False))

    def __getitem__(self, key: int) -> np.ndarray:
        i = int(np.searchsorted(self.keys, key))
        if i >= len(self.keys) or self.keys[i] != key:
            raise KeyError(key)
        return self.values[self.offsets[i] : self.offsets[i + 1]]

    def __contains__(self, key: int) -> bool:
        i = int(np.searchsorted(self.keys, key))
        return i < len(self.keys) and self.keys[i] == key

    def save(self, path) -> None:
        np.savez(path, keys=self.keys, offsets=self.offsets, values=self.values)

    @classmethod
    def load(cls, path) -> SetStore:
        with np.load(path) as z:
            return cls(z["keys"], z["offsets"], z["values"])


class _Both:
    """Look a key up in whichever of two stores holds it."""

    def __init__(self, a: SetStore, b: SetStore) -> None:
        self.a, self.b = a, b

    def __getitem__(self, key: int) -> np.ndarray:
        return self.a[key] if key in self.a else self.b[key]


def verify_blocked(pairs: np.ndarray, load, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """`verify_pairs` with bounded memory: pairs are grouped by the (task, task) of their two keys (key >> 32) and
    only the two tasks' stores (`load(task) -> SetStore`) are in memory at a time."""
    if len(pairs) == 0:
        return pairs, np.zeros(0)
    ta, tb = pairs[:, 0] >> 32, pairs[:, 1] >> 32
    order = np.lexsort((tb, ta))
    pairs, ta, tb = pairs[order], ta[order], tb[order]
    jac = np.empty(len(pairs))
    starts = np.flatnonzero(np.r_[True, (ta[1:] != ta[:-1]) | (tb[1:] != tb[:-1])])
    ends = np.r_[starts[1:], len(pairs)]
    store_a = store_a_task = None
    for s, e in zip(starts.tolist(), ends.tolist()):
        if ta[s] != store_a_task:
            store_a, store_a_task = load(int(ta[s])), ta[s]
        store_b = store_a if tb[s] == ta[s] else load(int(tb[s]))
        _, jac[s:e] = verify_pairs(pairs[s:e], _Both(store_a, store_b), threshold)
    keep = jac >= threshold
    back = np.argsort(order)  # restore the input order of the pairs
    return pairs[back][keep[back]], jac[back]
