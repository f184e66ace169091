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
    return int(len(doc.text) - counts(doc)[charclass.C["space"]])
