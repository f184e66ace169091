"""Per-document features shared by the rules, computed once per text and cached on `doc.cache`.

Rules ask for what they need (`counts(doc)`, `lines(doc)`, `sentences(doc)`, `codepoints(doc)`); a cleaner that
changes the text calls `doc.set_text`, which clears the cache.
"""

from __future__ import annotations

import numpy as np
import regex

from jpcurate import charclass
from jpcurate.document import Document

# Sentence ends: Japanese and Western terminators (a line break also ends a sentence in `sentences_by_line`).
SENTENCE_END = regex.compile(r"[。．！？!?]+")
SENTENCE_OR_LINE_END = regex.compile(r"[。．！？!?]+|\n+")


def prepare_counts(docs: list[Document]) -> None:
    """Fill `cps`, `cls` and `counts` for every document of a batch in one vectorised pass (no per-document numpy
    calls apart from slicing): the texts are concatenated, classified once, and counted with one bincount over
    (document, class) pairs."""
    todo = [d for d in docs if "counts" not in d.cache]
    if len(todo) < 2:
        for d in todo:
            counts(d)
        return
    lens = np.fromiter((len(d.text) for d in todo), dtype=np.int64, count=len(todo))
    cps = charclass.codepoints("".join(d.text for d in todo))
    cls = charclass.classify(cps)
    owner = np.repeat(np.arange(len(todo)), lens)
    table = np.bincount(owner * charclass.N_CLASSES + cls, minlength=len(todo) * charclass.N_CLASSES)
    table = table.reshape(len(todo), charclass.N_CLASSES)
    ends = np.cumsum(lens).tolist()
    start = 0
    for d, end, row in zip(todo, ends, table):
        d.cache["cps"], d.cache["cls"], d.cache["counts"] = cps[start:end], cls[start:end], row
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


def prepare_ngrams(docs: list[Document], n: int) -> None:
    """Cache `(total, distinct, repeated_distinct, top)` of the character n-grams of each document under
    `ngram<n>`, for a whole batch at once: n-grams are hashed over the concatenated code points, those crossing a
    document boundary dropped, keys = (document index, hash) packed in one integer, one sort, run lengths per
    document."""
    key = f"ngram{n}"
    todo = [d for d in docs if key not in d.cache]
    if not todo:
        return
    if len(todo) >= 1 << 15:
        for i in range(0, len(todo), 1 << 14):
            prepare_ngrams(todo[i : i + (1 << 14)], n)
        return
    prepare_counts(todo)
    lens = np.fromiter((len(d.text) for d in todo), dtype=np.int64, count=len(todo))
    cps = np.concatenate([d.cache["cps"] for d in todo]).astype(np.uint64) if len(todo) > 1 else \
        todo[0].cache["cps"].astype(np.uint64)
    m = len(cps) - n + 1
    result = np.zeros((len(todo), 4), dtype=np.int64)
    if m > 0:
        h = ngram_hash_doubling(cps, n)
        owner = np.repeat(np.arange(len(todo), dtype=np.uint64), lens)
        valid = owner[:m] == owner[n - 1 : n - 1 + m]  # the n-gram lies inside one document
        # sort key = (document, hash): 32-bit keys (twice as fast to sort) while the batch index fits in 10 bits;
        # a 22-bit hash collides about once per 4 M pairs of n-grams of one document, which moves no ratio.
        shift = 22 if len(todo) <= 1024 else 48
        key_t = np.uint32 if shift == 22 else np.uint64
        keys = np.sort(((owner[:m][valid] << np.uint64(shift)) | (h[valid] >> np.uint64(64 - shift))).astype(key_t))
        if len(keys):
            starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
            run_len = np.diff(np.append(starts, len(keys)))
            run_doc = (keys[starts] >> key_t(shift)).astype(np.int64)
            nd = len(todo)
            result[:, 0] = np.bincount(run_doc, weights=run_len, minlength=nd)
            result[:, 1] = np.bincount(run_doc, minlength=nd)
            result[:, 2] = np.bincount(run_doc, weights=run_len > 1, minlength=nd)
            first = np.flatnonzero(np.concatenate(([True], run_doc[1:] != run_doc[:-1])))
            result[run_doc[first], 3] = np.maximum.reduceat(run_len, first)
    for d, row in zip(todo, result.tolist()):
        d.cache[key] = tuple(row)


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
