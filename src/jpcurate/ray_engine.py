"""The Ray Data engine: the filtering pipeline and every dedup phase on a Ray cluster (or a local Ray instance).

    jpcurate run --config pipeline.toml --engine ray --address auto
    jpcurate dedup --input data/*.jsonl --output out --engine ray --address auto

Work is cut into the same tasks as the local engine (`jpcurate.dedup.tasks`: whole files, or byte ranges of large
JSONL files cut at line boundaries, with their first line numbers counted by Ray tasks), so both engines name every
record and every output part identically and Ray's output equals the local output.

- filtering: records of a task are read into Arrow batches and the steps run as ``map_batches`` over them; each task's
  kept/rejected/quarantine parts and statistics are written by the task that owns them;
- dedup: signatures as a ``map_batches`` over tasks; band buckets through a shuffle (``groupby`` on the bucket
  partition, then ``map_groups`` forms candidate pairs per partition); verification reads the candidate documents
  in ``map_batches``; connected components on the driver over the edge list (8 bytes per document); the final
  selection is written per task by ``map_batches``. Phases keep the local engine's done markers, so a killed Ray
  run resumes (on Ray or locally).

All paths must be on storage every Ray node sees (NFS, a mounted bucket).
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa

from jpcurate.dedup import phases
from jpcurate.dedup.local import DedupRun, _check_run_config
from jpcurate.dedup.lsh import bucket_pairs, unique_pairs
from jpcurate.dedup.stages import DedupConfig, partition_of
from jpcurate.dedup.tasks import InputTask, count_newlines, plan_tasks


def init_ray(address: str | None = None, num_cpus: int | None = None):
    """Connect to `address` (``auto``, ``ray://host:10001``, ``host:6379``), RAY_ADDRESS, or start a local Ray."""
    import ray

    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS")
        kwargs = {"address": address} if address else {"num_cpus": num_cpus}
        ray.init(log_to_driver=False, **{k: v for k, v in kwargs.items() if v is not None})
    return ray


def _ray_line_counter(jobs: list[tuple[str, int, int]]) -> list[int]:
    ray = init_ray()
    count = ray.remote(count_newlines)
    return ray.get([count.remote(*j) for j in jobs])


def _task_rows(tasks: list[InputTask]):
    import ray.data

    return ray.data.from_items([{"i": t.index} for t in tasks], override_num_blocks=max(1, len(tasks)))


def _map_tasks(tasks: list[InputTask], fn) -> list:
    """Run fn(task) for every task as a Ray Data map_batches (one task per batch); results in task order."""
    if not tasks:
        return []
    by_index = {t.index: t for t in tasks}

    def call(batch: dict) -> dict:
        return {"i": batch["i"], "r": np.array([fn(by_index[int(i)]) for i in batch["i"]], dtype=object)}

    rows = _task_rows(tasks).map_batches(call, batch_size=1, batch_format="numpy").take_all()
    return [r["r"] for r in sorted(rows, key=lambda r: r["i"])]


# ---- filtering pipeline ----------------------------------------------------------------------------------------

def run_ray(pipeline, inputs: list[str | Path], opts):
    """Engine entry for `jpcurate run/filter --engine ray`: same signature and outputs as `runner.run_local`."""
    from jpcurate import runner

    init_ray()
    tasks = runner.shard_tasks(inputs)
    runner.check_or_write_run_config(pipeline, tasks, opts)
    todo = [t for t in tasks if not runner.shard_done_path(opts, t).exists()]
    if todo:
        import ray.data

        by_index = {t.index: t for t in todo}

        def shard(batch: pa.Table) -> pa.Table:
            for i in batch.column("i").to_pylist():
                runner.process_shard(pipeline, by_index[i], opts)
            return batch

        ray.data.from_items([{"i": t.index} for t in todo], override_num_blocks=len(todo)).map_batches(
            shard, batch_size=1, batch_format="pyarrow").materialize()
    return runner.finish_run(opts, tasks)


# ---- dedup ------------------------------------------------------------------------------------------------------

def _candidates_on_ray(ctx: phases.Context, tasks: list[InputTask]) -> dict:
    """Band rows of every task -> shuffle by bucket partition (groupby) -> candidate pairs per partition."""
    import ray.data

    parts = ctx.config.partitions * 4

    def band_rows(batch: dict) -> dict:
        rows = []
        for i in batch["i"]:
            d = ctx.work / "buckets"
            rows += [np.load(p) for p in sorted(d.glob(f"p*/{int(i):05d}.npy"))]
        r = np.concatenate(rows) if rows else np.zeros((0, 2), np.int64)
        return {"part": partition_of(r[:, 0].view(np.uint64), parts), "bucket": r[:, 0], "member": r[:, 1]}

    def pairs(group: dict) -> dict:
        p = bucket_pairs(group["bucket"].view(np.uint64), group["member"])
        return {"a": p[:, 0], "b": p[:, 1]}

    ds = _task_rows(tasks).map_batches(band_rows, batch_size=1, batch_format="numpy")
    out = ds.groupby("part").map_groups(pairs, batch_format="numpy").to_arrow_refs()
    import ray

    tables = [t for t in ray.get(out) if t.num_rows]
    p = np.stack([np.concatenate([t["a"].to_numpy() for t in tables]),
                  np.concatenate([t["b"].to_numpy() for t in tables])], axis=1) if tables else np.zeros((0, 2))
    pairs_all = unique_pairs(p.astype(np.int64))
    phases._save_npy(ctx.work / "candidates" / "p0000.npy", pairs_all)
    return {"pairs_before_merge": int(len(pairs_all)), "shuffle_partitions": parts}


def run_dedup_ray(inputs: list[str], output: str | Path, config: DedupConfig | None = None, *,
                  address: str | None = None, text_field: str = "text", id_field: str = "id",
                  out_format: str = "jsonl", max_shard_bytes: int = 256 << 20, progress: bool = True) -> dict:
    """`jpcurate.dedup.local.run_dedup` on Ray Data; identical outputs."""
    init_ray(address)
    config = config or DedupConfig()
    out = Path(output)
    tasks = plan_tasks([str(p) for p in inputs], config.split_bytes, line_counter=_ray_line_counter)
    _check_run_config(out, {"inputs": [str(p) for p in inputs], "config": config.to_dict(), "text_field": text_field,
                            "id_field": id_field, "format": out_format, "max_shard_bytes": max_shard_bytes})
    ctx = phases.Context(out=str(out), config=config, text_field=text_field, id_field=id_field,
                         out_format=out_format, max_shard_bytes=max_shard_bytes)
    run = DedupRun(out, progress)

    def ray_map(fn, items, workers):  # the local engine's `_map`, on Ray Data
        if items and isinstance(items[0], InputTask):
            return _map_tasks(items, fn)
        return [fn(x) for x in items]

    steps = [
        ("lines", lambda: phases.lines_phase(ctx, tasks, 1) if config.line_min_docs > 0 else {"skipped": True}),
        ("scan", lambda: phases.per_task(ctx, tasks, 0, "scan", ray_map)),
        ("index", lambda: phases.index_phase(ctx, tasks)),
        ("buckets", lambda: phases.per_task(ctx, tasks, 0, "buckets", ray_map)),
        ("candidates", lambda: _candidates_on_ray(ctx, tasks)),
        ("verify", lambda: phases.verify_phase(ctx, tasks, 0, ray_map)),
        ("components", lambda: phases.components_phase(ctx)),
        ("write", lambda: phases.per_task(ctx, tasks, 0, "write", ray_map)),
    ]
    for name, fn in steps:
        run.phase(name, fn)
    return phases.finish(ctx, tasks, run.report)


__all__ = ["init_ray", "run_dedup_ray", "run_ray", "partial"]
