"""Character-class (script) ratios: the cheapest signal that tells Japanese from Chinese, Korean and English."""

from __future__ import annotations

SCRIPTS = ("hiragana", "katakana", "kanji", "latin", "hangul", "digit", "other")


def _script_of(cp: int) -> str:
    if 0x3041 <= cp <= 0x309F:
        return "hiragana"
    if 0x30A0 <= cp <= 0x30FF or 0x31F0 <= cp <= 0x31FF or 0xFF66 <= cp <= 0xFF9F:
        return "katakana"
    if 0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0xF900 <= cp <= 0xFAFF or 0x20000 <= cp <= 0x2FA1F:
        return "kanji"
    if (0x41 <= cp <= 0x5A) or (0x61 <= cp <= 0x7A) or (0xFF21 <= cp <= 0xFF3A) or (0xFF41 <= cp <= 0xFF5A):
        return "latin"
    if 0xAC00 <= cp <= 0xD7AF or 0x1100 <= cp <= 0x11FF or 0x3130 <= cp <= 0x318F:
        return "hangul"
    if 0x30 <= cp <= 0x39 or 0xFF10 <= cp <= 0xFF19:
        return "digit"
    return "other"


def script_ratios(text: str) -> dict[str, float]:
    """Share of each script among the non-space characters of `text` (all zeros for blank text).

    >>> script_ratios("ひらがなとカナ")["hiragana"]
    0.7142857142857143
    """
    counts = dict.fromkeys(SCRIPTS, 0)
    total = 0
    for ch in text:
        if ch.isspace():
            continue
        counts[_script_of(ord(ch))] += 1
        total += 1
    if total == 0:
        return dict.fromkeys(SCRIPTS, 0.0)
    return {name: n / total for name, n in counts.items()}
