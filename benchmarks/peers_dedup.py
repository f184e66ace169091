"""Peer side of bench_dedup.py's end-to-end rows: datasketch MinHash + MinHashLSH as a whole process.

    python benchmarks/peers_dedup.py input.jsonl kept.jsonl

Reads the JSONL, builds a MinHash (128 permutations, datasketch defaults) of each text's character 5-gram set, queries
a MinHashLSH(threshold=0.8) built so far and keeps the document when no earlier one matches (first seen wins), then
writes the kept records as JSONL: the usual datasketch dedup loop. Never imports jpcurate. Prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import time


def main() -> int:
    t0 = time.perf_counter()
    from datasketch import MinHash, MinHashLSH

    inp, out = sys.argv[1], sys.argv[2]
    lsh = MinHashLSH(threshold=0.8, num_perm=128)
    kept = removed = nbytes = 0
    with open(inp, encoding="utf-8") as f, open(out, "w", encoding="utf-8") as w:
        for n, line in enumerate(f):
            rec = json.loads(line)
            text = rec["text"]
            nbytes += len(text.encode("utf-8"))
            m = MinHash(num_perm=128)
            m.update_batch([s.encode("utf-8") for s in {text[i : i + 5] for i in range(max(len(text) - 4, 1))}])
            if lsh.query(m):
                removed += 1
                continue
            lsh.insert(str(n), m)
            w.write(json.dumps(rec, ensure_ascii=False) + "\n")
            kept += 1
    from importlib.metadata import version

    print(json.dumps({"kept": kept, "removed": removed, "bytes": nbytes, "seconds_inside": time.perf_counter() - t0,
                      "versions": {"datasketch": version("datasketch")}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
