"""Per-document features shared by the rules, computed once per text and cached on `doc.cache`.

Rules ask for what they need (`counts(doc)`, `lines(doc)`, `sentences(doc)`, `codepoints(doc)`); a cleaner that
changes the text calls `doc.set_text`, which clears the cache.
"""

from __future__ import annotations

import re

import numpy as np
import regex

from jpcurate.document import Document
from jpcurate.text import charclass

# Sentence ends: Japanese and Western terminators (a line break also ends a sentence in `sentences_by_line`).
SENTENCE_END = regex.compile(r"[。．！？!?]+")
SENTENCE_OR_LINE_END = regex.compile(r"[。．！？!?]+|\n+")
# The text between them (stdlib `re`: ~2x faster than splitting with `regex` for the longest-sentence rule).
SENTENCE_BODY = re.compile(r"[^。．！？!?]+")
SENTENCE_OR_LINE_BODY = re.compile(r"[^。．！？!?\n]+")


def prepare_counts(docs: list[Document]) -> None:
    """Fill `cps`, `cls` and `counts` for every document of a batch: the texts are concatenated, encoded and
    classified in one pass each, then each document gets its slices and one small bincount (cheaper than one
    bincount over (document, class) pairs, whose int64 temporaries span the whole batch)."""
    todo = [d for d in docs if "counts" not in d.cache]
    if len(todo) < 2:
        for d in todo:
            counts(d)
        return
    lens = np.fromiter((len(d.text) for d in todo), dtype=np.int64, count=len(todo))
    cps = charclass.codepoints("".join(d.text for d in todo))
    cls = charclass.classify(cps)
    start = 0
    for d, end in zip(todo, np.cumsum(lens).tolist()):
        c = d.cache["cls"] = cls[start:end]
        d.cache["cps"], d.cache["counts"] = cps[start:end], np.bincount(c, minlength=charclass.N_CLASSES)
        start = end


NGRAM_PRIME = np.uint64(0x9E3779B97F4A7C15)


def ngram_hash_doubling(ids: np.ndarray, n: int) -> np.ndarray:
    """(L-n+1,) uint64 polynomial hashes of the n-grams of (L,) uint64 ids, built by doubling: h_{2k} from two
    h_k, so n = 10 costs 4 combine steps instead of 9 (same value as the left-to-right recurrence)."""
    pows = {1: NGRAM_PRIME}
    with np.errstate(over="ignore"):
        hs = {1: ids + np.uint64(1)}
        k = 1
        while 2 * k <= n:
            pows[2 * k] = pows[k] * pows[k]
            hs[2 * k] = hs[k][:-k] * pows[k] + hs[k][k:]
            k *= 2
        h, done = hs[k], k
        for part in sorted(hs, reverse=True):  # add the remaining binary parts of n
            if done + part <= n:
                h = h[: len(h) - part] * pows[part] + hs[part][done:][: len(h) - part]
                done += part
    return h


NGRAM_BLOCK = 1 << 15  # characters per block of documents in `prepare_ngrams` (its temporaries stay in cache)
NGRAM_KEY_BITS = 22  # hash bits per n-gram in the sort key; 10 bits above them number the documents of a block
SENTINEL = np.uint32(0xFFFFFFFF)  # the key of an n-gram crossing a document boundary (document 1023, never used)


def prepare_ngrams(docs: list[Document], n: int) -> None:
    """Cache `(total, distinct, repeated_distinct, top)` of the character n-grams of each document under
    `ngram<n>`. Documents are taken in blocks of about `NGRAM_BLOCK` characters (at most 1023 documents; a longer
    document is a block of its own): their code points are concatenated and hashed in one pass, each n-gram gets
    the 32-bit key (document in block << 22 | top 22 bits of its hash), those crossing a document boundary the
    sentinel key, and one sort of the block's keys gives the runs, counted per document with `searchsorted`.
    A 22-bit hash collides about once per 4 M pairs of n-grams of one document, which moves no ratio."""
    key = f"ngram{n}"
    todo = [d for d in docs if key not in d.cache]
    if not todo:
        return
    prepare_counts(todo)
    start, size = 0, 0
    for i, d in enumerate(todo):
        size += len(d.text)
        if size >= NGRAM_BLOCK or i - start == 1022 or i == len(todo) - 1:
            for doc, row in zip(todo[start : i + 1], _ngram_block(todo[start : i + 1], n)):
                doc.cache[key] = row
            start, size = i + 1, 0


