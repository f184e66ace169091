"""Clusters: exact-duplicate groups, union-find over duplicate edges, and the deterministic choice of the kept record.

Documents are named by a 64-bit key ``(task index << 32) | row``; every function here is given the keys and returns
results aligned with them, so the local and the Ray engine share it.

Keep policy (documented in docs/jpcurate.md): in every cluster the kept record is the first in the order
(longest normalised text, then smallest id, then smallest raw-text hash, then smallest key). The order depends only on
the records, never on input order or worker count. Exact duplicates have equal normalised length, so among them this
is "the smallest id".
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def priority_rank(norm_len: np.ndarray, ids, raw_hash: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """(N,) int64 rank of each record in the keep order (0 = the most preferred); `ids` a list or Arrow array."""
    ids = ids if isinstance(ids, (pa.Array, pa.ChunkedArray)) else pa.array(ids, type=pa.string())
    table = pa.table({"len": pa.array(norm_len), "id": ids, "raw": pa.array(raw_hash), "key": pa.array(keys)})
    order = pc.sort_indices(table, sort_keys=[("len", "descending"), ("id", "ascending"), ("raw", "ascending"),
                                              ("key", "ascending")]).to_numpy()
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank


def exact_edges(hash_hi: np.ndarray, hash_lo: np.ndarray, rank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges (member, group head) in dense indices for every exact-duplicate group, and the (N,) bool mask of group
    heads (the most preferred member of each group, which alone takes part in near-duplicate search)."""
    order = np.lexsort((rank, hash_lo, hash_hi))  # groups contiguous, head first
    hi, lo = hash_hi[order], hash_lo[order]
    new = np.ones(len(order), dtype=bool)  # np.r_[True, ...] would give one entry for an empty corpus
    new[1:] = (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1])
    head_of = order[np.maximum.accumulate(np.where(new, np.arange(len(order)), 0))]
    is_head = np.zeros(len(order), dtype=bool)
    is_head[order[new]] = True
    members = order[~new]
    return np.stack([members, head_of[~new]], axis=1), is_head


class UnionFind:
    """Disjoint sets over 0..n-1 (union by size, path halving)."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))
        self.size = [1] * n

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]

    def roots(self) -> np.ndarray:
        return np.fromiter((self.find(i) for i in range(len(self.parent))), dtype=np.int64, count=len(self.parent))


def connected_components(n: int, edges: np.ndarray) -> np.ndarray:
    """(n,) int64 root of each node's component, for (E, 2) dense-index edges.

    Only the nodes that appear in an edge enter the union-find (renumbered densely); every other node is its own
    component, so the Python work is proportional to the duplicates, not to the corpus."""
    roots = np.arange(n, dtype=np.int64)
    if len(edges) == 0:
        return roots
    touched, local = np.unique(edges, return_inverse=True)
    uf = UnionFind(len(touched))
    for a, b in local.reshape(-1, 2).tolist():
        uf.union(a, b)
    roots[touched] = touched[uf.roots()]
    return roots


def choose_kept(roots: np.ndarray, rank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each node: the dense index of its cluster's kept record (minimum rank) and the cluster size."""
    order = np.lexsort((rank, roots))  # clusters contiguous, kept record first
    r = roots[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = r[1:] != r[:-1]
    group = np.cumsum(new) - 1
    heads = order[new]
    sizes = np.bincount(group)
    kept = np.empty(len(roots), dtype=np.int64)
    size = np.empty(len(roots), dtype=np.int64)
    kept[order] = heads[group]
    size[order] = sizes[group]
    return kept, size
