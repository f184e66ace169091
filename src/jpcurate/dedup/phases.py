"""The phases of the local dedup engine (see `jpcurate.dedup.local`); per-task functions run in worker processes."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from jpcurate.dedup.components import choose_kept, connected_components, exact_edges, priority_rank
from jpcurate.dedup.lines import batch_line_keys, frequent_keys
from jpcurate.dedup.lsh import bucket_pairs, unique_pairs
from jpcurate.dedup.normalize import normalize_batch
from jpcurate.dedup.stages import META_SCHEMA, DedupConfig, bucket_rows, clean_docs, make_key, partition_of, scan_batch
from jpcurate.dedup.tasks import InputTask, read_task, task_lines
from jpcurate.dedup.verify import SetStore, shingle_sets, verify_blocked
from jpcurate.document import Document, Malformed
from jpcurate.io.readers import input_format, parse_line
from jpcurate.io.writers import ShardWriter, remove_parts

BATCH = 1024
EXACT, NEAR = "exact_duplicate", "near_duplicate"
STATUS = {0: None, 1: EXACT, 2: NEAR}


@dataclass(frozen=True)
class Context:
    out: str
    config: DedupConfig
    text_field: str = "text"
    id_field: str = "id"
    out_format: str = "jsonl"
    max_shard_bytes: int = 256 << 20
    progress: bool = False  # a stderr line per finished task of the per-task phases (scan, buckets, write)

    @property
    def work(self) -> Path:
        return Path(self.out) / "_dedup"


def save_npy(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        np.save(f, arr)
    os.replace(tmp, path)


def save_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, ensure_ascii=False))
    os.replace(tmp, path)


def save_parquet(path: Path, table: pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def frequent_set(ctx: Context) -> frozenset[int]:
    path = ctx.work / "frequent_lines.npy"
    return frozenset(np.load(path).tolist()) if path.exists() else frozenset()


def batches(ctx: Context, task: InputTask, frequent: frozenset[int]) -> Iterator[tuple[list, list[Document], list]]:
    """Per batch of records: (malformed items, [(key, document)], ids of the documents still alive after line
    removal). A document emptied by line removal is in the list, rejected (`doc.reason`), and not alive."""
    items: list = []
    row = 0
    for item in read_task(task, ctx.text_field, ctx.id_field):
        items.append((make_key(task.index, row), item))
        row += 1
        if len(items) >= BATCH:
            yield _split(items, frequent)
            items = []
    if items:
        yield _split(items, frequent)


def _split(items: list, frequent: frozenset[int]):
    bad = [it for _, it in items if isinstance(it, Malformed)]
    docs = [(k, it) for k, it in items if not isinstance(it, Malformed)]
    alive = {id(d) for d in clean_docs([d for _, d in docs], frequent)}
    return bad, docs, alive


# ---- phase 1: repeated lines ------------------------------------------------------------------------------------

def lines_task(ctx: Context, task: InputTask) -> dict:
    keys = []
    for _, docs, _ in batches(ctx, task, frozenset()):
        keys.append(batch_line_keys([d.text for _, d in docs]))
    allk = np.concatenate(keys) if keys else np.zeros(0, np.uint64)
    part = partition_of(allk, ctx.config.partitions)
    for p in range(ctx.config.partitions):
        save_npy(ctx.work / "lines" / f"p{p:04d}" / f"{task.prefix}.npy", allk[part == p])
    return {"line_keys": int(len(allk))}


def _count_partition(ctx: Context, p: int) -> np.ndarray:
    d = ctx.work / "lines" / f"p{p:04d}"
    keys = [np.load(f) for f in sorted(d.glob("*.npy"))] if d.is_dir() else []
    return frequent_keys(np.concatenate(keys) if keys else np.zeros(0, np.uint64), ctx.config.line_min_docs)


def lines_phase(ctx: Context, tasks: list[InputTask], workers: int, map_fn) -> dict:
    per_task(ctx, tasks, workers, "lines", map_fn)
    freq = map_fn(partial(_count_partition, ctx), list(range(ctx.config.partitions)), workers)
    frequent = np.sort(np.concatenate(freq)) if freq else np.zeros(0, np.uint64)
    save_npy(ctx.work / "frequent_lines.npy", frequent)
    return {"frequent_lines": int(len(frequent))}


# ---- phase 2: scan ----------------------------------------------------------------------------------------------

def scan_task(ctx: Context, task: InputTask) -> dict:
    out = Path(ctx.out)
    remove_parts(out / "quarantine", task.prefix)
    frequent = frequent_set(ctx)
    tables, sigs = [], []
    n_in = n_bad = n_empty = nbytes = 0
    with ShardWriter(out / "quarantine", prefix=task.prefix, max_bytes=ctx.max_shard_bytes) as qw:
        for bad, docs, alive in batches(ctx, task, frequent):
            for m in bad:
                qw.write(m.to_record())
            live = [(k, d) for k, d in docs if id(d) in alive]
            n_in += len(bad) + len(docs)
            n_bad += len(bad)
            n_empty += len(docs) - len(live)
            if live:
                table, sig = scan_batch([d for _, d in live], [k for k, _ in live], ctx.config)
                tables.append(table)
                sigs.append(sig)
                nbytes += sum(len(d.text.encode("utf-8", "surrogatepass")) for _, d in live)
    table = pa.concat_tables(tables) if tables else META_SCHEMA.empty_table()
    save_parquet(ctx.work / "meta" / f"{task.prefix}.parquet", table)
    save_npy(ctx.work / "sig" / f"{task.prefix}.npy",
              np.concatenate(sigs) if sigs else np.zeros((0, ctx.config.num_perm), np.uint32))
    info = {"input": n_in, "quarantined": n_bad, "empty_after_lines": n_empty, "docs": len(table), "bytes": nbytes}
    return info


# ---- phase 3: index ---------------------------------------------------------------------------------------------

def load_meta(ctx: Context, tasks: list[InputTask], columns: list[str] | None = None) -> pa.Table:
    tables = [pq.read_table(ctx.work / "meta" / f"{t.prefix}.parquet", columns=columns) for t in tasks]
    return pa.concat_tables(tables) if tables else META_SCHEMA.empty_table()


def index_phase(ctx: Context, tasks: list[InputTask]) -> dict:
    meta = load_meta(ctx, tasks)
    keys = meta["key"].to_numpy()
    assert np.all(np.diff(keys) > 0), "document keys must be increasing"
    rank = priority_rank(meta["norm_len"].to_numpy(), meta["id"], meta["raw_hash"].to_numpy(), keys)
    hi, lo = meta["hash_hi"].to_numpy(), meta["hash_lo"].to_numpy()
    edges, is_head = exact_edges(hi, lo, rank)
    np.savez(ctx.work / "index.npz", keys=keys, rank=rank, hash_hi=hi, hash_lo=lo, exact_edges=edges)
    heads = keys[is_head & meta["has_sig"].to_numpy(zero_copy_only=False)]
    save_npy(ctx.work / "heads.npy", heads)
    return {"docs": int(len(keys)), "exact_groups_merged": int(len(edges)), "minhash_docs": int(len(heads))}


# ---- phase 4: buckets -------------------------------------------------------------------------------------------

def buckets_task(ctx: Context, task: InputTask) -> dict:
    """Band rows of the task's exact-group heads, appended to their partition files; BATCH documents at a time."""
    keys = pq.read_table(ctx.work / "meta" / f"{task.prefix}.parquet", columns=["key"])["key"].to_numpy()
    sig = np.load(ctx.work / "sig" / f"{task.prefix}.npy", mmap_mode="r")
    head = np.flatnonzero(np.isin(keys, np.load(ctx.work / "heads.npy"), assume_unique=True))
    parts: list[list[np.ndarray]] = [[] for _ in range(ctx.config.partitions)]
    for i in range(0, len(head), 8 * BATCH):
        rows = head[i : i + 8 * BATCH]
        bucket, member = bucket_rows(keys[rows], np.asarray(sig[rows]), ctx.config)
        part = partition_of(bucket, ctx.config.partitions)
        for p in range(ctx.config.partitions):
            sel = part == p
            parts[p].append(np.stack([bucket[sel].view(np.int64), member[sel]], axis=1))  # (M, 2): hash bits, key
    for p, chunks in enumerate(parts):
        rows = np.concatenate(chunks) if chunks else np.zeros((0, 2), np.int64)
        save_npy(ctx.work / "buckets" / f"p{p:04d}" / f"{task.prefix}.npy", rows)
    return {"rows": int(sum(len(c) for ch in parts for c in ch))}


