"""The end of a dedup run (both engines): merged counters, clusters.parquet, stats.json and report.md."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from jpcurate.dedup import phases
from jpcurate.dedup.phases import Context
from jpcurate.dedup.tasks import InputTask
from jpcurate.report import write_report
from jpcurate.stats import Stats, quarantine_key


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def finish(ctx: Context, tasks: list[InputTask], report: dict, plots: bool = False) -> dict:
    """Merge the per-task counters, check the accounting identity, write clusters.parquet, stats.json and report.md
    (with its PNG plots when `plots`)."""
    stats = Stats()
    for t in tasks:
        scan, write = phases.task_info(ctx, "scan", t), phases.task_info(ctx, "write", t)
        stats.input += scan["input"]
        stats.quarantined += scan["quarantined"]
        stats.bytes_in += scan["bytes"]
        stats.kept += write["kept"]
        stats.bytes_kept += write["bytes_kept"]
        for reason, n in write["removed"].items():
            stats.rejected += n
            stats.reasons[reason] = stats.reasons.get(reason, 0) + n
            nbytes = write.get("removed_bytes", {}).get(reason, 0)
            stats.reason_bytes[reason] = stats.reason_bytes.get(reason, 0) + nbytes
    for t in tasks:  # quarantine reasons, from the quarantine files
        for f in sorted((Path(ctx.out) / "quarantine").glob(f"{t.prefix}-*.jsonl")):
            for line in f.read_text(encoding="utf-8").splitlines():
                key = quarantine_key(json.loads(line)["reason"])  # the kinds `jpcurate filter` counts
                stats.quarantine_reasons[key] = stats.quarantine_reasons.get(key, 0) + 1
    stats.check_identity()
    parts = [pq.read_table(ctx.work / "clusters" / f"{t.prefix}.parquet") for t in tasks]
    clusters = pa.concat_tables(parts) if parts else pa.table({"id": pa.array([], pa.string())})
    phases.save_parquet(Path(ctx.out) / "clusters.parquet", clusters)
    docs = max(int(report.get("index", {}).get("docs", 0)), 1)
    disk = {name: _dir_bytes(ctx.work / name) for name in ("lines", "meta", "sig", "buckets", "candidates", "sets",
                                                           "assign")}
    d = stats.to_dict()
    d["dedup"] = {
        "config": ctx.config.to_dict(),
        "phases": report,
        "disk_bytes_per_doc": {k: round(v / docs, 1) for k, v in disk.items()},
        "peak_bytes_per_doc": {k: round(v.get("peak_traced_bytes", 0) / docs, 1) for k, v in report.items()},
        "cluster_sizes": cluster_sizes(clusters),
    }
    phases.save_json(Path(ctx.out) / "stats.json", d)
    write_report(ctx.out, d, plots=plots)
    return d


def cluster_sizes(clusters: pa.Table) -> dict[str, int]:
    """{size: number of clusters of that size} (size 1: a document without duplicates)."""
    if clusters.num_rows == 0 or "cluster_id" not in clusters.column_names:
        return {}
    sizes = clusters.group_by("cluster_id").aggregate([("cluster_size", "max")])["cluster_size_max"]
    counts = pc.value_counts(sizes).to_pylist()
    return {str(c["values"]): c["counts"] for c in sorted(counts, key=lambda c: c["values"])}
