"""Character classes and script ratios, vectorised: the cheapest signal that tells Japanese from Chinese, Korean
and English, and the counts most quality rules start from.

`classify(text)` encodes the text once to UTF-32 and looks every code point up in a 64 K-entry table
(numpy gather), so there is no per-character Python loop; `class_counts(text)` is a `bincount` of that.
Classes (`CLASS_NAMES`): space, hiragana, katakana (incl. ー and half-width kana), kanji (incl. 々〆〇 and the
supplementary ideograph planes), latin (ASCII, full-width and Latin-1/Extended letters), hangul, digit,
ja_punct (、。「」『』・ and other CJK punctuation), ascii_punct, symbol (arrows, shapes, box drawing, dingbats,
emoji), control (C0/C1 controls except tab/newline), replacement (U+FFFD), other.
"""

from __future__ import annotations

import numpy as np

CLASS_NAMES = ("space", "hiragana", "katakana", "kanji", "latin", "hangul", "digit", "ja_punct", "ascii_punct",
               "symbol", "control", "replacement", "other")
C = {name: i for i, name in enumerate(CLASS_NAMES)}
N_CLASSES = len(CLASS_NAMES)
SCRIPTS = ("hiragana", "katakana", "kanji", "latin", "hangul", "digit", "other")


def _build_table() -> np.ndarray:
    t = np.full(0x10000, C["other"], dtype=np.uint8)

    def put(lo: int, hi: int, cls: str) -> None:
        t[lo : hi + 1] = C[cls]

    put(0x00, 0x1F, "control")
    put(0x7F, 0x9F, "control")
    for ch in " \t\n\r\x0b\x0c\u3000\u00a0\u2028\u2029\u200b\ufeff":
        t[ord(ch)] = C["space"]
    put(0x2000, 0x200A, "space")
    for lo, hi in ((0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)):
        put(lo, hi, "ascii_punct")
    put(0x30, 0x39, "digit")
    put(0xFF10, 0xFF19, "digit")
    for lo, hi in ((0x41, 0x5A), (0x61, 0x7A), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A), (0xC0, 0x24F)):
        put(lo, hi, "latin")
    t[0xD7] = t[0xF7] = C["ascii_punct"]  # × ÷ inside the Latin-1 letter range
    put(0x3041, 0x309F, "hiragana")
    put(0x30A0, 0x30FF, "katakana")
    put(0x31F0, 0x31FF, "katakana")
    put(0xFF66, 0xFF9F, "katakana")
    for lo, hi in ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0xF900, 0xFAFF)):
        put(lo, hi, "kanji")
    for ch in "々〆〇ヶ":
        t[ord(ch)] = C["kanji"]
    for lo, hi in ((0xAC00, 0xD7AF), (0x1100, 0x11FF), (0x3130, 0x318F)):
        put(lo, hi, "hangul")
    put(0x3001, 0x3004, "ja_punct")
    put(0x3008, 0x303F, "ja_punct")
    for ch in "・゠":
        t[ord(ch)] = C["ja_punct"]
    put(0xFF01, 0xFF0F, "ja_punct")
    for lo, hi in ((0xFF1A, 0xFF20), (0xFF3B, 0xFF40), (0xFF5B, 0xFF65)):
        put(lo, hi, "ja_punct")
    put(0x2010, 0x2027, "ja_punct")  # dashes, quotes, …, ‥ (shared by Japanese and Western text)
    put(0x2030, 0x205E, "ja_punct")
    for lo, hi in ((0x2190, 0x2BFF), (0x25A0, 0x25FF), (0x2600, 0x27BF), (0x3200, 0x33FF), (0xFE00, 0xFE0F)):
        put(lo, hi, "symbol")
    t[0xFFFD] = C["replacement"]
    t[0xD800:0xE000] = C["replacement"]  # lone surrogates (only reach us through broken JSON escapes)
    return t


TABLE = _build_table()


def codepoints(text: str) -> np.ndarray:
    """(N,) uint32 code points of `text` (lone surrogates pass through as their code points)."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def classify(cps: np.ndarray) -> np.ndarray:
    """(N,) uint8 class ids for (N,) code points."""
    cls = TABLE[np.minimum(cps, 0xFFFF)]
    astral = cps > 0xFFFF
    if astral.any():
        a = cps[astral]
        cls[astral] = np.where((a >= 0x20000) & (a <= 0x3134F), C["kanji"],
                               np.where((a >= 0x1F000) & (a <= 0x1FAFF), C["symbol"], C["other"]))
    return cls


def class_counts(text: str) -> np.ndarray:
    """(N_CLASSES,) int64 counts of each class in `text`."""
    if not text:
        return np.zeros(N_CLASSES, dtype=np.int64)
    return np.bincount(classify(codepoints(text)), minlength=N_CLASSES)


def script_ratios(text: str) -> dict[str, float]:
    """Share of each script among the non-space characters of `text` (all zeros for blank text). Punctuation,
    symbols and everything else count as "other".

    >>> script_ratios("ひらがなとカナ")["hiragana"]
    0.7142857142857143
    """
    return ratios_from_counts(class_counts(text))


def ratios_from_counts(counts: np.ndarray) -> dict[str, float]:
    total = int(counts.sum() - counts[C["space"]])
    if total == 0:
        return dict.fromkeys(SCRIPTS, 0.0)
    named = {s: int(counts[C[s]]) for s in SCRIPTS[:-1]}
    named["other"] = total - sum(named.values())
    return {s: n / total for s, n in named.items()}
