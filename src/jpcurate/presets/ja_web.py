"""`ja-web`: our default, designed to keep natural Japanese prose of every register and remove web junk.

Order: size guard, cleaners (normalise, boilerplate), cheap character rules, line/sentence rules, repetition,
word lists, URL rules, the naturalness model (the most expensive step sees the fewest documents), and PII masking
on what is kept. (A top-character-3-gram rule was measured redundant with the 10-gram repeat rule and the language
model on every crafted and bundled input, and dropped for speed.) Thresholds were set on the bundled samples
(Wikipedia, Aozora, FineWeb-2, OSCAR) and on the quality set (benchmarks/quality_set: 10 kinds of natural text, 20
kinds of web junk; docs/jpcurate.md "What ja-web keeps"). Literature differs from the web and is kept on purpose:
verse (`rules.verse`: tanka, poems, lyrics) is exempt from the line-shape rules and gets twice the perplexity
limit, katakana-written text (雨ニモマケズ) is rescored folded to hiragana, discrimination words count only in a
hostile context (period essays name 支那人 without abuse), sentences run on with 、 for pages (たけくらべ).

With `mecab=True` the word lists are matched on morpheme boundaries and a noun-ratio rule runs on a fixed-size
sample of each document (bounded MeCab cost per document).
"""

from __future__ import annotations

from jpcurate.pipeline import Pipeline
from jpcurate.steps.boilerplate import StripBoilerplate
from jpcurate.steps.charstats import ClassFraction, Length, Mojibake
from jpcurate.steps.grammar import BrokenEndings
from jpcurate.steps.langid import LanguageFilter
from jpcurate.steps.lines import BareTokens, CodeLines, LineEndPunct, MaxSentenceLength, ShortLines
from jpcurate.steps.naturalness import NaturalnessFilter
from jpcurate.steps.ngwords import Context, Limit, NGWords, has_fugashi
from jpcurate.steps.normalize import Normalize
from jpcurate.steps.pii import MaskPII
from jpcurate.steps.repetition import DupLines, DupNgram
from jpcurate.steps.urlrules import UrlFilter
from jpcurate.steps.words import NounRatio

NG_LIMIT = Limit(max_hits=2, max_ratio=0.005)  # 3+ hits and > 0.5 % of the characters: a topic, not a mention
LIST_LIMIT = Limit(max_hits=10, max_ratio=0.02)  # ads / bulletin-board phrases: a page made of them


def ja_web(*, mecab: bool = False) -> Pipeline:
    use_mecab = mecab and has_fugashi()
    steps = [
        Length(hi=1_000_000, name="too_long"),
        Normalize(),
        StripBoilerplate(),
        Length(lo=100, name="min_chars"),
        LanguageFilter(("ja",), min_score=0.5),
        Mojibake(hi=0.01),
        ClassFraction(("hiragana", "katakana"), ("hiragana", "katakana", "kanji"), lo=0.12, name="kana_frac"),
        ClassFraction(("katakana",), ("hiragana", "katakana", "kanji"), hi=0.8, name="katakana_frac",
                      exempt_verse=True),
        ClassFraction(("symbol", "ascii_punct"), hi=0.15, name="symbols"),
        ClassFraction(("digit",), hi=0.2, name="digits"),
        ShortLines(hi=0.6, max_len=10, exempt_verse=True),
        CodeLines(hi=0.3),
        LineEndPunct(lo=0.25, chars_weighted=True, long_line=200, exempt_verse=True),
        MaxSentenceLength(hi=4000, by_line=True),
        DupLines(hi=0.3, min_len=2, verse_hi=0.6),
        DupNgram(10, hi=0.35, mode="repeat", name="dup_10gram"),
        BareTokens(hi=0.5, exempt_verse=True),
        BrokenEndings(hi=0.3),
        NGWords({"adult": NG_LIMIT, "discrimination": NG_LIMIT, "violence": NG_LIMIT, "ads": LIST_LIMIT,
                 "bbs": LIST_LIMIT}, boundary="mecab" if use_mecab else "script",
               context={"discrimination": Context()}),
        UrlFilter(),
    ]
    if use_mecab:
        steps.append(NounRatio(hi=0.8, sample_chars=150))
    steps += [NaturalnessFilter(max_percentile=99, factor=2.6, max_chars=1500, kana_fold=True, verse_factor=2.0),
              MaskPII()]
    return Pipeline(steps, name="ja-web")
