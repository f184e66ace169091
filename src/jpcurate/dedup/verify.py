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


def verify_pairs(pairs: np.ndarray, sets: dict[int, np.ndarray], threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(kept pairs, jaccard of every input pair) for pairs of keys present in `sets`."""
    jac = np.array([jaccard_sorted(sets[int(a)], sets[int(b)]) for a, b in pairs], dtype=np.float64)
    return pairs[jac >= threshold] if len(pairs) else pairs, jac
