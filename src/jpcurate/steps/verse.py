"""Verse detection: tanka, haiku, modern poems and song lyrics have short lines without sentence-final punctuation,
the very shape `short_lines` and `line_end_punct` use to find menus and lists. `is_verse(doc)` tells the two
apart from cheap, cached signals; the line-shape rules built with `exempt_verse=True` (and `DupLines(verse_hi=)`,
`ClassFraction(exempt_verse=True)`, `NaturalnessFilter(verse_factor=)`) ask it only for a document they would
otherwise reject, so it costs nothing on the rest, and store `verse = 1` on a document they let through.

A document is verse when all of these hold (thresholds from the quality set's verse next to its menus, tag clouds,
link lists, listings and specs; see docs/jpcurate.md "What ja-web keeps"):

- at least `MIN_LINES` non-blank lines, median line length 2..`MAX_MEDIAN` characters;
- at least `MIN_OPEN` of the lines end without 。．！？!? (verse lines run on; repeated boilerplate sentences do not);
- Japanese letters (kana, kanji, Japanese punctuation) are >= `MIN_JA` of the non-space characters, digits at
  most `MAX_DIGITS`, Latin letters at most `MAX_LATIN`, and no line holds a URL or menu/list marker (| > » # @ :);
- at least `MIN_PARTICLE` of the lines hold a grammatical particle or ending in kana (の に を は が で と も へ や
  か よ ね ぞ て た し り in hiragana, or in katakana after a kanji, before 、 or at the line end, as in
  雨ニモマケズ): verse is
  sentences broken into lines, menus and tag clouds are bare nouns.

Everything reads the cached lines and character-class counts: one pass over the lines, no regex per character.
"""

from __future__ import annotations

import regex

from jpcurate.document import Document
from jpcurate.steps.base import Rule
from jpcurate.text import features
from jpcurate.text.charclass import C

MIN_LINES = 4
MAX_MEDIAN = 40
MIN_OPEN = 0.6
MIN_JA = 0.85
MAX_DIGITS = 0.01
MAX_LATIN = 0.1
MIN_PARTICLE = 0.5
SENTENCE_ENDS = ("。", "．", "！", "？", "!", "?")
MARKERS = frozenset("|>»#@:＞｜＃＠：")  # and "://"; a bare / is Aozora's くの字点 (/\\)
PARTICLES = frozenset("のにをはがでともへやかよねぞてたしり")
# katakana particles and endings count after a kanji, before 、 or at the line end (雨ニモマケズ, コトヲ, モノニ;
# ヲ ヰ ヱ anywhere: no loanword has them), not inside a katakana word: a menu of カート / ポイント is no verse
KATA_PARTICLE = regex.compile(r"[ヲヰヱ]|\p{Han}[ノニハガデトモヘヤカヨネゾテタシリ]|[ノニハガデモ](?:、|$)")


def verse_score(doc: Document) -> tuple[bool, str]:
    """(is verse, the first condition that failed or "verse")."""
    lines = features.lines(doc)
    if len(lines) < MIN_LINES:
        return False, "lines"
    lens = sorted(map(len, lines))
    if not 2 <= lens[len(lens) // 2] <= MAX_MEDIAN:
        return False, "median"
    cl = features.count_list(doc)
    nonspace = features.nonspace(doc) or 1
    ja = cl[C["hiragana"]] + cl[C["katakana"]] + cl[C["kanji"]] + cl[C["ja_punct"]]
    if ja < MIN_JA * nonspace or cl[C["digit"]] > MAX_DIGITS * nonspace or cl[C["latin"]] > MAX_LATIN * nonspace:
        return False, "script"
    open_end = particle = 0
    for ln in lines:
        open_end += not ln.endswith(SENTENCE_ENDS)
        particle += not PARTICLES.isdisjoint(ln) or KATA_PARTICLE.search(ln) is not None
        if not MARKERS.isdisjoint(ln) or "://" in ln:
            return False, "markers"
    if open_end < MIN_OPEN * len(lines):
        return False, "closed"
    if particle < MIN_PARTICLE * len(lines):
        return False, "particles"
    return True, "verse"


def is_verse(doc: Document) -> bool:
    v = doc.cache.get("verse")
    if v is None:
        v = doc.cache["verse"] = verse_score(doc)[0]
    return v


class VerseExempt(Rule):
    """A line-shape rule that, built with `exempt_verse=True`, keeps what `rules.verse.is_verse` calls verse (its
    value is still measured and stored)."""

    exempt_verse: bool = False

    def apply(self, doc: Document):
        verdict = super().apply(doc)
        if verdict is not None and self.exempt_verse and is_verse(doc):
            doc.values["verse"] = 1  # what the report shows beside the value that would have rejected it
            return None
        return verdict
