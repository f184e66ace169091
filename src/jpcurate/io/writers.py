"""Sharded output writers: JSONL (plain, .gz, .zst) or Parquet, a size limit per part, atomic parts.

    with ShardWriter(out_dir / "kept", prefix="00003-cc", fmt="jsonl.zst", max_bytes=256 << 20) as w:
        for doc in kept:
            w.write(doc.to_record())
    w.paths  # ["…/kept/00003-cc-00000.jsonl.zst", …]

Each part is written to a hidden temporary name (`.<name>.tmp`) and renamed when it is complete, so a killed run
never leaves a partial part under a final name. The size limit counts uncompressed serialised bytes (JSON lines,
or an estimate from Arrow buffers for Parquet); a part holds at least one record, so one huge record makes one
oversize part rather than an error. Output is byte-deterministic (gzip mtime 0, no file name in the header), so a
resumed run reproduces an uninterrupted one exactly. A Parquet part has a column for every field of any of its
records; a field whose type varies between records is stored as JSON text (`rows_to_table`).
`remove_parts(dir, prefix)` deletes the parts (and stale temporaries) of one prefix before it is redone.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import IO, Any

import orjson

FORMATS = ("jsonl", "jsonl.gz", "jsonl.zst", "parquet")


def dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, default=str)


def encode_line(record: dict[str, Any]) -> bytes:
    """One JSON line as UTF-8 (orjson: compact, UTF-8 unescaped, NaN as null); what orjson refuses (an integer beyond
    64 bits, lone surrogates from broken input escapes) is written by `json`, surrogates \\u-escaped."""
    try:
        return orjson.dumps(record, default=str, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS)
    except TypeError:
        pass
    try:
        return (dumps(record) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        return (json.dumps(record, ensure_ascii=True, default=str) + "\n").encode("ascii")


class ShardWriter:
    def __init__(self, directory: str | Path, *, prefix: str, fmt: str = "jsonl", max_bytes: int = 256 << 20) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown output format {fmt!r}; expected one of {FORMATS}")
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.prefix, self.fmt, self.max_bytes = prefix, fmt, max_bytes
        self.paths: list[Path] = []
        self.records = 0
        self._part = 0
        self._size = 0
        self._fh: IO[bytes] | None = None
        self._tmp: Path | None = None
        self._rows: list[dict[str, Any]] = []

    def _final_name(self) -> Path:
        return self.directory / f"{self.prefix}-{self._part:05d}.{self.fmt}"

    def _open(self) -> None:
        final = self._final_name()
        self._tmp = final.with_name(f".{final.name}.tmp")
        if self.fmt == "parquet":
            return
        raw = open(self._tmp, "wb")
        if self.fmt == "jsonl.gz":
            self._fh = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)
            self._raw = raw
        elif self.fmt == "jsonl.zst":
            import zstandard

            self._fh = zstandard.ZstdCompressor(level=3).stream_writer(raw, closefd=True)
        else:
            self._fh = raw

    def write(self, record: dict[str, Any]) -> None:
        if self._tmp is None:
            self._open()
        if self.fmt == "parquet":
            self._rows.append(record)
            self._size += len(encode_line(record))
        else:
            data = encode_line(record)
            self._fh.write(data)  # type: ignore[union-attr]
            self._size += len(data)
        self.records += 1
        if self._size >= self.max_bytes:
            self._finish_part()

    def _finish_part(self) -> None:
        if self._tmp is None:
            return
        if self.fmt == "parquet":
            import pyarrow.parquet as pq  # here: a JSONL run never loads pyarrow (start-up)

            pq.write_table(rows_to_table(self._rows), self._tmp)
            self._rows = []
        else:
            assert self._fh is not None
            self._fh.close()
            if self.fmt == "jsonl.gz":
                self._raw.close()
            self._fh = None
        final = self._final_name()
        os.replace(self._tmp, final)
        self.paths.append(final)
        self._tmp = None
        self._part += 1
        self._size = 0

    def close(self) -> list[Path]:
        self._finish_part()
        return self.paths

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        elif self._tmp is not None:  # an error: leave no partial part behind
            if self._fh is not None:
                self._fh.close()
            self._tmp.unlink(missing_ok=True)


def rows_to_table(rows: list[dict[str, Any]]):
    """Records -> Arrow table with a column for every key of any record (in first-seen order; a record without
    the key gets null). `Table.from_pylist` would take the columns of the first record only and drop the others,
    and fail on a field whose type changes between records; such a column (or one Parquet cannot store, such as
    an empty object) is written as JSON text instead."""
    import pyarrow as pa  # as above

    names = list(dict.fromkeys(k for r in rows for k in r))
    columns = []
    for name in names:
        values = [r.get(name) for r in rows]
        try:
            arr = pa.array(values)
            if not _parquet_storable(arr.type):
                raise TypeError(f"{arr.type} has an empty struct")
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            arr = pa.array([None if v is None else _json_text(v) for v in values], pa.string())
        columns.append(arr)
    return pa.Table.from_arrays(columns, names=names)


def _json_text(value: Any) -> str:
    text = dumps(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: \u-escaped, as in encode_line
        text = json.dumps(value, ensure_ascii=True, default=str)
    return text


def _parquet_storable(t) -> bool:
    import pyarrow as pa  # as above

    if pa.types.is_struct(t):
        return t.num_fields > 0 and all(_parquet_storable(t.field(i).type) for i in range(t.num_fields))
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return _parquet_storable(t.value_type)
    if pa.types.is_map(t):
        return _parquet_storable(t.key_type) and _parquet_storable(t.item_type)
    return True


def remove_parts(directory: str | Path, prefix: str) -> None:
    """Delete every part and temporary of `prefix` in `directory` (a shard about to be redone)."""
    d = Path(directory)
    if not d.is_dir():
        return
    for p in d.iterdir():
        if p.name.startswith(f"{prefix}-") or p.name.startswith(f".{prefix}-"):
            p.unlink()
