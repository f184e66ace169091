"""Character-level rules: length, script fractions, symbols, digits, mojibake. All read the cached class counts.

Class names are those of `jpcurate.text.charclass.CLASS_NAMES`; "nonspace" as a denominator means every
non-whitespace character. "Japanese letters" (Swallow's denominator) = hiragana + katakana + kanji + Japanese
punctuation.
"""

from __future__ import annotations

import zlib

import numpy as np
import regex

from jpcurate.document import Document
from jpcurate.steps.base import Rule, ratio
from jpcurate.steps.verse import VerseExempt
from jpcurate.text import features
from jpcurate.text.charclass import CLASS_NAMES, C

JA_LETTERS = ("hiragana", "katakana", "kanji", "ja_punct")
# UTF-8 Japanese decoded as cp932 starts most characters with these (E3 81/82/83 -> 縺 繧 繝); they are rare
# in real text. UTF-8 decoded as Latin-1/cp1252 gives Ã/ã/â followed by a C1 or Latin-1 symbol.
MOJIBAKE_CHARS = "縺繧繝ÃãâÂ"
MOJIBAKE = regex.compile(r"[縺繧繝]|[ÃãâÂ][\u0080-\u00bf\u0152-\u0178\u2018-\u203a]")


class Length(Rule):
    """Characters in the text (`min_chars` / `too_long` / `empty` by name and bounds)."""

    name = "min_chars"

    def prepare(self, docs) -> None:  # needs no features: the size guard must stay cheap on a 50 MB document
        pass

    def measure(self, doc: Document) -> float:
        return len(doc.text)


class NonSpaceLength(Rule):
    """Non-whitespace characters."""

    name = "min_chars"

    def measure(self, doc: Document) -> float:
        return features.nonspace(doc)


class ClassCount(Rule):
    """Number of characters of the given classes (Swallow: `num_japanese_letters >= 400`)."""

    def __init__(self, classes: tuple[str, ...], lo: float | None = None, hi: float | None = None, *,
                 name: str, **kw) -> None:
        super().__init__(lo, hi, name=name, **kw)
        unknown = set(classes) - set(CLASS_NAMES)
        if unknown:
            raise ValueError(f"unknown character classes {sorted(unknown)}")
        self.classes = tuple(classes)
        self._idx = [C[c] for c in classes]

    def measure(self, doc: Document) -> float:
        cl = features.count_list(doc)
        return sum(cl[i] for i in self._idx)


class ClassFraction(VerseExempt):
    """Share of characters of `numer` classes among `denom` classes ("nonspace": all non-space characters,
    "all": every character); `exempt_verse=True` keeps verse (a poem written in katakana)."""

    def __init__(self, numer: tuple[str, ...], denom: tuple[str, ...] | str = "nonspace", lo: float | None = None,
                 hi: float | None = None, *, name: str, exempt_verse: bool = False, **kw) -> None:
        super().__init__(lo, hi, name=name, **kw)
        self.exempt_verse = exempt_verse
        whole = denom in ("nonspace", "all")
        for group in (numer, () if whole else denom):
            unknown = set(group) - set(CLASS_NAMES)
            if unknown:
                raise ValueError(f"unknown character classes {sorted(unknown)}")
        self.numer, self.denom = tuple(numer), denom if whole else tuple(denom)
        self._n = [C[c] for c in self.numer]
        self._d = None if whole else [C[c] for c in self.denom]

    def measure(self, doc: Document) -> float:
        cl = features.count_list(doc)
        if self._d is None:
            den = len(doc.text) if self.denom == "all" else features.nonspace(doc)
        else:
            den = sum(cl[i] for i in self._d)
        return ratio(sum(cl[i] for i in self._n), den)


class Mojibake(Rule):
    """Share of mis-decoded characters: U+FFFD, cp932-as-UTF-8 and Latin-1-as-UTF-8 patterns."""

    name = "mojibake"

    def measure(self, doc: Document) -> float:
        text = doc.text
        bad = features.count_list(doc)[C["replacement"]]
        if any(ch in text for ch in MOJIBAKE_CHARS):  # str containment is far cheaper than a regex scan
            bad += len(MOJIBAKE.findall(text))
        return ratio(bad, features.nonspace(doc))


class CharRun(Rule):
    """Longest run of one repeated character (HojiChar `SingleCharacterRepetitionFilter`: reject runs >= 200)."""

    name = "char_run"

    def measure(self, doc: Document) -> float:
        cps = features.codepoints(doc)
        if len(cps) == 0:
            return 0

        change = np.flatnonzero(cps[1:] != cps[:-1])
        bounds = np.concatenate(([-1], change, [len(cps) - 1]))
        return int(np.diff(bounds).max())


class KanaPrefix(Rule):
    """1 when hiragana or katakana occurs in the first `lookup` characters, else 0 (HojiChar `AcceptJapanese`;
    used with lo=1)."""

    name = "kana_prefix"
    _KANA = regex.compile(r"[ぁ-んァ-ン]")

    def __init__(self, lo=1, hi=None, *, lookup: int = 50, name: str | None = None, **kw) -> None:
        super().__init__(lo, hi, name=name, **kw)
        self.lookup = lookup

    def measure(self, doc: Document) -> float:
        return 1 if self._KANA.search(doc.text, 0, self.lookup) else 0


class Compression(Rule):
    """zlib (level 9) compressed size / UTF-8 size (llm-jp v1 keeps 0.30..0.70): low = repetitive, high = random."""

    name = "compression"

    def measure(self, doc: Document) -> float:
        raw = doc.text.encode("utf-8", "surrogatepass")
        return ratio(len(zlib.compress(raw, 9)), len(raw))
