"""Deduplicate a small in-memory corpus with the same stages as the engines (for notebooks and tests).

    from jpcurate.dedup.memory import dedup_texts
    result = dedup_texts(["本文A…", "本文A…", "本文B…"], ids=["a", "b", "c"])
    result["b"]  # {"cluster_id": "a", "cluster_size": 2, "reason": "exact_duplicate"}

Everything is held in memory; use `run_dedup` for files. Results equal `run_dedup`'s (same normalisation, hashes,
bands, verification, keep policy); repeated-line removal is not applied here.
"""

from __future__ import annotations

import numpy as np

from jpcurate.dedup.components import choose_kept, connected_components, exact_edges, priority_rank
from jpcurate.dedup.lsh import bucket_pairs
from jpcurate.dedup.normalize import normalize_batch
from jpcurate.dedup.stages import DedupConfig, bucket_rows, scan_batch
from jpcurate.dedup.verify import shingle_sets, verify_pairs
from jpcurate.document import Document


def dedup_texts(texts: list[str], ids: list[str] | None = None, config: DedupConfig | None = None) -> dict[str, dict]:
    """id -> {"cluster_id", "cluster_size", "reason"} (reason None for the kept record of each cluster)."""
    config = config or DedupConfig()
    ids = ids if ids is not None else [str(i) for i in range(len(texts))]
    if len(set(ids)) != len(ids):
        raise ValueError("ids must be unique")
    keys = np.arange(len(texts), dtype=np.int64)
    meta, sig = scan_batch([Document(id=i, text=t) for i, t in zip(ids, texts)], keys.tolist(), config)
    rank = priority_rank(meta["norm_len"].to_numpy(), meta["id"], meta["raw_hash"].to_numpy(), keys)
    hi, lo = meta["hash_hi"].to_numpy(), meta["hash_lo"].to_numpy()
    edges, head = exact_edges(hi, lo, rank)
    if config.near:
        sel = np.flatnonzero(head & meta["has_sig"].to_numpy(zero_copy_only=False))
        bucket, member = bucket_rows(keys[sel], sig[sel], config)
        pairs = bucket_pairs(bucket, member)
        if config.verify and len(pairs):
            involved = np.unique(pairs)
            sets = shingle_sets(normalize_batch([texts[i] for i in involved]), config.ngram, config.unit)
            pairs, _ = verify_pairs(pairs, dict(zip(involved.tolist(), sets)), config.threshold)
        edges = np.concatenate([edges.reshape(-1, 2), pairs.reshape(-1, 2)])
    kept, size = choose_kept(connected_components(len(texts), edges), rank)
    out = {}
    for i, doc_id in enumerate(ids):
        k = int(kept[i])
        reason = None if k == i else ("exact_duplicate" if (hi[k], lo[k]) == (hi[i], lo[i]) else "near_duplicate")
        out[doc_id] = {"cluster_id": ids[k], "cluster_size": int(size[i]), "reason": reason}
    return out