# ---- phase 5: candidates ----------------------------------------------------------------------------------------

def candidates_partition(ctx: Context, p: int) -> int:
    d = ctx.work / "buckets" / f"p{p:04d}"
    parts = [np.load(f) for f in sorted(d.glob("*.npy"))] if d.is_dir() else []
    rows = np.concatenate(parts) if parts else np.zeros((0, 2), np.int64)
    pairs = bucket_pairs(rows[:, 0], rows[:, 1])
    save_npy(ctx.work / "candidates" / f"p{p:04d}.npy", pairs)
    return int(len(pairs))


def candidates_phase(ctx: Context, workers: int, map_fn) -> dict:
    counts = map_fn(partial(candidates_partition, ctx), list(range(ctx.config.partitions)), workers)
    return {"pairs_before_merge": int(sum(counts))}


# ---- phase 6: verify --------------------------------------------------------------------------------------------

def _wanted_items(ctx: Context, wanted: frozenset[int], task: InputTask) -> list[tuple[int, Document | Malformed]]:
    """(key, record) of the wanted rows of one task; JSONL lines of other rows are not even parsed."""
    if input_format(task.path) != "jsonl":
        return [(k, d) for _, docs, _ in batches(ctx, task, frozenset()) for k, d in docs if k in wanted]
    out = []
    for row, line in task_lines(task):
        key = make_key(task.index, row)
        if key in wanted:
            out.append((key, parse_line(line, source=task.source, position=0, text_field=ctx.text_field,
                                        id_field=ctx.id_field)))
    return out