def _ngram_block(docs: list[Document], n: int) -> list[tuple[int, int, int, int]]:
    """(total, distinct, repeated, top) for each of <= 1023 documents, from one sort of their n-gram keys."""
    nd = len(docs)
    lens = np.fromiter((len(d.text) for d in docs), dtype=np.int64, count=nd)
    total = np.maximum(lens - n + 1, 0)
    m = int(lens.sum()) - n + 1
    if m <= 0 or not total.any():
        return [(0, 0, 0, 0)] * nd
    cps = np.concatenate([d.cache["cps"] for d in docs]) if nd > 1 else docs[0].cache["cps"]
    h = ngram_hash_doubling(cps.astype(np.uint64), n)
    h >>= np.uint64(64 - NGRAM_KEY_BITS)
    keys = h.astype(np.uint32)
    keys |= np.repeat(np.arange(nd, dtype=np.uint32) << np.uint32(NGRAM_KEY_BITS), lens)[:m]
    starts = np.cumsum(lens)[:-1]  # n-grams starting at s-n+1 .. s-1 cross the boundary at s
    cross = (starts[:, None] - np.arange(1, n)).ravel()
    keys[cross[(cross >= 0) & (cross < m)]] = SENTINEL
    keys.sort()
    keys = keys[: int(total.sum())]  # the sentinels sort last
    run_start = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    run_len = np.diff(np.append(run_start, len(keys)))
    run_doc = keys[run_start] >> np.uint32(NGRAM_KEY_BITS)
    bounds = np.searchsorted(run_doc, np.arange(nd + 1, dtype=np.uint32))
    distinct = np.diff(bounds)
    repeated = np.diff(np.concatenate(([0], np.cumsum(run_len > 1)))[bounds])
    top = np.zeros(nd, dtype=np.int64)
    has = distinct > 0
    top[has] = np.maximum.reduceat(run_len, bounds[:-1][has])
    return list(zip(total.tolist(), distinct.tolist(), repeated.tolist(), top.tolist()))


def ngram_summary(doc: Document, n: int) -> tuple[int, int, int, int]:
    """(n-grams, distinct n-grams, distinct n-grams seen more than once, count of the most frequent one)."""
    key = f"ngram{n}"
    if key not in doc.cache:
        prepare_ngrams([doc], n)
    return doc.cache[key]


def count_list(doc: Document) -> list[int]:
    """Class counts as a Python list (cheaper than numpy indexing for a handful of sums)."""
    c = doc.cache.get("counts_l")
    if c is None:
        c = doc.cache["counts_l"] = counts(doc).tolist()
    return c


def codepoints(doc: Document) -> np.ndarray:
    c = doc.cache.get("cps")
    if c is None:
        c = doc.cache["cps"] = charclass.codepoints(doc.text)
    return c


def classes(doc: Document) -> np.ndarray:
    c = doc.cache.get("cls")
    if c is None:
        c = doc.cache["cls"] = charclass.classify(codepoints(doc))
    return c


def counts(doc: Document) -> np.ndarray:
    """(N_CLASSES,) character counts per class."""
    c = doc.cache.get("counts")
    if c is None:
        c = doc.cache["counts"] = np.bincount(classes(doc), minlength=charclass.N_CLASSES)
    return c


def lines(doc: Document) -> list[str]:
    """Non-blank lines, stripped."""
    c = doc.cache.get("lines")
    if c is None:
        c = doc.cache["lines"] = [ln.strip() for ln in doc.text.split("\n") if ln.strip()]
    return c


def sentences(doc: Document, *, by_line: bool = False) -> list[str]:
    """Non-blank sentences split after 。．！？!? (and at line breaks when `by_line`)."""
    key = "sents_l" if by_line else "sents"
    c = doc.cache.get(key)
    if c is None:
        pat = SENTENCE_OR_LINE_END if by_line else SENTENCE_END
        parts = pat.split(doc.text)
        c = doc.cache[key] = [p.strip() for p in parts if p.strip()]
    return c


def nonspace(doc: Document) -> int:
    return len(doc.text) - count_list(doc)[charclass.C["space"]]
