"""Repetition rules (Gopher Table A1 family) on characters or on words, vectorised with numpy.

n-grams are hashed to uint64 by a polynomial over the token ids (code points, or word ids), then counted with
`np.unique`. Definitions, each a documented choice between the peers':

- `TopNgram` (Swallow, characters): count of the most frequent n-gram / number of n-grams; the word version
  (`words.TopWordNgram`, Gopher/datatrove) weighs by characters: characters in all occurrences of the most
  frequent n-gram / all word characters.
- `DupNgram`, `mode="distinct"` (Swallow): distinct n-grams seen more than once / distinct n-grams;
  `mode="repeat"` (ja-web): n-gram positions repeating an earlier n-gram / all positions;
  `mode="coverage"` (Gopher): share of characters covered by second-and-later occurrences of any n-gram.
- `DupLines`: share of lines (or of line characters, `chars=True`) that repeat an earlier line; paragraphs with
  `unit="paragraph"` (blank-line separated), sentences with `unit="sentence"`.
- `CharRepetition` (HojiChar, BigScience): share of the top-sqrt(#distinct) char n-grams' occurrences.
"""

from __future__ import annotations

import math

import numpy as np

from jpcurate.document import Document
from jpcurate.steps.base import Rule, ratio
from jpcurate.steps.verse import is_verse
from jpcurate.text import features

PRIME = np.uint64(0x9E3779B97F4A7C15)


def ngram_hashes(ids: np.ndarray, n: int) -> np.ndarray:
    """(L-n+1,) uint64 hashes of the n-grams of (L,) token ids."""
    m = len(ids) - n + 1
    if m <= 0:
        return np.zeros(0, dtype=np.uint64)
    ids = ids.astype(np.uint64, copy=False)
    h = ids[:m] + np.uint64(1)
    with np.errstate(over="ignore"):
        for k in range(1, n):
            h = h * PRIME + ids[k : k + m] + np.uint64(1)
    return h


def top_ngram_share(ids: np.ndarray, n: int, weights: np.ndarray | None = None) -> float:
    h = ngram_hashes(ids, n)
    if len(h) == 0:
        return 0.0
    _, inv, cnt = np.unique(h, return_inverse=True, return_counts=True)
    top = int(cnt.argmax())
    if weights is None:
        return float(cnt[top]) / len(h)
    span = np.convolve(weights, np.ones(n, dtype=weights.dtype), mode="valid")  # chars in each n-gram
    return float(span[inv == top].sum()) / float(weights.sum())


def dup_ngram_share(ids: np.ndarray, n: int, mode: str = "distinct", weights: np.ndarray | None = None) -> float:
    h = ngram_hashes(ids, n)
    if len(h) == 0:
        return 0.0
    _, first, inv, cnt = np.unique(h, return_index=True, return_inverse=True, return_counts=True)
    if mode == "distinct":
        return float((cnt > 1).sum()) / len(cnt)
    dup_starts = np.flatnonzero(first[inv] != np.arange(len(h)))
    if len(dup_starts) == 0:
        return 0.0
    cover = np.zeros(len(ids) + 1, dtype=np.int32)
    np.add.at(cover, dup_starts, 1)
    np.add.at(cover, dup_starts + n, -1)
    covered = np.cumsum(cover[:-1]) > 0
    w = np.ones(len(ids)) if weights is None else weights
    return float(w[covered].sum()) / float(w.sum())


class TopNgram(Rule):
    """Most frequent character n-gram: its count / all n-grams (Swallow). Batch-vectorised."""

    def __init__(self, n: int, hi: float | None = None, *, name: str | None = None, **kw) -> None:
        super().__init__(None, hi, name=name or f"top_{n}gram", **kw)
        self.n = n

    def prepare(self, docs) -> None:
        features.prepare_ngrams(list(docs), self.n)

    def measure(self, doc: Document) -> float:
        total, _, _, top = features.ngram_summary(doc, self.n)
        return ratio(top, total)


class DupNgram(Rule):
    """Repeated character n-grams. `mode`: "distinct" (Swallow: distinct n-grams seen more than once / distinct),
    "repeat" (n-gram positions that repeat an earlier n-gram / all positions; ja-web), both batch-vectorised;
    "coverage" (Gopher-style share of characters covered by repeats; per document)."""

    def __init__(self, n: int, hi: float | None = None, *, mode: str = "distinct", name: str | None = None,
                 **kw) -> None:
        if mode not in ("distinct", "repeat", "coverage"):
            raise ValueError(f"mode must be distinct, repeat or coverage, not {mode!r}")
        super().__init__(None, hi, name=name or f"dup_{n}gram", **kw)
        self.n, self.mode = n, mode

    def prepare(self, docs) -> None:
        if self.mode != "coverage":
            features.prepare_ngrams(list(docs), self.n)

    def measure(self, doc: Document) -> float:
        if self.mode == "coverage":
            return dup_ngram_share(features.codepoints(doc), self.n, "coverage")
        total, distinct, repeated, _ = features.ngram_summary(doc, self.n)
        return ratio(repeated, distinct) if self.mode == "distinct" else ratio(total - distinct, total)


class CharRepetition(Rule):
    """HojiChar `CharRepetitionRatioFilter`: occurrences of the top floor(sqrt(#distinct)) char n-grams / all."""

    name = "char_repetition"

    def __init__(self, hi: float | None = 0.33, *, n: int = 5, name: str | None = None, **kw) -> None:
        super().__init__(None, hi, name=name, **kw)
        self.n = n

    def measure(self, doc: Document) -> float:
        h = ngram_hashes(features.codepoints(doc), self.n)
        if len(h) == 0:
            return 0.0
        _, cnt = np.unique(h, return_counts=True)
        k = int(math.sqrt(len(cnt)))
        top = np.sort(cnt)[::-1][:k]
        return float(top.sum()) / float(cnt.sum())


class DupLines(Rule):
    """Share of lines (paragraphs) that repeat an earlier one; `chars=True` weighs by characters. Units shorter
    than `min_len` characters are left out (with 2: the lone ＊ or × between the scenes of a story). `verse_hi`:
    the limit for what `rules.verse.is_verse` calls verse (a song repeats its chorus)."""

    def __init__(self, hi: float | None = None, *, unit: str = "line", chars: bool = False, min_len: int = 1,
                 verse_hi: float | None = None, name: str | None = None, **kw) -> None:
        default = f"dup_{unit}{'_chars' if chars else 's'}"
        super().__init__(None, hi, name=name or default, **kw)
        self.unit, self.chars, self.min_len, self.verse_hi = unit, chars, min_len, verse_hi

    def apply(self, doc: Document):
        verdict = super().apply(doc)
        if verdict is not None and self.verse_hi is not None and doc.values[self.name] <= self.verse_hi \
                and is_verse(doc):
            doc.values["verse"] = 1
            return None
        return verdict

    def measure(self, doc: Document) -> float:
        if self.unit == "line":
            units = features.lines(doc)
        elif self.unit == "sentence":
            units = features.sentences(doc)
        else:
            units = [p.strip() for p in doc.text.split("\n\n") if p.strip()]
        if self.min_len > 1:
            units = [u for u in units if len(u) >= self.min_len]
        seen: set[str] = set()
        dup_n = dup_c = total_c = 0
        for u in units:
            total_c += len(u)
            if u in seen:
                dup_n += 1
                dup_c += len(u)
            else:
                seen.add(u)
        return ratio(dup_c, total_c) if self.chars else ratio(dup_n, len(units))
