"""Word-level rules: Gopher quality and repetition, FineWeb quality, MeCab noun ratio and word repetition.

Words come from a `splitter`:

- "space": `\\w+` runs and punctuation runs (English; Gopher/datatrove split on whitespace and punctuation);
- "script": runs of one script (kanji, hiragana, katakana, Latin/digits) — a tokenizer-free approximation
  of Japanese words, used when MeCab is absent (FineWeb-2 uses SudachiPy words; thresholds written for Sudachi
  words are therefore approximate here);
- "mecab": fugashi + UniDic surfaces (the `mecab` extra).

Tokens are cached per document and splitter, so the rules of one preset tokenize once. MeCab is applied to at most
`MECAB_MAX_CHARS` characters per call (long documents in chunks; cf. the fugashi segfault on very long input,
HojiChar PR #83).
"""

from __future__ import annotations

import numpy as np
import regex

from jpcurate.document import Document
from jpcurate.steps.base import Rule, ratio
from jpcurate.steps.repetition import dup_ngram_share, ngram_hashes, top_ngram_share

SPACE_TOKENS = regex.compile(r"\w+|[^\w\s]+")
SCRIPT_TOKENS = regex.compile(r"\p{Han}+|\p{Hiragana}+|[\p{Katakana}ー]+|[\p{Latin}\d]+|\w+|[^\w\s]+")
HAS_WORD_CHAR = regex.compile(r"\w")
HAS_ALPHA = regex.compile(r"[^\W\d_]")
MECAB_MAX_CHARS = 20_000
EN_STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")
JA_STOP_WORDS = ("の", "に", "を", "は", "た", "て", "が", "と", "で", "年", "し", "・", "月", "れ", "さ")

_TAGGER = None


def _tagger():
    global _TAGGER
    if _TAGGER is None:
        import fugashi

        _TAGGER = fugashi.Tagger()
    return _TAGGER


def mecab_tokens(text: str) -> list[tuple[str, str]]:
    """(surface, UniDic POS) for every morpheme, line by line, long lines in chunks."""
    tagger, out = _tagger(), []
    for line in text.split("\n"):
        for i in range(0, len(line), MECAB_MAX_CHARS):
            out += [(w.surface, w.feature_raw.split(",", 1)[0]) for w in tagger(line[i : i + MECAB_MAX_CHARS])]
    return out


def words(doc: Document, splitter: str) -> list[str]:
    key = f"words:{splitter}"
    w = doc.cache.get(key)
    if w is None:
        if splitter == "space":
            w = SPACE_TOKENS.findall(doc.text)
        elif splitter == "script":
            w = SCRIPT_TOKENS.findall(doc.text)
        elif splitter == "mecab":
            w = [s for s, _ in mecab_tokens(doc.text) if s.strip()]
        else:
            raise ValueError(f"unknown splitter {splitter!r} (space, script, mecab)")
        doc.cache[key] = w
    return w


def word_only(doc: Document, splitter: str) -> list[str]:
    """Tokens holding at least one word character (Gopher's non-symbol words)."""
    key = f"wordonly:{splitter}"
    w = doc.cache.get(key)
    if w is None:
        w = doc.cache[key] = [t for t in words(doc, splitter) if HAS_WORD_CHAR.search(t)]
    return w


def word_ids(doc: Document, splitter: str) -> tuple[np.ndarray, np.ndarray]:
    """(ids, char lengths) of the word tokens; ids are per-document (first occurrence order)."""
    key = f"wordids:{splitter}"
    c = doc.cache.get(key)
    if c is None:
        vocab: dict[str, int] = {}
        toks = word_only(doc, splitter)
        ids = np.fromiter((vocab.setdefault(t, len(vocab)) for t in toks), dtype=np.uint64, count=len(toks))
        c = doc.cache[key] = (ids, np.fromiter(map(len, toks), dtype=np.float64, count=len(toks)))
    return c


class _WordRule(Rule):
    def __init__(self, lo=None, hi=None, *, splitter: str = "space", name: str | None = None, **kw) -> None:
        super().__init__(lo, hi, name=name, **kw)
        self.splitter = splitter


class WordCount(_WordRule):
    name = "word_count"

    def measure(self, doc: Document) -> float:
        return len(word_only(doc, self.splitter))


class MeanWordLength(_WordRule):
    name = "mean_word_len"

    def measure(self, doc: Document) -> float:
        ws = word_only(doc, self.splitter)
        return ratio(sum(map(len, ws)), len(ws))


