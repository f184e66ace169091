"""The local dedup engine: phases with on-disk intermediates, resumable after a kill.

    stats = run_dedup(["a.jsonl", "b.parquet"], "out", DedupConfig(threshold=0.8), workers=2)

Phases (each leaves ``out/_dedup/done/<phase>`` when finished; a resumed run skips finished phases, and inside the
per-task phases skips finished tasks):

1. ``lines``      (only with ``line_min_docs``) per task: distinct line keys per document -> P partitions on disk;
                  then per partition: keys in >= min_docs documents -> ``frequent_lines.npy``.
2. ``scan``       per task: read, quarantine malformed records, remove frequent lines, normalise, exact hash,
                  signatures -> ``meta/<task>.parquet`` + ``sig/<task>.npy``.
3. ``index``      all metadata: keep-order rank and exact-duplicate groups (heads only go on to MinHash).
4. ``buckets``    per task: band hashes of the heads -> ``buckets/p<P>/<task>.npy`` (partition = hash mod P).
5. ``candidates`` per partition (one in memory at a time): bucket members -> candidate pairs.
6. ``verify``     exact Jaccard of every candidate pair (shingle sets of the candidate documents only).
7. ``components`` union-find over exact and verified edges -> kept record and size of every cluster.
8. ``write``      per task: kept/ and removed/ records with cluster_id, cluster_size (removed: duplicate_of),
                  clusters.parquet, stats.json (input = kept + removed + quarantined).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from jpcurate.dedup import phases, summary
from jpcurate.dedup.stages import DedupConfig
from jpcurate.dedup.tasks import InputTask, plan_tasks
from jpcurate.engines.workers import map_tasks


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _reset_peak_rss() -> None:
    """Reset this process's peak resident set (Linux: VmHWM), so that each phase reports its own peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_rss() -> int:
    """Peak resident bytes of this process since the last reset (VmHWM; unlike ru_maxrss it is not inherited from
    the parent across exec). Worker processes of the phase are not included."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class DedupRun:
    """Phase bookkeeping: the work directory, done markers, per-phase time and memory."""

    def __init__(self, output: str | Path, progress: bool = True) -> None:
        self.out = Path(output)
        self.work = self.out / "_dedup"
        self.progress = progress
        self.report: dict[str, dict] = {}

    def done(self, name: str) -> bool:
        return (self.work / "done" / name).exists()

    def mark(self, name: str, info: dict | None = None) -> None:
        _atomic_write(self.work / "done" / name, json.dumps(info or {}).encode())

    def phase(self, name: str, fn) -> None:
        if self.done(name):
            if self.progress:
                print(f"dedup: phase {name} already done, skipped", file=sys.stderr)
            self.report[name] = json.loads((self.work / "done" / name).read_text() or "{}")
            return
        if tracemalloc.is_tracing():
            tracemalloc.reset_peak()
        _reset_peak_rss()
        t0 = time.monotonic()
        info = fn() or {}
        info["seconds"] = round(time.monotonic() - t0, 3)
        if tracemalloc.is_tracing():
            info["peak_traced_bytes"] = tracemalloc.get_traced_memory()[1]
        info["peak_rss_bytes"] = _peak_rss()
        self.report[name] = info
        self.mark(name, info)
        if self.progress:
            print(f"dedup: phase {name} done in {info['seconds']:.1f}s", file=sys.stderr, flush=True)


def check_run_config(out: Path, record: dict) -> None:
    path = out / "_dedup" / "run.json"
    if path.exists():
        if json.loads(path.read_text()) != record:
            raise SystemExit(f"{out} holds a dedup run with other inputs or options; use a new output directory")
        return
    _atomic_write(path, json.dumps(record, indent=1).encode())


def run_dedup(inputs: list[str], output: str | Path, config: DedupConfig | None = None, *, workers: int = 1,
              text_field: str = "text", id_field: str = "id", out_format: str = "jsonl",
              max_shard_bytes: int = 256 << 20, progress: bool = True, stop_after: str | None = None,
              plots: bool = False) -> dict:
    """Deduplicate `inputs` into `output`; returns the stats dict also written to ``output/stats.json`` (and
    ``output/report.md``, with PNG plots when `plots`).

    `stop_after` (tests) ends the run after the named phase, as a kill would."""
    config = config or DedupConfig()
    out = Path(output)
    tasks = plan_tasks([str(p) for p in inputs], config.split_bytes)
    check_run_config(out, {"inputs": [str(p) for p in inputs], "config": config.to_dict(), "text_field": text_field,
                            "id_field": id_field, "format": out_format, "max_shard_bytes": max_shard_bytes})
    ctx = phases.Context(out=str(out), config=config, text_field=text_field, id_field=id_field,
                         out_format=out_format, max_shard_bytes=max_shard_bytes, progress=progress)
    run = DedupRun(out, progress)
    steps = [
        ("lines", lambda: phases.lines_phase(ctx, tasks, workers, map_tasks) if config.line_min_docs > 0
         else {"skipped": True}),
        ("scan", lambda: phases.per_task(ctx, tasks, workers, "scan", map_tasks)),
        ("index", lambda: phases.index_phase(ctx, tasks)),
        ("buckets", lambda: phases.per_task(ctx, tasks, workers, "buckets", map_tasks)),
        ("candidates", lambda: phases.candidates_phase(ctx, workers, map_tasks)),
        ("verify", lambda: phases.verify_phase(ctx, tasks, workers, map_tasks)),
        ("components", lambda: phases.components_phase(ctx)),
        ("write", lambda: phases.per_task(ctx, tasks, workers, "write", map_tasks)),
    ]
    for name, fn in steps:
        run.phase(name, fn)
        if stop_after == name:
            return {}
    return summary.finish(ctx, tasks, run.report, plots)


def read_clusters(output: str | Path) -> pa.Table:
    return pq.read_table(Path(output) / "clusters.parquet")


__all__ = ["DedupConfig", "InputTask", "read_clusters", "run_dedup"]