def sets_task(ctx: Context, wanted: frozenset[int], task: InputTask) -> dict[int, np.ndarray]:
    """Shingle sets of the wanted documents of one task (cleaned and normalised as in the scan phase)."""
    frequent = frequent_set(ctx)
    items = [(k, d) for k, d in _wanted_items(ctx, wanted, task) if not isinstance(d, Malformed)]
    found: dict[int, np.ndarray] = {}
    for i in range(0, len(items), BATCH):
        sel = items[i : i + BATCH]
        alive = {id(d) for d in clean_docs([d for _, d in sel], frequent)}
        sel = [(k, d) for k, d in sel if id(d) in alive]
        texts = normalize_batch([d.text for _, d in sel])
        for (k, _), s in zip(sel, shingle_sets(texts, ctx.config.ngram, ctx.config.unit)):
            found[k] = s
    return found


def verify_phase(ctx: Context, tasks: list[InputTask], workers: int, map_fn) -> dict:
    files = sorted((ctx.work / "candidates").glob("p*.npy"))
    pairs = unique_pairs(np.concatenate([np.load(f) for f in files])) if files else np.zeros((0, 2), np.int64)
    info = {"candidate_pairs": int(len(pairs))}
    if ctx.config.verify and len(pairs):
        involved = np.unique(pairs)
        wanted_by_task = [t for t in tasks if np.any((involved >> 32) == t.index)]
        map_fn(partial(_sets_for, ctx, involved), wanted_by_task, workers)  # -> sets/<task>.npz

        def load(task: int) -> SetStore:
            return SetStore.load(ctx.work / "sets" / f"{task:05d}.npz")

        pairs, jac = verify_blocked(pairs, load, ctx.config.threshold)
        info["verified_pairs"] = int(len(pairs))
        info["rejected_pairs"] = int(len(jac) - len(pairs))
    save_npy(ctx.work / "edges.npy", pairs)
    return info


def _sets_for(ctx: Context, involved: np.ndarray, task: InputTask) -> int:
    """Write the shingle sets of the task's candidate documents to ``sets/<task>.npz``; returns their number."""
    mine = involved[(involved >> 32) == task.index]
    found = sets_task(ctx, frozenset(mine.tolist()), task)
    path = ctx.work / "sets" / f"{task.prefix}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{task.prefix}.tmp.npz")
    SetStore.from_sets(list(found), list(found.values())).save(tmp)
    os.replace(tmp, path)
    return len(found)


# ---- phase 7: components ----------------------------------------------------------------------------------------