class SymbolWordRatio(_WordRule):
    """(# + ... + …) per word (Gopher <= 0.1)."""

    name = "symbol_word_ratio"

    def measure(self, doc: Document) -> float:
        t = doc.text
        return ratio(t.count("#") + t.count("...") + t.count("…"), len(word_only(doc, self.splitter)))


class AlphaWords(_WordRule):
    """Share of words with at least one letter (Gopher >= 0.8; FineWeb-2 ja >= 0.759)."""

    name = "alpha_words"

    def measure(self, doc: Document) -> float:
        ws = word_only(doc, self.splitter)
        return ratio(sum(1 for w in ws if HAS_ALPHA.search(w)), len(ws))


class StopWords(_WordRule):
    """Number of stop-word tokens (Gopher: >= 2 of the, be, to, of, and, that, have, with)."""

    name = "stop_words"

    def __init__(self, lo=2, hi=None, *, stop_words: tuple[str, ...] = EN_STOP_WORDS, lower: bool = True, **kw):
        super().__init__(lo, hi, **kw)
        self.stop_words, self.lower = tuple(stop_words), lower
        self._set = frozenset(stop_words)

    def measure(self, doc: Document) -> float:
        ws = words(doc, self.splitter)
        return sum(1 for w in ws if (w.lower() if self.lower else w) in self._set)

    def __setstate__(self, state: dict) -> None:
        vars(self).update(state)
        self._set = frozenset(self.stop_words)


class NewlineWordRatio(_WordRule):
    """Newlines per word (FineWeb `new_line_ratio`, <= 0.3; FineWeb-2 ja <= 0.13)."""

    name = "newline_ratio"

    def measure(self, doc: Document) -> float:
        return ratio(doc.text.count("\n"), len(word_only(doc, self.splitter)))


class TopWordNgram(_WordRule):
    """Characters in the most frequent word n-gram's occurrences / word characters (Gopher 2/3/4: .20/.18/.16)."""

    def __init__(self, n: int, hi: float | None = None, *, splitter: str = "space", name: str | None = None, **kw):
        super().__init__(None, hi, splitter=splitter, name=name or f"top_word_{n}gram", **kw)
        self.n = n

    def measure(self, doc: Document) -> float:
        ids, lens = word_ids(doc, self.splitter)
        return top_ngram_share(ids, self.n, lens)


class DupWordNgram(_WordRule):
    """Characters covered by repeated word n-grams / word characters (Gopher 5..10: .15 .. .10)."""

    def __init__(self, n: int, hi: float | None = None, *, splitter: str = "space", name: str | None = None, **kw):
        super().__init__(None, hi, splitter=splitter, name=name or f"dup_word_{n}gram", **kw)
        self.n = n

    def measure(self, doc: Document) -> float:
        ids, lens = word_ids(doc, self.splitter)
        return dup_ngram_share(ids, self.n, "coverage", lens)


class WordRepetition(_WordRule):
    """HojiChar `WordRepetitionRatioFilter`: occurrences of repeated word n-grams / all n-grams (< 0.40, n=7)."""

    name = "word_repetition"

    def __init__(self, hi: float | None = 0.4, *, n: int = 7, splitter: str = "mecab", **kw) -> None:
        super().__init__(None, hi, splitter=splitter, **kw)
        self.n = n

    def measure(self, doc: Document) -> float:
        ids, _ = word_ids(doc, self.splitter)
        h = ngram_hashes(ids, self.n)
        if len(h) == 0:
            return 0.0
        _, cnt = np.unique(h, return_counts=True)
        return float(cnt[cnt > 1].sum()) / len(h)


class NounRatio(Rule):
    """Share of nouns among morphemes, symbols (補助記号) excluded (HojiChar `DiscardTooManyNouns` < 0.80).

    `sample_chars` > 0 tags only that many characters from the start of the document, which bounds MeCab's cost
    per document (ja-web --mecab); 0 tags the whole text (HojiChar)."""

    name = "noun_ratio"

    def __init__(self, lo=None, hi=0.8, *, sample_chars: int = 0, name: str | None = None, **kw) -> None:
        super().__init__(lo, hi, name=name, **kw)
        self.sample_chars = sample_chars

    def measure(self, doc: Document) -> float:
        text = doc.text[: self.sample_chars] if self.sample_chars else doc.text
        toks = [pos for s, pos in mecab_tokens(text) if s.strip() and not pos.startswith("補助記号")]
        return ratio(sum(1 for p in toks if p.startswith("名詞")), len(toks))
