"""Deduplication: exact (normalised-text hash), repeated lines (cc_net style), MinHash LSH near-duplicates.

    from jpcurate.dedup import DedupConfig, run_dedup
    stats = run_dedup(["web.jsonl"], "out", DedupConfig(threshold=0.8, ngram=5, num_perm=128))

Modules: `normalize` (text form and exact hash), `shingles` (n-gram hashes), `minhash` (signatures, datasketch
export), `lsh` (bands, buckets, candidate pairs), `verify` (exact Jaccard), `components` (union-find, keep policy),
`lines` (repeated lines), `tasks` (byte-range input tasks), `stages` (per-batch work shared by the engines),
`phases` + `local` (the resumable local engine), `steps` (pipeline.toml steps). The command `jpcurate dedup` is
`jpcurate.cli.dedup`, the Ray engine `jpcurate.engines.ray`.
"""

from jpcurate.dedup.local import run_dedup
from jpcurate.dedup.minhash import MinHasher, estimate_jaccard, to_lean_minhash
from jpcurate.dedup.stages import DedupConfig

__all__ = ["DedupConfig", "MinHasher", "estimate_jaccard", "run_dedup", "to_lean_minhash"]