def components_phase(ctx: Context) -> dict:
    idx = np.load(ctx.work / "index.npz")
    keys, rank = idx["keys"], idx["rank"]
    near = np.searchsorted(keys, np.load(ctx.work / "edges.npy")).reshape(-1, 2)
    edges = np.concatenate([idx["exact_edges"].reshape(-1, 2), near]).astype(np.int64)
    kept, size = choose_kept(connected_components(len(keys), edges), rank)
    same_text = (idx["hash_hi"] == idx["hash_hi"][kept]) & (idx["hash_lo"] == idx["hash_lo"][kept])
    status = np.where(kept == np.arange(len(keys)), 0, np.where(same_text, 1, 2)).astype(np.int8)
    ids = pa.concat_tables([pq.read_table(f, columns=["id"]) for f in sorted((ctx.work / "meta").glob("*.parquet"))]
                           )["id"] if len(keys) else pa.array([], pa.string())
    table = pa.table({"key": keys, "cluster_id": ids.take(pa.array(kept)), "cluster_size": size, "status": status})
    task_of = keys >> 32
    for t in np.unique(task_of):
        save_parquet(ctx.work / "assign" / f"{int(t):05d}.parquet", table.filter(pa.array(task_of == t)))
    return {"clusters": int(len(np.unique(kept))), "clusters_with_duplicates": int(np.sum((size > 1) & (status == 0))),
            "exact_removed": int(np.sum(status == 1)), "near_removed": int(np.sum(status == 2))}


# ---- phase 8: write ---------------------------------------------------------------------------------------------

def write_task(ctx: Context, task: InputTask) -> dict:
    out = Path(ctx.out)
    for sub in ("kept", "removed"):
        remove_parts(out / sub, task.prefix)
    path = ctx.work / "assign" / f"{task.prefix}.parquet"
    assign = pq.read_table(path).to_pydict() if path.exists() else {"key": []}
    by_key = {k: i for i, k in enumerate(assign["key"])}
    frequent = frequent_set(ctx)
    counts: dict[str, int] = {}
    removed_bytes: dict[str, int] = {}
    kept = bytes_kept = 0
    cl_id, cl_cluster, cl_size = [], [], []
    w = {s: ShardWriter(out / s, prefix=task.prefix, fmt=ctx.out_format, max_bytes=ctx.max_shard_bytes)
         for s in ("kept", "removed")}
    for _, docs, alive in batches(ctx, task, frequent):
        for k, d in docs:
            if id(d) in alive:
                i = by_key[k]
                d.meta["cluster_id"], d.meta["cluster_size"] = assign["cluster_id"][i], int(assign["cluster_size"][i])
                reason = STATUS[int(assign["status"][i])]
                if reason is not None:
                    d.meta["duplicate_of"] = assign["cluster_id"][i]
                    d.reject(reason, f"duplicate of {assign['cluster_id'][i]}")
                cl_id.append(d.id)
                cl_cluster.append(d.meta["cluster_id"])
                cl_size.append(d.meta["cluster_size"])
            if d.reason is None:
                w["kept"].write(d.to_record())
                kept += 1
                bytes_kept += len(d.text.encode("utf-8", "surrogatepass"))
            else:
                w["removed"].write(d.to_record())
                counts[d.reason] = counts.get(d.reason, 0) + 1
                removed_bytes[d.reason] = removed_bytes.get(d.reason, 0) + len(d.text.encode("utf-8", "surrogatepass"))
    for x in w.values():
        x.close()
    save_parquet(ctx.work / "clusters" / f"{task.prefix}.parquet",
                  pa.table({"id": pa.array(cl_id, pa.string()), "cluster_id": pa.array(cl_cluster, pa.string()),
                            "cluster_size": pa.array(cl_size, pa.int64())}))
    return {"kept": kept, "removed": counts, "removed_bytes": removed_bytes, "bytes_kept": bytes_kept}


_TASK_FNS = {"lines": lines_task, "scan": scan_task, "buckets": buckets_task, "write": write_task}


def _run_task(ctx: Context, name: str, task: InputTask) -> dict:
    t0 = time.monotonic()
    info = _TASK_FNS[name](ctx, task)
    save_json(ctx.work / name / "done" / f"{task.prefix}.json", info)
    if ctx.progress:
        span = "" if task.end < 0 else f" bytes {task.start:,}-{task.end:,}"
        print(f"dedup: {name} task {task.prefix} ({task.source}{span}) done in {time.monotonic() - t0:.1f}s",
              file=sys.stderr, flush=True)
    return info


def per_task(ctx: Context, tasks: list[InputTask], workers: int, name: str, map_fn) -> dict:
    """Run the per-task function of phase `name` over the tasks not yet done; returns the summed counters."""
    todo = [t for t in tasks if not (ctx.work / name / "done" / f"{t.prefix}.json").exists()]
    map_fn(partial(_run_task, ctx, name), todo, workers)
    return {"tasks": len(tasks), "resumed_tasks": len(tasks) - len(todo)}


def task_info(ctx: Context, name: str, task: InputTask) -> dict:
    return json.loads((ctx.work / name / "done" / f"{task.prefix}.json").read_text())
