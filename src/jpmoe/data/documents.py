"""Reading curated documents: JSONL (plain, .gz, .zst) or Parquet files, or directories of them (jpcurate's
output parts). Hidden files (a writer's unfinished `.name.tmp`) are skipped.

A record that cannot give a text (a line that is not JSON or not an object, a missing field, a null Parquet
value) is counted under its reason in the caller's `rejected` counter and skipped; without a counter it is an
error naming file and line. Bytes that are not UTF-8 are kept as lone surrogates (surrogateescape), so the caller
sees and counts them as invalid Unicode instead of the whole file failing to decode."""

from __future__ import annotations

import gzip
import io
import json
from collections import Counter
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
            yield from io.TextIOWrapper(z, encoding="utf-8", errors="surrogateescape")
    elif path.name.endswith(".gz"):
        with gzip.open(path, "rt", encoding="utf-8", errors="surrogateescape") as f:
            yield from f
    else:
        with path.open(encoding="utf-8", errors="surrogateescape") as f:
            yield from f


def iter_texts(paths: list[str | Path], *, key: str = "text", rejected: Counter | None = None) -> Iterator:
    """Every document's `key` field, in file order. A record that gives none is counted in `rejected` (reasons
    malformed_json, not_an_object, missing_text_field, null_text) or, without a counter, is an error naming file
    and line. The values are yielded as stored: the caller checks that they are strings."""

    def reject(reason: str, where: str, error: type[Exception] = ValueError) -> None:
        if rejected is None:
            raise error(where)
        rejected[reason] += 1

    for path in document_files(paths):
        if path.name.endswith(".parquet"):
            import pyarrow.parquet as pq

            for t in pq.read_table(path, columns=[key]).column(key).to_pylist():
                if t is None:
                    reject("null_text", f"{path}: a null {key!r} value")
                else:
                    yield t
            continue
        for n, line in enumerate(_lines(path), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                reject("malformed_json", f"{path}:{n}: not JSON ({e})")
                continue
            if not isinstance(rec, dict):
                reject("not_an_object", f"{path}:{n}: a JSON {type(rec).__name__}, not an object")
            elif key not in rec:
                reject("missing_text_field", f"{path}:{n}: record has no {key!r} field (keys: {sorted(rec)[:8]})",
                       KeyError)
            else:
                yield rec[key]
