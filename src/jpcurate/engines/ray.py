"""The Ray Data engine: the filtering pipeline and every dedup phase on a Ray cluster (or a local Ray instance).

    jpcurate run --config pipeline.toml --engine ray --address auto
    jpcurate dedup --input data/*.jsonl --output out --engine ray --address auto

Work is cut into the same tasks as the local engine (`jpcurate.dedup.tasks`: whole files, or byte ranges of large
JSONL files cut at line boundaries, with their first line numbers counted by Ray tasks), so both engines name every
record and every output part identically and Ray's output equals the local output.

- filtering: JSONL lines are read by (byte-range) tasks into a dataset, the steps run as ``map_batches`` over Arrow
  batches of lines, and a ``groupby`` on the input file writes each file's kept/rejected/quarantine parts in line
  order with its statistics (Parquet and compressed files: one task per file);
- dedup: signatures as a ``map_batches`` over tasks; band buckets through a shuffle (``groupby`` on the bucket
  partition, then ``map_groups`` forms candidate pairs per partition); verification reads the candidate documents
  in ``map_batches``; connected components on the driver over the edge list (8 bytes per document); the final
  selection is written per task by ``map_batches``. Phases keep the local engine's done markers, so a killed Ray
  run resumes (on Ray or locally).

All paths must be on storage every Ray node sees (NFS, a mounted bucket).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa

from jpcurate.dedup import phases, summary
from jpcurate.dedup.local import DedupRun, check_run_config
from jpcurate.dedup.lsh import bucket_pairs, unique_pairs
from jpcurate.dedup.stages import DedupConfig, partition_of
from jpcurate.dedup.tasks import InputTask, count_newlines, plan_tasks
from jpcurate.engines import local
from jpcurate.engines.workers import map_tasks
from jpcurate.io.readers import input_format, parse_line
from jpcurate.io.writers import ShardWriter, dumps, remove_parts
from jpcurate.pipeline import run_pipeline, value_thresholds
from jpcurate.stats import Stats

SPLIT_BYTES = 64 << 20  # JSONL files larger than this are read as several byte-range tasks


def init_ray(address: str | None = None, num_cpus: int | None = None):
    """Connect to `address` (``auto``, ``ray://host:10001``, ``host:6379``), RAY_ADDRESS, or start a local Ray."""
    try:
        import ray  # optional dependency: the `ray` extra
    except ModuleNotFoundError as e:
        if e.name != "ray":
            raise
        raise SystemExit('jpcurate: --engine ray needs Ray, which is not installed: pip install "jpcurate[ray]"'
                         ) from None
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

def _line_rows(tasks: list[InputTask]):
    """Ray dataset of raw JSONL lines: (shard, line number, bytes); byte-range tasks read in parallel."""
    def read(batch: dict) -> dict:
        shard, pos, raw = [], [], []
        for i in batch["i"]:
            t = by_index[int(i)]
            with open(t.path, "rb") as f:
                f.seek(t.start)
                at, line_no = t.start, t.first_line
                end = t.end if t.end >= 0 else float("inf")
                while at < end:
                    line = f.readline()
                    if not line:
                        break
                    at += len(line)
                    shard.append(shard_of[t.path])
                    pos.append(line_no)
                    raw.append(line)
                    line_no += 1
        return {"shard": np.array(shard, dtype=np.int64), "pos": np.array(pos, dtype=np.int64),
                "raw": np.array(raw, dtype=object)}

    by_index = {t.index: t for t in tasks}
    shard_of: dict[str, int] = {}
    for t in tasks:
        shard_of.setdefault(t.path, len(shard_of))
    return _task_rows(tasks).map_batches(read, batch_size=1, batch_format="numpy")


def _filter_batch(pipeline, opts, names: dict[int, str]):
    """map_batches over Arrow batches of raw lines: parse, run the steps, emit (shard, pos, dest, json) rows and the
    batch's statistics (as JSON on its first row)."""

    def fn(batch: pa.Table) -> pa.Table:
        shard, pos, raw = (batch.column(c).to_pylist() for c in ("shard", "pos", "raw"))
        keep = [i for i, r in enumerate(raw) if r.strip()]
        items = [parse_line(raw[i], source=names[shard[i]], position=pos[i], text_field=opts.text_field,
                            id_field=opts.id_field) for i in keep]
        kept, rejected, delta = run_pipeline(pipeline, items)
        delta.blank_lines += len(raw) - len(keep)
        dest = {}
        for d in kept:
            dest[id(d)] = "kept"
        for d in rejected:
            dest[id(d)] = "rejected"
        rows = {"shard": [], "pos": [], "dest": [], "json": [], "stats": []}
        for i, item in zip(keep, items):
            kind = dest.get(id(item), "quarantine")
            if kind == "rejected" and not opts.write_rejected:
                continue
            rows["shard"].append(shard[i]), rows["pos"].append(pos[i]), rows["dest"].append(kind)
            rows["json"].append(dumps(item.to_record()))
            rows["stats"].append("")

        rows["shard"].append(shard[0] if shard else -1), rows["pos"].append(-1), rows["dest"].append("stats")
        rows["json"].append(""), rows["stats"].append(json.dumps(delta.to_dict()))
        return pa.table(rows)

    return fn


def _write_shard(opts, prefixes: dict[int, str]):
    """map_groups per input file: write its parts in line order (as the local runner does) and its done marker."""


    def fn(group: pa.Table) -> pa.Table:
        shard = group.column("shard")[0].as_py()
        out = Path(opts.output)
        for sub in local.OUTPUTS:
            remove_parts(out / sub, prefixes[shard])
        total = Stats()
        rows = group.sort_by("pos").to_pylist()
        writers = {s: ShardWriter(out / s, prefix=prefixes[shard], fmt=opts.out_format if s != "quarantine"
                                  else "jsonl", max_bytes=opts.max_shard_bytes) for s in local.OUTPUTS}
        for r in rows:
            if r["dest"] == "stats":
                total.merge(Stats.from_dict(json.loads(r["stats"])))
            else:
                writers[r["dest"]].write(json.loads(r["json"]))
        for w in writers.values():
            w.close()
        marker = out / "shards" / f"{prefixes[shard]}.json"
        marker.parent.mkdir(parents=True, exist_ok=True)
        tmp = marker.with_name(f".{marker.name}.tmp")
        tmp.write_text(json.dumps(total.to_dict(), ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, marker)
        return pa.table({"shard": [shard]})

    return fn


def run_ray(pipeline, inputs: list[str | Path], opts):
    """Engine entry for `jpcurate run/filter --engine ray`: same signature and outputs as `local.run_local`.

    JSONL inputs: lines are read by (byte-range) tasks, the steps run as ``map_batches`` over Arrow batches of them,
    and a ``groupby`` on the input file writes each file's parts in line order. Parquet and compressed inputs are
    processed whole by one task each (`local.process_shard`)."""

    init_ray()
    shards = local.shard_tasks(inputs)
    local.check_or_write_run_config(pipeline, shards, opts)
    todo = [t for t in shards if not local.shard_done_path(opts, t).exists()]
    lines = [t for t in todo if _is_plain_jsonl(t.path)]
    whole = [t for t in todo if not _is_plain_jsonl(t.path)]
    if lines:
        tasks = plan_tasks([t.path for t in lines], SPLIT_BYTES, line_counter=_ray_line_counter)
        names = {i: Path(t.path).name for i, t in enumerate(lines)}
        prefixes = {i: t.prefix for i, t in enumerate(lines)}
        ds = _line_rows(tasks).map_batches(_filter_batch(pipeline, opts, names), batch_size=opts.batch_size,
                                           batch_format="pyarrow")
        ds.groupby("shard").map_groups(_write_shard(opts, prefixes), batch_format="pyarrow").materialize()
    if whole:
        by_index = {t.index: t for t in whole}

        def shard(batch: pa.Table) -> pa.Table:
            for i in batch.column("i").to_pylist():
                local.process_shard(pipeline, by_index[i], opts)
            return batch

        import ray.data

        ray.data.from_items([{"i": t.index} for t in whole], override_num_blocks=len(whole)).map_batches(
            shard, batch_size=1, batch_format="pyarrow").materialize()
    return local.finish_run(opts, shards, value_thresholds(pipeline))


def _is_plain_jsonl(path: str) -> bool:
    return input_format(path) == "jsonl" and not path.lower().endswith((".gz", ".zst", ".zstd"))


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
    phases.save_npy(ctx.work / "candidates" / "p0000.npy", pairs_all)
    return {"pairs_before_merge": int(len(pairs_all)), "shuffle_partitions": parts}


def run_dedup_ray(inputs: list[str], output: str | Path, config: DedupConfig | None = None, *,
                  address: str | None = None, text_field: str = "text", id_field: str = "id",
                  out_format: str = "jsonl", max_shard_bytes: int = 256 << 20, progress: bool = True,
                  plots: bool = False) -> dict:
    """`jpcurate.dedup.local.run_dedup` on Ray Data; identical outputs."""
    init_ray(address)
    config = config or DedupConfig()
    out = Path(output)
    tasks = plan_tasks([str(p) for p in inputs], config.split_bytes, line_counter=_ray_line_counter)
    check_run_config(out, {"inputs": [str(p) for p in inputs], "config": config.to_dict(), "text_field": text_field,
                            "id_field": id_field, "format": out_format, "max_shard_bytes": max_shard_bytes})
    ctx = phases.Context(out=str(out), config=config, text_field=text_field, id_field=id_field,
                         out_format=out_format, max_shard_bytes=max_shard_bytes)
    run = DedupRun(out, progress)

    def ray_map(fn, items, workers):  # the local engine's `map_tasks`, on Ray Data
        if items and isinstance(items[0], InputTask):
            return _map_tasks(items, fn)
        return [fn(x) for x in items]

    steps = [
        ("lines", lambda: phases.lines_phase(ctx, tasks, 1, map_tasks) if config.line_min_docs > 0
         else {"skipped": True}),
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
    return summary.finish(ctx, tasks, run.report, plots)


__all__ = ["init_ray", "run_dedup_ray", "run_ray"]
