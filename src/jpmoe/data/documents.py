"""Reading curated documents: JSONL (plain, .gz, .zst) or Parquet files, or directories of them (jpcurate's
output parts). Hidden files (a writer's unfinished `.name.tmp`) are skipped."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path

SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".parquet")


def document_files(paths: list[str | Path]) -> list[Path]:
    """The document files named, or found (sorted, recursively) under the directories named."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.name.endswith(SUFFIXES)
                           and not any(part.startswith(".") for part in f.relative_to(p).parts))
            if not found:
                raise FileNotFoundError(f"{p} holds no {'/'.join(SUFFIXES)} files")
            files += found
        elif p.is_file():
            if not p.name.endswith(SUFFIXES):
                raise ValueError(f"{p}: unsupported document file; expected one of {SUFFIXES}")
            files.append(p)
        else:
            raise FileNotFoundError(f"no such file or directory: {p}")
    return files


def _lines(path: Path) -> Iterator[str]:
    if path.name.endswith(".zst"):
        import zstandard

        with path.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as z:
            yield from io.TextIOWrapper(z, encoding="utf-8")
    elif path.name.endswith(".gz"):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            yield from f
    else:
        with path.open(encoding="utf-8") as f:
            yield from f


def iter_texts(paths: list[str | Path], *, key: str = "text") -> Iterator[str]:
    """Every document's `key` field, in file order; a record without it is an error naming file and line."""
    for path in document_files(paths):
        if path.name.endswith(".parquet"):
            import pyarrow.parquet as pq

            table = pq.read_table(path, columns=[key])
            yield from (t for t in table.column(key).to_pylist() if t is not None)
            continue
        for n, line in enumerate(_lines(path), 1):
            if not line.strip():
                continue
            rec = json.loads(line)
            if key not in rec:
                raise KeyError(f"{path}:{n}: record has no {key!r} field (keys: {sorted(rec)[:8]})")
            yield rec[key]
