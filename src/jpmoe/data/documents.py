"""Reading curated documents: JSONL (plain, .gz, .zst) or Parquet files, or directories of them (jpcurate's
output parts). Hidden files (a writer's unfinished `.name.tmp`) are skipped.

A record that cannot give a text (a line that is not JSON or not an object, a missing field, a null, a value that
is not a string, text that is not valid Unicode) is counted under its reason in the caller's `rejected` counter
and skipped; without a counter it is an error naming file and line. Bytes that are not UTF-8 are read as lone
surrogates (surrogateescape), so only their record is rejected (invalid_unicode), not the rest of the file."""

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
    """The file's lines; a truncated or corrupt file (gzip EOFError, zstd error, I/O error) is an error naming it."""
    n = 0
    try:
        for line in _raw_lines(path):
            n += 1
            yield line
    except Exception as e:  # the decompressors' errors share no base class
        raise ValueError(f"{path}: unreadable after line {n} ({type(e).__name__}: {e}); the file is truncated or "
                         "corrupt") from e


def _raw_lines(path: Path) -> Iterator[str]:
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


def iter_texts(paths: list[str | Path], *, key: str = "text", rejected: Counter | None = None) -> Iterator[str]:
    """Every document's `key` field, in file order: valid Unicode strings only. A record that gives none is counted
    in `rejected` (reasons malformed_json, not_an_object, missing_text_field, null_text, non_string_text,
    invalid_unicode) or, without a counter, is an error naming file and line."""

    def reject(reason: str, where: str, error: type[Exception] = ValueError) -> None:
        if rejected is None:
            raise error(f"{where}: {reason.replace('_', ' ')}")
        rejected[reason] += 1

    def checked(text, where: str) -> bool:
        if not isinstance(text, str):
            reject("null_text" if text is None else "non_string_text", where)
            return False
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            reject("invalid_unicode", where)
            return False
        return True

    for path in document_files(paths):
        if path.name.endswith(".parquet"):
            import pyarrow.parquet as pq

            try:
                table = pq.read_table(path, columns=[key])
            except Exception as e:  # ArrowInvalid / OSError / a missing column
                raise ValueError(f"{path}: unreadable Parquet file ({type(e).__name__}: {e})") from e
            for i, t in enumerate(table.column(key).to_pylist()):
                if checked(t, f"{path}: row {i} {key!r}"):
                    yield t
            continue
        for n, line in enumerate(_lines(path), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                reject("malformed_json", f"{path}:{n}: {e}")
                continue
            if not isinstance(rec, dict):
                reject("not_an_object", f"{path}:{n}: a JSON {type(rec).__name__}")
            elif key not in rec:
                reject("missing_text_field", f"{path}:{n}: no {key!r} in keys {sorted(rec)[:8]}", KeyError)
            elif checked(rec[key], f"{path}:{n}: {key!r}"):
                yield rec[key]


def rejection_summary(rejected: Counter) -> str:
    """'5 documents rejected (malformed_json=1, null_text=4)' for a counter `iter_texts` filled."""
    reasons = ", ".join(f"{k}={v}" for k, v in sorted(rejected.items()))
    return f"{sum(rejected.values())} documents rejected ({reasons})"
