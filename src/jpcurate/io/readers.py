"""Streaming readers: JSONL (plain, .gz, .zst) and Parquet into `Document` / `Malformed`.

    for item in read_documents("cc.jsonl.zst", text_field="text", id_field="id"):
        if isinstance(item, Malformed): ...   # quarantine it (reason says why)

Every non-blank input line (JSONL) or row (Parquet) yields exactly one item, in input order, so
`input = kept + rejected + quarantined` can be checked. Blank JSONL lines hold no record and are skipped
(counted by `LineCounter.blank` when the caller passes one). Nothing is loaded whole: JSONL is read line by line,
Parquet by record batches.

`documents_from_records(records, ...)` is the same conversion for already-parsed dicts (an Arrow batch's
`to_pylist()`), so that another engine turns rows into Documents exactly as the local runner does.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from jpcurate.document import Document, Malformed

JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson", ".jsonl.gz", ".json.gz", ".jsonl.zst", ".json.zst", ".jsonl.zstd")
PARQUET_SUFFIXES = (".parquet", ".pq")
RAW_PREVIEW = 2000  # characters of a malformed line kept in quarantine (a 50 MB broken line is not copied whole)
HUGE = 2.0**63  # orjson reads an integer beyond 64 bits as a float this large (json keeps it exact)


@dataclass
class LineCounter:
    blank: int = 0


def input_format(path: str | Path) -> str:
    name = str(path).lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    raise ValueError(f"{path}: unknown input format (expected one of {JSONL_SUFFIXES + PARQUET_SUFFIXES})")


def repeated_inputs(paths: list[str | Path]) -> list[str]:
    """The paths that name a file named before (as resolved: `a.jsonl`, `./a.jsonl`, a link to it)."""
    seen: set[Path] = set()
    repeated = []
    for p in paths:
        r = Path(p).resolve()
        if r in seen:
            repeated.append(str(p))
        seen.add(r)
    return repeated


def check_distinct_inputs(paths: list[str | Path]) -> None:
    """Refuse an input list that names one file twice: its records would be processed (and written) twice."""
    repeated = repeated_inputs(paths)
    if repeated:
        raise ValueError(f"input {repeated[0]} is listed more than once; give each file once")


def open_binary(path: str | Path) -> IO[bytes]:
    """Open a possibly compressed file for binary reading (.gz, .zst/.zstd, else plain)."""
    name = str(path).lower()
    if name.endswith(".gz"):
        return gzip.open(path, "rb")
    if name.endswith((".zst", ".zstd")):
        import zstandard

        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True))
    return open(path, "rb")


def parse_line(
    line: bytes, *, source: str, position: int, text_field: str, id_field: str
) -> Document | Malformed:
    """One JSONL line -> Document, or Malformed with the reason (invalid UTF-8, bad JSON, missing/non-string text).
    A UTF-8 byte order mark before the record (files saved by Windows tools, or such files concatenated) is skipped.

    orjson parses the line (about 3x faster than `json`); whatever it refuses (and a line it could read less exactly
    than `json`) goes the `json` way, which gives the same records and the quarantine reasons as before."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        pass
    else:
        if not _has_huge_float(record):
            return _to_document(record, source, position, text_field, id_field, None, line)
    if line.startswith(b"\xef\xbb\xbf"):
        line = line[3:]
    try:
        decoded = line.decode("utf-8")
    except UnicodeDecodeError as e:
        return Malformed(source, position, f"invalid UTF-8 at byte {e.start}", _preview(line))
    try:
        record = json.loads(decoded)
    except (ValueError, RecursionError) as e:  # ValueError: also an integer past Python's 4300-digit limit
        msg = e.msg if isinstance(e, json.JSONDecodeError) else "nesting too deep" if isinstance(
            e, RecursionError) else str(e)[:200]
        return Malformed(source, position, f"malformed JSON: {msg}", decoded[:RAW_PREVIEW])
    return _to_document(record, source, position, text_field, id_field, decoded)


def _has_huge_float(value: Any) -> bool:
    """A float of magnitude >= 2^63 anywhere in a parsed record: perhaps an integer orjson could not keep exact."""
    t = type(value)
    if t is dict:
        return any(_has_huge_float(v) for v in value.values() if type(v) is not str)
    if t is list:
        return any(_has_huge_float(v) for v in value if type(v) is not str)
    return t is float and not -HUGE < value < HUGE


def _to_document(
    record: Any, source: str, position: int, text_field: str, id_field: str, raw: str | None = None,
    line: bytes | None = None,
) -> Document | Malformed:
    try:
        return Document.from_record(record, text_field=text_field, id_field=id_field,
                                    fallback_id=f"{source}:{position}")
    except ValueError as e:
        if line is not None:
            raw = _preview(line)
        if raw is None:
            raw = json.dumps(record, ensure_ascii=False, default=str)[:RAW_PREVIEW]
        return Malformed(source, position, str(e), raw[:RAW_PREVIEW])


def _preview(line: bytes) -> str:
    return line[: RAW_PREVIEW * 3].decode("utf-8", errors="replace")[:RAW_PREVIEW]


def read_jsonl(
    path: str | Path,
    *,
    text_field: str = "text",
    id_field: str = "id",
    source: str | None = None,
    counter: LineCounter | None = None,
) -> Iterator[Document | Malformed]:
    source = source or Path(path).name
    with open_binary(path) as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                if counter is not None:
                    counter.blank += 1
                continue
            yield parse_line(line, source=source, position=lineno, text_field=text_field, id_field=id_field)


def read_parquet(
    path: str | Path,
    *,
    text_field: str = "text",
    id_field: str = "id",
    source: str | None = None,
    batch_size: int = 1024,
) -> Iterator[Document | Malformed]:
    import pyarrow.parquet as pq  # here: a JSONL run never loads pyarrow (start-up)

    source = source or Path(path).name
    position = 0
    pf = pq.ParquetFile(path)
    for batch in pf.iter_batches(batch_size=batch_size):
        rows = batch.to_pylist()
        yield from documents_from_records(rows, text_field=text_field, id_field=id_field, source=source, start=position)
        position += len(rows)


def documents_from_records(
    records: Iterable[Any], *, text_field: str = "text", id_field: str = "id", source: str = "", start: int = 0
) -> list[Document | Malformed]:
    """Parsed records (dicts) -> Documents; rows are numbered from `start + 1` for ids and quarantine positions."""
    return [
        _to_document(rec, source, start + i, text_field, id_field) for i, rec in enumerate(records, start=1)
    ]


def read_documents(
    path: str | Path,
    *,
    text_field: str = "text",
    id_field: str = "id",
    source: str | None = None,
    counter: LineCounter | None = None,
) -> Iterator[Document | Malformed]:
    """Stream any supported input file (format from the file name)."""
    if input_format(path) == "parquet":
        return read_parquet(path, text_field=text_field, id_field=id_field, source=source)
    return read_jsonl(path, text_field=text_field, id_field=id_field, source=source, counter=counter)
