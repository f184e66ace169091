"""Character-level rules: length, script fractions, symbols, digits, mojibake. All read the cached class counts.

Class names are those of `jpcurate.charclass.CLASS_NAMES`; "nonspace" as a denominator means every
non-whitespace character. "Japanese letters" (Swallow's denominator) = hiragana + katakana + kanji + Japanese
punctuation.
"""

from __future__ import annotations

import regex

from jpcurate import features
from jpcurate.charclass import CLASS_NAMES, C
from jpcurate.document import Document
from jpcurate.rules.base import Rule, ratio

JA_LETTERS = ("hiragana", "katakana", "kanji", "ja_punct")
# UTF-8 Japanese decoded as cp932 starts most characters with these (E3 81/82/83 -> 縺 繧 繝); they are rare
# in real text. UTF-8 decoded as Latin-1/cp1252 gives Ã/ã/â followed by a C1 or Latin-1 symbol.
MOJIBAKE = regex.compile(r"[縺繧繝]|[ÃãâÂ][\u0080-\u00bf\u0152-\u0178\u2018-\u203a]")


class Length(Rule):
    """Characters in the text (`min_chars` / `too_long` / `empty` by name and bounds)."""

    name = "min_chars"

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
        return int(features.counts(doc)[self._idx].sum())


class ClassFraction(Rule):
    """Share of characters of `numer` classes among `denom` classes (or all non-space characters)."""

    def __init__(self, numer: tuple[str, ...], denom: tuple[str, ...] | str = "nonspace", lo: float | None = None,
                 hi: float | None = None, *, name: str, **kw) -> None:
        super().__init__(lo, hi, name=name, **kw)
        for group in (numer, () if denom == "nonspace" else denom):
            unknown = set(group) - set(CLASS_NAMES)
            if unknown:
                raise ValueError(f"unknown character classes {sorted(unknown)}")
        self.numer, self.denom = tuple(numer), denom if denom == "nonspace" else tuple(denom)
        self._n = [C[c] for c in self.numer]
        self._d = None if denom == "nonspace" else [C[c] for c in self.denom]

    def measure(self, doc: Document) -> float:
        counts = features.counts(doc)
        den = features.nonspace(doc) if self._d is None else int(counts[self._d].sum())
        return ratio(int(counts[self._n].sum()), den)


class Mojibake(Rule):
    """Share of mis-decoded characters: U+FFFD, cp932-as-UTF-8 and Latin-1-as-UTF-8 patterns."""

    name = "mojibake"

    def measure(self, doc: Document) -> float:
        bad = int(features.counts(doc)[C["replacement"]])
        bad += len(MOJIBAKE.findall(doc.text))
        return ratio(bad, features.nonspace(doc))


class CharRun(Rule):
    """Longest run of one repeated character (HojiChar `SingleCharacterRepetitionFilter`: reject runs >= 200)."""

    name = "char_run"

    def measure(self, doc: Document) -> float:
        cps = features.codepoints(doc)
        if len(cps) == 0:
            return 0
        import numpy as np

        change = np.flatnonzero(cps[1:] != cps[:-1])
        bounds = np.concatenate(([-1], change, [len(cps) - 1]))
        return int(np.diff(bounds).max())
