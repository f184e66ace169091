"""`ja-web`: our default, designed to keep natural Japanese prose of every register and remove web junk.

Order: size guard, cleaners (normalise, boilerplate), cheap character rules, line/sentence rules, repetition,
word lists, URL rules, then the naturalness model last (the most expensive step sees the fewest documents),
and PII masking on what is kept. Thresholds were set on the bundled samples (Wikipedia, Aozora, FineWeb-2,
OSCAR) and are loose on purpose where literature differs from the web (old kana, long sentences, dialogue).
"""

from __future__ import annotations

from jpcurate.boilerplate import StripBoilerplate
from jpcurate.langid import LanguageFilter
from jpcurate.normalize import Normalize
from jpcurate.pipeline import Pipeline
from jpcurate.rules.charstats import ClassFraction, Length, Mojibake
from jpcurate.rules.lines import LineEndPunct, MaxSentenceLength, ShortLines
from jpcurate.rules.repetition import DupLines, DupNgram, TopNgram


def ja_web(*, mecab: bool = False) -> Pipeline:
    steps = [
        Length(hi=1_000_000, name="too_long"),
        Normalize(),
        StripBoilerplate(),
        Length(lo=100, name="min_chars"),
        LanguageFilter(("ja",), min_score=0.5),
        Mojibake(hi=0.01),
        ClassFraction(("hiragana", "katakana"), ("hiragana", "katakana", "kanji"), lo=0.12, name="kana_frac"),
        ClassFraction(("katakana",), ("hiragana", "katakana", "kanji"), hi=0.6, name="katakana_frac"),
        ClassFraction(("symbol", "ascii_punct"), hi=0.15, name="symbols"),
        ClassFraction(("digit",), hi=0.2, name="digits"),
        ShortLines(hi=0.5, max_len=10),
        LineEndPunct(lo=0.3, chars_weighted=True),
        MaxSentenceLength(hi=600, by_line=True),
        DupLines(hi=0.3),
        TopNgram(3, hi=0.12),
        DupNgram(10, hi=0.35, mode="coverage", name="dup_10gram_chars"),
    ]
    return Pipeline(steps, name="ja-web")
