"""Rules for text that no Japanese writer produces: endings a learner or a word-by-word translator writes, and kana
sequences that only a shuffle of word pieces creates. Both look at a few characters around rare anchors, so they
cost one or two C-level scans per document.

- `BrokenEndings` ("broken_endings"): share of です/ます that follow a dictionary-form verb or a case particle
  (するです, いるます, をです, とます: machine-translated or spun text); のです, ないです, そうです, ことです,
  あります are correct and do not count.
- `KanaOrder` ("kana_order"): impossible sequences per 1,000 characters: a small ゃ ゅ ょ (ャ ュ ョ) after a kanji
  or after a kana of the other script; it only follows an i-row kana of its own script.
"""

from __future__ import annotations

import re

from jpcurate.document import Document
from jpcurate.rules.base import Rule, ratio

DESU_MASU = re.compile(r"(?:です|ます)")
# the character before です/ます that makes it wrong: する/いる/ある/す (dictionary form) and the case particles
# を が に は (and と before ます: とます). Left out because correct words end in them: う (そうです, ようです),
# と (ことです), つ (一つです),
# く (近くです), ぶ (大丈夫です), ぐ (すぐです), の (のです), い (ないです); ますます and ますです are skipped.
BROKEN_BEFORE = frozenset("るすをがには")
# small ya/yu/yo only follow an i-row kana of their own script; small a/i/u/e/o and ー are left out (dialect and
# speech write 土ぁ, 僕ァ, なァ)
IMPOSSIBLE = re.compile(r"[\u4e00-\u9fff][ゃゅょャュョ]|[ぁ-ゖ][ャュョ]|[ァ-ヺ][ゃゅょ]")


class BrokenEndings(Rule):
    """Share of です/ます (at least `min_count` of them) preceded by a dictionary-form verb ending or a particle."""

    name = "broken_endings"

    def __init__(self, lo=None, hi=None, *, min_count: int = 4, name: str | None = None, **kw) -> None:
        super().__init__(lo, hi, name=name, **kw)
        self.min_count = min_count

    def prepare(self, docs) -> None:  # reads the text only
        pass

    def measure(self, doc: Document) -> float:
        text = doc.text
        if text.count("です") + text.count("ます") < self.min_count:  # str.count: no regex on most documents
            return 0.0
        total = bad = 0
        for m in DESU_MASU.finditer(text):
            total += 1
            s = m.start()
            before = text[s - 1] if s else ""
            if (before in BROKEN_BEFORE and text[s - 2 : s] != "ます" and text[s : s + 4] != "ますます") \
                    or (before == "と" and text[s] == "ま"):
                bad += 1
        return ratio(bad, total)


class KanaOrder(Rule):
    """Impossible kana sequences per 1,000 characters."""

    name = "kana_order"

    def prepare(self, docs) -> None:
        pass

    def measure(self, doc: Document) -> float:
        text = doc.text
        return ratio(1000 * len(IMPOSSIBLE.findall(text)), len(text))
