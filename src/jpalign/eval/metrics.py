"""Scores of llm-jp-eval, copied from its definitions (llm-jp-eval v1.x `utils.py`, vendored unchanged by W&B's
Nejumi leaderboard `scripts/evaluator/evaluate_utils/metrics.py`), plus corpus-level correlations for JSTS.

`char_f1` is fuzzywuzzy's `token_sort_ratio / 100` as llm-jp-eval computes it (fuzzywuzzy 0.18 with the
python-Levenshtein backend it pins). We compute it with rapidfuzz (MIT) instead of the GPL pair:

* `rapidfuzz.fuzz.ratio` is the same InDel similarity as `Levenshtein.ratio` (2*M/T), so only the preprocessing
  and the rounding have to be reproduced;
* fuzzywuzzy's `full_process(s, force_ascii=True)` drops U+0080..U+00FF, turns every non-word character (Python
  `\\W`, e.g. 、。「」 and ASCII punctuation) into a space, lower-cases and strips. `rapidfuzz.utils.default_process`
  agrees on kana, kanji, ASCII and CJK punctuation but not on "_" (kept by fuzzywuzzy) or Latin-1 letters like
  "é" (dropped by fuzzywuzzy), so `fuzzywuzzy_process` below reproduces full_process itself;
* fuzzywuzzy returns `int(round(100 * ratio))` (whole percents, Python's round half to even); so do we.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence

from rapidfuzz import fuzz

_LATIN1 = dict.fromkeys(range(128, 256))
_NON_WORD = re.compile(r"(?ui)\W")


def normalize(text: str) -> str:
    """llm-jp-eval's answer normalisation: Unicode NFKC (both prediction and gold)."""
    return unicodedata.normalize("NFKC", text)


def fuzzywuzzy_process(text: str) -> str:
    """fuzzywuzzy.utils.full_process(text, force_ascii=True): drop U+0080..U+00FF, non-word chars -> " ",
    lower-case, strip."""
    return _NON_WORD.sub(" ", text.translate(_LATIN1)).lower().strip()


def exact_match(pred: str, gold: str) -> float:
    """llm-jp-eval `exact_match`: 1.0 when the strings are equal, else 0.0 (callers normalise first)."""
    return float(pred == gold)


def char_f1(pred: str, gold: str) -> float:
    """llm-jp-eval `char_f1` = fuzzywuzzy `fuzz.token_sort_ratio(pred, gold) / 100`, in [0, 1].

    Not a character F1: both strings are processed (see `fuzzywuzzy_process`), split on whitespace, the tokens
    sorted and re-joined, and the InDel similarity 2*M/T rounded to a whole percent. Equal processed strings
    (also both empty) give 1.0; one empty side gives 0.0. "東京都、大阪府" vs "大阪府、東京都" -> 1.0.
    """
    a = " ".join(sorted(fuzzywuzzy_process(pred).split()))
    b = " ".join(sorted(fuzzywuzzy_process(gold).split()))
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    return int(round(fuzz.ratio(a, b))) / 100


def set_f1(pred: str, gold: str) -> float:
    """llm-jp-eval `set_f1`: lines of pred and gold (split on "\\n", stripped), pred lines deduplicated; precision
    = |pred ∩ gold| / |pred|, recall = the same count / |gold| (gold lines are not deduplicated), F1 their harmonic
    mean, 0 when both are 0."""
    golds = [x.strip() for x in gold.split("\n")]
    preds = list({x.strip() for x in pred.split("\n")})
    hits = sum(1 for p in preds if p in golds)
    precision = hits / len(preds)
    recall = hits / len(golds)
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation over the whole set (NaN when fewer than 2 pairs or a constant side)."""
    if len(x) != len(y):
        raise ValueError(f"pearson needs two sequences of one length, got {len(x)} and {len(y)}")
    n = len(x)
    if n < 2:
        return math.nan
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return math.nan if sxx == 0 or syy == 0 else sxy / math.sqrt(sxx * syy)


def _ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties given their average rank (as scipy.stats.rankdata)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (Pearson of average-tie ranks, as scipy.stats.spearmanr)."""
    if len(x) != len(y):
        raise ValueError(f"spearman needs two sequences of one length, got {len(x)} and {len(y)}")
    return pearson(_ranks(x), _ranks(y))


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def parse_float(text: str) -> float | None:
    """A JSTS answer read as a number the way llm-jp-eval's `parse_float` does (keep digits and dots, then
    float()); None where it fails, which the caller counts as a format failure and scores as llm-jp-eval's -2.0."""
    cleaned = re.sub(r"[^0-9.]", "", text)
    try:
        v = float(cleaned)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


JSTS_UNPARSEABLE = -2.0
