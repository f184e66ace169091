"""Repeated-line removal across a corpus (cc_net style), in two passes.

Pass 1 counts, for every normalised line, the number of documents that contain it (once per document). Pass 2
removes from every document the lines whose count reached `min_docs`: site footers, cookie banners, navigation.
Lines are compared after `normalize_for_dedup` and hashed to 64 bits; blank lines are never counted or removed.
A document whose every non-blank line is removed is rejected with reason ``repeated_lines.empty``.
"""

from __future__ import annotations

import hashlib

import numpy as np

from jpcurate.dedup.normalize import normalize_batch, normalize_for_dedup

EMPTY_REASON = "repeated_lines.empty"


def _key(norm: str) -> int | None:
    if not norm:
        return None
    return int.from_bytes(hashlib.blake2b(norm.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def line_key(line: str) -> int | None:
    """64-bit key of a normalised line; None for a blank line."""
    return _key(normalize_for_dedup(line))


def line_keys(text: str) -> list[int | None]:
    """`line_key` of every line of `text` (normalised together: one numpy pass)."""
    return [_key(n) for n in normalize_batch(text.split("\n"))]


def doc_line_keys(text: str) -> set[int]:
    """The distinct line keys of one document."""
    return {k for k in line_keys(text) if k is not None}


def batch_line_keys(texts: list[str]) -> np.ndarray:
    """(M,) uint64: each document's distinct line keys, concatenated (a key counts once per document)."""
    keys = [k for t in texts for k in doc_line_keys(t)]
    return np.array(keys, dtype=np.uint64)


def frequent_keys(keys: np.ndarray, min_docs: int) -> np.ndarray:
    """Sorted keys seen in at least `min_docs` documents (keys: one entry per (document, line))."""
    uniq, counts = np.unique(keys, return_counts=True)
    return uniq[counts >= min_docs]


def remove_lines(text: str, frequent: frozenset[int]) -> tuple[str, int]:
    """(text without the frequent lines, number of lines removed); untouched when `frequent` is empty."""
    if not frequent:
        return text, 0
    kept, removed = [], 0
    for line, key in zip(text.split("\n"), line_keys(text)):
        if key in frequent:
            removed += 1
        else:
            kept.append(line)
    return ("\n".join(kept), removed) if removed else (text, 0)
