"""Input tasks: whole files, or byte ranges of large uncompressed JSONL files cut at line boundaries.

A JSONL file larger than `split_bytes` becomes several tasks. Cut points are found by seeking to multiples of
`split_bytes` and moving forward to just after the next newline, so every line belongs to exactly one task (the one
holding its first byte). The number of each task's first line is counted once (`count_newlines` per range, in
parallel on Ray), so records without an id get the same ``<source>:<line>`` id and quarantine position as in an
unsplit read. Compressed JSONL and Parquet files are one task each; one that cannot be read to its end (corrupt
gzip/zstd/Parquet) yields its records up to the error and then one quarantine item ("unreadable input: ...").
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from jpcurate.document import Document, Malformed
from jpcurate.io.readers import check_distinct_inputs, input_format, open_binary, parse_line, read_documents

DEFAULT_SPLIT_BYTES = 64 << 20
_READ = 1 << 20


@dataclass(frozen=True)
class InputTask:
    index: int
    path: str
    start: int = 0
    end: int = -1  # -1: the whole file (any format)
    first_line: int = 1

    @property
    def source(self) -> str:
        return Path(self.path).name

    @property
    def prefix(self) -> str:
        return f"{self.index:05d}"


def _splittable(path: str) -> bool:
    return input_format(path) == "jsonl" and not path.lower().endswith((".gz", ".zst", ".zstd"))


def _next_line_start(f, pos: int, size: int) -> int:
    """The first line start at or after `pos` (pos itself when the byte before it is a newline)."""
    if pos <= 0:
        return 0
    f.seek(pos - 1)
    while True:
        chunk = f.read(_READ)
        if not chunk:
            return size
        i = chunk.find(b"\n")
        if i >= 0:
            return f.tell() - len(chunk) + i + 1


def count_newlines(path: str, start: int, end: int) -> int:
    n = 0
    with open(path, "rb") as f:
        f.seek(start)
        left = end - start
        while left > 0:
            chunk = f.read(min(_READ, left))
            if not chunk:
                break
            n += chunk.count(b"\n")
            left -= len(chunk)
    return n


def cut_points(path: str, split_bytes: int) -> list[tuple[int, int]]:
    """Line-aligned (start, end) byte ranges of about `split_bytes` each covering the file."""
    size = os.path.getsize(path)
    bounds = [0]
    with open(path, "rb") as f:
        for target in range(split_bytes, size, split_bytes):
            b = _next_line_start(f, target, size)
            if b > bounds[-1] and b < size:
                bounds.append(b)
    bounds.append(size)
    return list(zip(bounds[:-1], bounds[1:]))


def plan_tasks(inputs: list[str], split_bytes: int = DEFAULT_SPLIT_BYTES, line_counter=None) -> list[InputTask]:
    """Tasks for `inputs` in order. `line_counter(ranges) -> counts` may count newlines in parallel (Ray)."""
    check_distinct_inputs(inputs)
    tasks: list[InputTask] = []
    for path in inputs:
        path = str(path)
        if not Path(path).is_file():
            raise FileNotFoundError(f"input {path} does not exist")
        if not _splittable(path) or os.path.getsize(path) <= split_bytes:
            tasks.append(InputTask(len(tasks), path))
            continue
        ranges = cut_points(path, split_bytes)
        jobs = [(path, s, e) for s, e in ranges]
        counts = line_counter(jobs) if line_counter else [count_newlines(*j) for j in jobs]
        first = 1
        for (s, e), c in zip(ranges, counts):
            tasks.append(InputTask(len(tasks), path, s, e, first))
            first += c
    return [replace(t, index=i) for i, t in enumerate(tasks)]


def task_lines(task: InputTask) -> Iterator[tuple[int, bytes]]:
    """(row, raw line) of every non-blank line of a JSONL task, unparsed: rows number the records as `read_task`
    yields them, so a reader that wants a few rows parses only those."""

    with (open(task.path, "rb") if task.end >= 0 else open_binary(task.path)) as f:
        if task.end >= 0:
            f.seek(task.start)
        pos, row = task.start, 0
        end = task.end if task.end >= 0 else float("inf")
        while pos < end:
            try:
                line = f.readline()
            except Exception:  # noqa: BLE001 - a corrupt compressed file ends where `read_task` ends it
                if task.end >= 0:
                    raise
                break
            if not line:
                break
            pos += len(line)
            if line.strip():
                yield row, line
                row += 1


def read_task(task: InputTask, text_field: str = "text", id_field: str = "id") -> Iterator[Document | Malformed]:
    """The records of one task, exactly as `jpcurate.io.readers.read_documents` yields them for those lines."""
    if task.end < 0:
        try:
            yield from read_documents(task.path, text_field=text_field, id_field=id_field, source=task.source)
        except Exception as e:  # noqa: BLE001 - a corrupt .gz/.zst/Parquet: quarantined, as in `jpcurate filter`
            yield Malformed(task.source, -1, f"unreadable input: {e}"[:500], "")
        return
    with open(task.path, "rb") as f:
        f.seek(task.start)
        pos, line_no = task.start, task.first_line
        while pos < task.end:
            line = f.readline()
            if not line:
                break
            pos += len(line)
            if line.strip():
                yield parse_line(line, source=task.source, position=line_no, text_field=text_field, id_field=id_field)
            line_no += 1
