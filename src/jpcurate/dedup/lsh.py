"""LSH banding: the (bands, rows) choice for a Jaccard threshold, band hashes, and candidate pairs from buckets.

`optimal_params` is datasketch's rule (`MinHashLSH._optimal_param`): over every b * r <= num_perm, minimise
``w_fp * FP + w_fn * FN`` with ``FP = integral_0^t P(s) ds`` and ``FN = integral_t^1 (1 - P(s)) ds``,
``P(s) = 1 - (1 - s**r)**b`` the probability that a pair of Jaccard s shares at least one band. P is a polynomial
of degree b * r <= num_perm, so Gauss-Legendre quadrature with num_perm // 2 + 1 nodes integrates it exactly; all
(b, r) pairs are evaluated at once.

A band value (r consecutive signature rows) is reduced to a 64-bit hash (polynomial over the rows, MurmurHash3
finaliser). Documents whose band hashes are equal for some band are candidates; within one bucket every pair is a
candidate when the bucket has at most `ALL_PAIRS_MAX` members, else each member is paired with the bucket's first
`ANCHORS` members (NeMo Curator's anchor scheme) so that a bucket of 10^5 copies costs 2 * 10^5 pairs, not 10^10.
"""

from __future__ import annotations

import numpy as np

from jpcurate.dedup.shingles import fmix64

ALL_PAIRS_MAX = 16
ANCHORS = 2
_BAND_MULT = np.uint64(0xD6E8FEB86659FD93)


def false_rates(threshold: float, b: np.ndarray, r: np.ndarray, nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """(FP area, FN area) for each (b, r) pair: the two integrals above, by Gauss-Legendre quadrature."""
    x, w = np.polynomial.legendre.leggauss(nodes)

    def area(lo: float, hi: float, miss: bool) -> np.ndarray:
        s = (hi - lo) / 2 * x + (hi + lo) / 2  # (Q,) nodes mapped to [lo, hi]
        p = 1.0 - (1.0 - s[None, :] ** r[:, None]) ** b[:, None]  # (pairs, Q)
        return ((1.0 - p) if miss else p) @ w * (hi - lo) / 2

    return area(0.0, threshold, miss=False), area(threshold, 1.0, miss=True)


def optimal_params(threshold: float, num_perm: int, weights: tuple[float, float] = (0.5, 0.5)) -> tuple[int, int]:
    """(bands, rows) minimising the weighted false positive and false negative areas, as datasketch chooses."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    if abs(sum(weights) - 1.0) > 1e-9:
        raise ValueError(f"weights must sum to 1, got {weights}")
    b = np.concatenate([np.full(num_perm // k, k) for k in range(1, num_perm + 1)])
    r = np.concatenate([np.arange(1, num_perm // k + 1) for k in range(1, num_perm + 1)])
    fp, fn = false_rates(threshold, b.astype(float), r.astype(float), num_perm // 2 + 1)
    err = weights[0] * fp + weights[1] * fn
    best = int(np.argmin(err))  # first minimum in datasketch's loop order (b ascending, then r ascending)
    return int(b[best]), int(r[best])


def detection_probability(similarity: float, bands: int, rows: int) -> float:
    """P(a pair of Jaccard `similarity` shares at least one band)."""
    return 1.0 - (1.0 - similarity**rows) ** bands


def band_hashes(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(N, bands) uint64 hashes of the band values of (N, K) signatures; the band index is mixed in, so equal values
    in different bands do not share a bucket."""
    n = sig.shape[0]
    blocks = sig[:, : bands * rows].reshape(n, bands, rows).astype(np.uint64)  # (N, B, R)
    h = np.broadcast_to(np.arange(bands, dtype=np.uint64) + np.uint64(1), (n, bands)).copy()
    with np.errstate(over="ignore"):
        for j in range(rows):
            h = h * _BAND_MULT + blocks[:, :, j]
    return fmix64(h)


def bucket_pairs(bucket: np.ndarray, member: np.ndarray) -> np.ndarray:
    """Candidate pairs (P, 2) int64 with first < second, unique and sorted, from rows (bucket key, member key).

    `bucket` is any per-row bucket key (e.g. band index and hash combined); members of one bucket become candidates.
    """
    if len(bucket) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    order = np.lexsort((member, bucket))
    bucket, member = bucket[order], member[order]
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    sizes = np.diff(np.r_[starts, len(bucket)])
    size = np.repeat(sizes, sizes)  # (rows,) size of each row's bucket
    pos = np.arange(len(bucket)) - np.repeat(starts, sizes)  # (rows,) position inside the bucket
    small = size <= ALL_PAIRS_MAX
    pairs = []
    for offset in range(1, min(int(sizes.max()), ALL_PAIRS_MAX)):
        idx = np.flatnonzero(small & (pos + offset < size))  # member i pairs with member i + offset
        pairs.append(np.stack([member[idx], member[idx + offset]], axis=1))
    for s, z in zip(starts[sizes > ALL_PAIRS_MAX], sizes[sizes > ALL_PAIRS_MAX]):
        for a in range(ANCHORS):
            others = member[s + a + 1 : s + z]
            pairs.append(np.stack([np.full(len(others), member[s + a]), others], axis=1))
    return unique_pairs(np.concatenate(pairs) if pairs else np.zeros((0, 2), dtype=np.int64))


def unique_pairs(pairs: np.ndarray) -> np.ndarray:
    """Sorted unique (min, max) pairs, self-pairs dropped."""
    pairs = np.sort(pairs.astype(np.int64, copy=False).reshape(-1, 2), axis=1)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    return np.unique(pairs, axis=0) if len(pairs) else pairs
