"""A rule for text that no Japanese writer produces: the endings a learner or a word-by-word translator writes. It
looks at the character before each です/ます only, after two C-level `str.count` calls show there are enough of them.

- `BrokenEndings` ("broken_endings"): share of です/ます that follow a dictionary-form verb or a case particle
  (するです, いるます, をです, とます: machine-translated or spun text); のです, ないです, そうです, ことです,
  あります, 死にます, 澄ます are correct and do not count.
"""

from __future__ import annotations

import re

from jpcurate.document import Document
from jpcurate.steps.base import Rule, ratio

DESU_MASU = re.compile(r"(?:です|ます)")
# the character before です / before ます that makes it wrong: a dictionary-form ending (する, いる, ある) and the
# case particles (のます too: only a hiragana 飲ます is correct). Left out because correct words end in them:
# う (そうです, ようです), と before です (ことです), つ (一つです), く (近くです), ぶ (大丈夫です), ぐ (すぐです),
# の before です (のです), い (ないです), and before ます に (死にます) and す (澄ます, 済ます); ますます and
# ますです are skipped.
BROKEN_BEFORE_DESU = frozenset("るすをがには")
BROKEN_BEFORE_MASU = frozenset("るをがはとの")


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
            if text[s] == "で":
                bad += before in BROKEN_BEFORE_DESU and text[s - 2 : s] != "ます"
            else:
                bad += before in BROKEN_BEFORE_MASU and text[s : s + 4] != "ますます"
        return ratio(bad, total)
