"""The local engine: input files are shards, processed in parallel worker processes, resumable after a kill.

    stats = run_local(pipeline, ["a.jsonl.zst", "b.parquet"], RunOptions(output="out", workers=8))

Output directory:

    out/kept/<shard>-00000.jsonl          kept records (every input field, cleaned text, "jpcurate" values)
    out/rejected/<shard>-00000.jsonl      rejected records, with "reason" (and "jpcurate.detail")
    out/quarantine/<shard>-00000.jsonl    malformed input (source file, line/row, reason, raw text)
    out/shards/<shard>.json               per-shard Stats; written last and atomically = the shard is done
    out/stats.json, out/report.md         merged statistics (identity checked) and the readable report
    out/run.json                          the pipeline and options; a resume with different ones is refused

`<shard>` is `<input index:05d>-<file stem>`. Resume: shards whose `shards/<shard>.json` exists are skipped; any
other shard is redone from scratch after its old parts are deleted, and parts only get their final names when
complete, so a resumed run writes exactly the files of an uninterrupted one. Engines share `RunOptions`,
`shard_tasks`, `process_shard` and `finish_run`; an engine is any callable `(pipeline, inputs, options) -> Stats`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from jpcurate.document import Malformed
from jpcurate.engines.workers import WORKER_DIED, sigint_deferred, stop_workers, worker_pool
from jpcurate.io.readers import LineCounter, check_distinct_inputs, input_format, read_documents
from jpcurate.io.writers import ShardWriter, remove_parts
from jpcurate.pipeline import Pipeline, run_pipeline, value_thresholds
from jpcurate.report import write_report
from jpcurate.stats import Stats

OUTPUTS = ("kept", "rejected", "quarantine")


@dataclass
class RunOptions:
    output: str | Path
    text_field: str = "text"
    id_field: str = "id"
    workers: int = 1
    out_format: str = "jsonl"
    max_shard_bytes: int = 256 << 20
    batch_size: int = 512
    write_rejected: bool = True
    progress: bool = True
    plots: bool = False  # draw report.md's PNG plots (matplotlib) at the end


@dataclass(frozen=True)
class ShardTask:
    index: int
    path: str
    prefix: str


def shard_tasks(inputs: list[str | Path]) -> list[ShardTask]:
    check_distinct_inputs(inputs)
    tasks = []
    for i, p in enumerate(inputs):
        input_format(p)  # fail early on an unknown format, naming the file
        if not Path(p).is_file():
            raise FileNotFoundError(f"input {p} does not exist")
        stem = Path(p).name.split(".")[0] or "input"
        tasks.append(ShardTask(i, str(p), f"{i:05d}-{stem}"))
    return tasks


def _run_config(pipeline: Pipeline, tasks: list[ShardTask], opts: RunOptions) -> dict[str, Any]:
    o = asdict(opts)
    for k in ("output", "workers", "progress", "plots"):  # these may change between a run and its resume
        o.pop(k)
    return {"pipeline": getattr(pipeline, "name", "custom"), "steps": [repr(s) for s in pipeline],
            "inputs": [t.path for t in tasks], "options": o}


def check_or_write_run_config(pipeline: Pipeline, tasks: list[ShardTask], opts: RunOptions) -> None:
    out = Path(opts.output)
    out.mkdir(parents=True, exist_ok=True)
    cfg = _run_config(pipeline, tasks, opts)
    path = out / "run.json"
    if path.exists():
        old = json.loads(path.read_text())
        if old != cfg:
            raise SystemExit(f"{out} holds a run with a different pipeline, inputs or options; "
                             "use a new output directory (or delete it) instead of resuming")
        return
    _atomic_write(path, json.dumps(cfg, ensure_ascii=False, indent=1))


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def shard_done_path(opts: RunOptions, task: ShardTask) -> Path:
    return Path(opts.output) / "shards" / f"{task.prefix}.json"


def process_shard(pipeline: Pipeline, task: ShardTask, opts: RunOptions) -> Stats:
    """Run one input file through the pipeline, write its three outputs and then its done marker."""
    out = Path(opts.output)
    for sub in OUTPUTS:
        remove_parts(out / sub, task.prefix)
    writers = {sub: ShardWriter(out / sub, prefix=task.prefix, fmt=opts.out_format if sub != "quarantine"
                                else "jsonl", max_bytes=opts.max_shard_bytes) for sub in OUTPUTS}
    total, counter, batch = Stats(), LineCounter(), []
    t0, last = time.monotonic(), time.monotonic()
    unreadable = None
    for item in _read_guarded(task, opts, counter):
        if isinstance(item, BaseException):
            unreadable = item
            break
        batch.append(item)
        if len(batch) >= opts.batch_size:
            _run_batch(pipeline, batch, writers, total, opts)
            batch = []
            if opts.progress and time.monotonic() - last > 10:
                last = time.monotonic()
                print(f"  {task.prefix}: {total.input:,} records", file=sys.stderr, flush=True)
    _run_batch(pipeline, batch, writers, total, opts)
    if unreadable is not None:
        writers["quarantine"].write({"source": task.path, "position": -1,
                                     "reason": f"unreadable input: {unreadable}"[:500], "raw": ""})
        total.add_quarantine("unreadable input file (rest of file skipped)")
    for w in writers.values():
        w.close()
    total.blank_lines += counter.blank
    marker = shard_done_path(opts, task)
    marker.parent.mkdir(parents=True, exist_ok=True)
    stats = total.to_dict()
    stats["seconds"] = round(time.monotonic() - t0, 3)
    _atomic_write(marker, json.dumps(stats, ensure_ascii=False))
    return total


def _read_guarded(task: ShardTask, opts: RunOptions, counter: LineCounter):
    """The shard's items; a read error (corrupt gzip/Parquet) ends the stream as the exception object, so that
    only reading failures are quarantined as an unreadable file (an error while processing or writing is raised)."""
    try:
        yield from read_documents(task.path, text_field=opts.text_field, id_field=opts.id_field,
                                  source=Path(task.path).name, counter=counter)
    except Exception as e:  # noqa: BLE001 - an unreadable file is quarantined, not fatal
        yield e


def _run_batch(pipeline, batch, writers, total: Stats, opts: RunOptions) -> None:
    if not batch:
        return

    for item in batch:
        if isinstance(item, Malformed):
            writers["quarantine"].write(item.to_record())
    kept, rejected, delta = run_pipeline(pipeline, batch)
    for d in kept:
        writers["kept"].write(d.to_record())
    if opts.write_rejected:
        for d in rejected:
            writers["rejected"].write(d.to_record())
    total.merge(delta)


_WORKER_PIPELINE: Pipeline | None = None


def _init_worker(pipeline: Pipeline) -> None:
    global _WORKER_PIPELINE
    _WORKER_PIPELINE = pipeline


def _worker(args: tuple[ShardTask, RunOptions]) -> tuple[ShardTask, Stats]:
    task, opts = args
    assert _WORKER_PIPELINE is not None
    return task, process_shard(_WORKER_PIPELINE, task, opts)


def run_local(pipeline: Pipeline, inputs: list[str | Path], opts: RunOptions) -> Stats:
    tasks = shard_tasks(inputs)
    check_or_write_run_config(pipeline, tasks, opts)
    todo = [t for t in tasks if not shard_done_path(opts, t).exists()]
    if opts.progress and len(todo) < len(tasks):
        print(f"resuming: {len(tasks) - len(todo)} of {len(tasks)} shards already done", file=sys.stderr)
    t0, done_bytes = time.monotonic(), 0
    workers = max(1, min(opts.workers, len(todo)))
    if workers == 1:
        results = (( t, process_shard(pipeline, t, opts)) for t in todo)
        for n, (t, s) in enumerate(results, 1):
            done_bytes += s.bytes_in
            _progress(opts, n, len(todo), t, s, done_bytes, t0)
    else:  # workers die with this process (kill -9) and leave Ctrl-C to it (jpcurate.engines.workers)
        ex = worker_pool(workers, initializer=_init_worker, initargs=(pipeline,))
        try:
            with sigint_deferred():  # the executor starts its workers on the first submit
                futures = [ex.submit(_worker, (t, opts)) for t in todo]
            for n, fut in enumerate(as_completed(futures), 1):
                t, s = fut.result()
                done_bytes += s.bytes_in
                _progress(opts, n, len(todo), t, s, done_bytes, t0)
        except BrokenProcessPool as e:
            ex.shutdown(wait=True, cancel_futures=True)
            raise BrokenProcessPool(WORKER_DIED) from e
        except KeyboardInterrupt:
            stop_workers(ex)
            raise
        except BaseException:
            ex.shutdown(wait=True, cancel_futures=True)
            raise
        ex.shutdown(wait=True)
    return finish_run(opts, tasks, value_thresholds(pipeline))


def _progress(opts: RunOptions, n: int, total: int, t: ShardTask, s: Stats, done_bytes: int, t0: float) -> None:
    if not opts.progress:
        return
    rate = done_bytes / max(time.monotonic() - t0, 1e-9) / 1e6
    kept = 100.0 * s.kept / max(s.input, 1)
    print(f"[{n}/{total} shards] {t.prefix}: {s.input:,} records, kept {kept:.1f}%, {rate:.2f} MB/s overall",
          file=sys.stderr, flush=True)


def finish_run(opts: RunOptions, tasks: list[ShardTask], thresholds: dict | None = None) -> Stats:
    """Merge the per-shard stats in shard order, check the identity, write stats.json and report.md (`thresholds`:
    the bounds of the measured values, `pipeline.value_thresholds`, drawn in the plots)."""
    total = Stats()
    for t in tasks:
        total.merge(Stats.from_dict(json.loads(shard_done_path(opts, t).read_text(encoding="utf-8"))))
    total.check_identity()
    out = Path(opts.output)
    d = total.to_dict()
    d["shards"] = len(tasks)
    d["thresholds"] = thresholds or {}
    _atomic_write(out / "stats.json", json.dumps(d, ensure_ascii=False, indent=1))
    write_report(out, d, plots=opts.plots)
    return total
