"""Line- and sentence-level rules: sentence length, ellipses, short lines, line-final punctuation, bullets."""

from __future__ import annotations

import re

import regex

from jpcurate.document import Document
from jpcurate.steps.base import Rule, ratio
from jpcurate.steps.verse import VerseExempt
from jpcurate.text import features
from jpcurate.text.charclass import C

ELLIPSIS_END = regex.compile(r"(?:…|‥|・・|\.\.\.)$")
LINE_END_PUNCT = ("。", "！", "？", "!", "?", ".", "」", "』", "）", ")", "\"", "”", "…", "♪", "〜", "ー", "w")
LINE_END_PUNCT_STRICT = ("。", "！", "？", "!", "?", ".", "\"", "」", "』")
BULLET_START = ("•", "・", "-", "*", "●", "○", "◆", "■", "□", "▶", "►", "※", "‣", "➢")


class SentenceLength(Rule):
    """Mean sentence length in characters; sentences end at 。．！？!? (and at line breaks with `by_line`)."""

    name = "sentence_len"

    def __init__(self, lo=None, hi=None, *, by_line: bool = False, name: str | None = None, **kw) -> None:
        super().__init__(lo, hi, name=name, **kw)
        self.by_line = by_line

    def measure(self, doc: Document) -> float:
        sents = features.sentences(doc, by_line=self.by_line)
        return ratio(sum(len(s) for s in sents), len(sents))


class MaxSentenceLength(SentenceLength):
    """Longest sentence in characters (Swallow: <= 200)."""

    name = "max_sentence"

    def measure(self, doc: Document) -> float:
        key = "sents_l" if self.by_line else "sents"
        if key in doc.cache:
            return max(map(len, doc.cache[key]), default=0)
        body = features.SENTENCE_OR_LINE_BODY if self.by_line else features.SENTENCE_BODY  # no list kept
        return max(map(len, map(str.strip, body.findall(doc.text))), default=0)


class EllipsisSentences(Rule):
    """Share of sentences that end in an ellipsis (…, ・・, ...) rather than a terminator (Swallow: <= 0.2)."""

    name = "ellipsis"

    def measure(self, doc: Document) -> float:
        parts = features.SENTENCE_END.split(doc.text)
        sents = [p.strip() for p in parts if p.strip()]
        return ratio(sum(1 for s in sents if ELLIPSIS_END.search(s)), len(sents))


class EllipsisLines(Rule):
    """Share of lines ending in an ellipsis (Gopher <= 0.3, HojiChar <= 0.7)."""

    name = "ellipsis_lines"

    def measure(self, doc: Document) -> float:
        lines = features.lines(doc)
        return ratio(sum(1 for ln in lines if ELLIPSIS_END.search(ln)), len(lines))


class ShortLines(VerseExempt):
    """Share of lines with at most `max_len` characters (menus, tables; HojiChar: <= 10 chars, <= 0.5)."""

    name = "short_lines"

    def __init__(self, lo=None, hi=None, *, max_len: int = 10, exempt_verse: bool = False, name: str | None = None,
                 **kw) -> None:
        super().__init__(lo, hi, name=name, **kw)
        self.max_len, self.exempt_verse = max_len, exempt_verse

    def measure(self, doc: Document) -> float:
        lines = features.lines(doc)
        return ratio(sum(1 for ln in lines if len(ln) <= self.max_len), len(lines))


class LineEndPunct(VerseExempt):
    """Share of lines that end like a sentence (FineWeb `line_punct_ratio`); `chars_weighted` weighs lines by
    length, so that one title line does not outweigh a paragraph. With `long_line`, a line of at least that many
    characters counts as a sentence whatever its last character: it is a paragraph, not a menu entry or a list
    item (classical prose runs for pages without 。, 樋口一葉 ends sentences in 〜ける / 〜めり, and an essay's
    one paragraph may close with its date, ――(一九二八・四)――)."""

    name = "line_end_punct"

    def __init__(self, lo=None, hi=None, *, ends: tuple[str, ...] = LINE_END_PUNCT, chars_weighted: bool = False,
                 long_line: int | None = None, exempt_verse: bool = False, name: str | None = None, **kw) -> None:
        super().__init__(lo, hi, name=name, **kw)
        self.ends, self.chars_weighted, self.exempt_verse = tuple(ends), chars_weighted, exempt_verse
        self.long_line = long_line

    def measure(self, doc: Document) -> float:
        lines = features.lines(doc)
        long = self.long_line or 1 << 62
        if self.chars_weighted:
            return ratio(sum(len(ln) for ln in lines if len(ln) >= long or ln.endswith(self.ends)),
                         sum(len(ln) for ln in lines))
        return ratio(sum(1 for ln in lines if len(ln) >= long or ln.endswith(self.ends)), len(lines))


class BulletLines(Rule):
    """Share of lines starting with a bullet (Gopher <= 0.9)."""

    name = "bullet_lines"

    def measure(self, doc: Document) -> float:
        lines = features.lines(doc)
        return ratio(sum(1 for ln in lines if ln.startswith(BULLET_START)), len(lines))


class KutenDensity(Rule):
    """Characters per 。 (HojiChar/llm-jp `DiscardRareKuten`: reject when len/#。 > 100 / 250)."""

    name = "kuten"

    def measure(self, doc: Document) -> float:
        n = doc.text.count("。")
        return len(doc.text) / n if n else float(len(doc.text))


CODE_LINE = re.compile(
    r"[;{}]\s*$|^\s*(?:function\b|var |let |const |def |class |import |from \S+ import|return\b|if\s*\(|for\s*\(|"
    r"#include|public |private |<\?php|\$\w+\s*=)|=>|</?[a-z][a-z0-9]*[ >]|^\s*[\w.$]+\s*=\s*[\w\"'\[{(]"
)


class CodeLines(Rule):
    """Share of lines that look like source code or markup: mostly ASCII and ending in ; { }, starting with a
    keyword, an assignment, an arrow function or a tag (Japanese prose also ends a line with ; at times)."""

    name = "code"

    def measure(self, doc: Document) -> float:
        lines = features.lines(doc)
        # UTF-8 length <= 2 x characters <=> at least half of the line is ASCII (Japanese takes 3 bytes); this
        # cheap test goes first, the regular expression only sees mostly-ASCII lines
        return ratio(sum(1 for ln in lines if len(ln.encode("utf-8", "surrogatepass")) <= 2 * len(ln)
                         and CODE_LINE.search(ln)), len(lines))


TOKEN_SPLIT = re.compile(r"[\s、,，#＃]+")
HIRAGANA = re.compile(r"[ぁ-ゖ]")


class BareTokens(VerseExempt):
    """Share of the characters that sit in short bare tokens: pieces between spaces, 、 , # and line breaks of at
    most `max_len` characters without any hiragana (タグ: 旅行 グルメ 温泉(12) ...). Prose, even a list of names
    inside a paragraph, joins its nouns with particles; a tag cloud or keyword list does not. Documents with fewer
    than `min_tokens` pieces, or with fewer separators than one per `2 * max_len` characters (prose: 、 every 20-30
    characters; the cached count of whitespace plus three `str.count` calls, so most documents are never split)
    measure 0 (after NFKC ， and ＃ are , and #);
    `exempt_verse=True` keeps verse (雨ニモマケズ is kanji and katakana)."""

    name = "bare_tokens"

    def __init__(self, lo=None, hi=None, *, max_len: int = 8, min_tokens: int = 20, exempt_verse: bool = False,
                 name: str | None = None, **kw) -> None:
        super().__init__(lo, hi, name=name, **kw)
        self.max_len, self.min_tokens, self.exempt_verse = max_len, min_tokens, exempt_verse

    def measure(self, doc: Document) -> float:
        text, cl = doc.text, features.count_list(doc)
        # whitespace and 、 exactly, , and # bounded by the ASCII punctuation count: exact enough to rule prose out
        seps = cl[C["space"]] + text.count("、") + cl[C["ascii_punct"]]
        if seps + 1 < self.min_tokens or 2 * self.max_len * seps < len(text):
            return 0.0
        seps += text.count(",") + text.count("#") - cl[C["ascii_punct"]]
        if seps + 1 < self.min_tokens or 2 * self.max_len * seps < len(text):
            return 0.0
        tokens = [t for t in TOKEN_SPLIT.split(text) if t]
        if len(tokens) < self.min_tokens:
            return 0.0
        bare = sum(len(t) for t in tokens if len(t) <= self.max_len and not HIRAGANA.search(t))
        return ratio(bare, sum(map(len, tokens)))
