"""Fast NFKC for text without combining sequences: only the characters NFKC changes are rewritten.

CPython's `unicodedata.normalize("NFKC")` runs at about 30 MB/s on Japanese web text, yet only a few per cent of
its characters change (full-width ASCII, ideographic space, half-width katakana, ①, ㈱ ...). When a text holds no
character that takes part in canonical composition across characters (combining marks, the kana voicing marks,
Hangul jamo — and anything above U+2FFFF), NFKC is a per-character mapping. A numpy lookup over the text's code
points finds the characters that change (or that force the slow path), and only those are replaced. The table is
built from the running Python's `unicodedata` (about 0.1-0.4 s) and kept in a cache file named by the Unicode version
(`$JPCURATE_CACHE_DIR`, default `~/.cache/jpcurate`), so that a process start loads it in a millisecond; an
unwritable or damaged cache only means the table is built again. `tests/curate/test_normalize.py`
checks equality with `unicodedata.normalize` on random text.
"""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import numpy as np
import regex

_LIMIT = 0x30000
KEEP, CHANGE1, CHANGE, UNSAFE = 0, 1, 2, 3  # unchanged, -> one character, -> several, needs unicodedata
_LUT: np.ndarray | None = None
_MAP1 = np.arange(_LIMIT + 1, dtype=np.uint32)  # each code point, or the replacement of a CHANGE1 character
_TABLE: dict[int, str] = {}


def _is_mark(ch: str) -> bool:
    return bool(unicodedata.combining(ch)) or unicodedata.category(ch).startswith("M")


def cache_path() -> Path:
    base = os.environ.get("JPCURATE_CACHE_DIR") or Path.home() / ".cache" / "jpcurate"
    return Path(base) / f"nfkc-{unicodedata.unidata_version}.npz"


def _load_or_build() -> np.ndarray:
    """The table from the cache file when it is there and whole, else built (and saved for the next process)."""
    global _MAP1
    path = cache_path()
    try:
        with np.load(path) as z:
            lut, map1, keys, offsets, chars = z["lut"], z["map1"], z["keys"], z["offsets"], str(z["chars"])
        if lut.shape != (_LIMIT + 1,) or map1.shape != (_LIMIT + 1,) or len(offsets) != len(keys) + 1:
            raise ValueError("cache table of another shape")
        _TABLE.update((int(k), chars[offsets[i]:offsets[i + 1]]) for i, k in enumerate(keys.tolist()))
        _MAP1 = map1
        return lut
    except (OSError, ValueError, KeyError, EOFError):
        pass
    lut = _build()
    keys = np.array(sorted(_TABLE), dtype=np.uint32)
    offsets = np.cumsum([0] + [len(_TABLE[k]) for k in keys.tolist()])
    chars = "".join(_TABLE[k] for k in keys.tolist())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.savez(f, lut=lut, map1=_MAP1, keys=keys, offsets=offsets, chars=np.array(chars))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home: build it in every process
    return lut


def _build() -> np.ndarray:
    lut = np.zeros(_LIMIT + 1, dtype=np.uint8)
    lut[_LIMIT] = UNSAFE  # everything above U+2FFFF takes the slow path
    for lo, hi in ((0x1100, 0x11FF), (0x3130, 0x318F), (0xA960, 0xA97F), (0xD7B0, 0xD7FF), (0xFFA0, 0xFFDC),
                   (0xFF9E, 0xFF9F)):
        lut[lo : hi + 1] = UNSAFE  # Hangul jamo and half-width voicing marks compose with their neighbours
    every = "".join(chr(cp) for cp in range(_LIMIT) if not 0xD800 <= cp <= 0xDFFF)
    # combining marks (one regex scan instead of 200 K unicodedata calls)
    for m in regex.finditer(r"[\p{M}]", every):
        lut[ord(m.group())] = UNSAFE
    for ch in every:
        if not unicodedata.is_normalized("NFKC", ch) and not lut[ord(ch)]:
            norm = unicodedata.normalize("NFKC", ch)
            if not norm or _is_mark(norm[0]):
                lut[ord(ch)] = UNSAFE
            else:
                lut[ord(ch)] = CHANGE1 if len(norm) == 1 else CHANGE
                _TABLE[ord(ch)] = norm
                if len(norm) == 1:
                    _MAP1[ord(ch)] = ord(norm)
    for cp in range(0x80):  # ASCII never changes
        lut[cp] = KEEP
    return lut


def nfkc(text: str) -> str:
    """`unicodedata.normalize("NFKC", text)`, faster on text without combining sequences."""
    global _LUT
    if text.isascii():
        return text
    if _LUT is None:
        _LUT = _load_or_build()
    cps = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    flags = _LUT[np.minimum(cps, _LIMIT)]
    worst = int(flags.max())
    if worst == KEEP:
        return text
    if worst == UNSAFE:
        return unicodedata.normalize("NFKC", text)
    mapped = _MAP1[cps].tobytes().decode("utf-32-le", "surrogatepass")  # all below _LIMIT (else UNSAFE)
    if worst == CHANGE1:  # every change is one character for one: that is all
        return mapped
    # one-for-one changes done in the array; only the expansions (… -> ..., ㈱ -> (株)) are spliced in Python
    parts, prev, table = [], 0, _TABLE
    for i in np.flatnonzero(flags == CHANGE).tolist():
        parts.append(mapped[prev:i])
        parts.append(table[ord(text[i])])
        prev = i + 1
    parts.append(mapped[prev:])
    return "".join(parts)


def nfkc_batch(texts: list[str]) -> list[str]:
    """`nfkc` of every text, with one numpy pass over the whole batch for many short texts (lines, sentences);
    texts of page length go one by one (a batch pass would copy them twice more)."""
    global _LUT
    joined = "".join(texts)
    if len(joined) > 256 * len(texts):
        return [nfkc(t) for t in texts]
    if joined.isascii():
        return list(texts)
    if _LUT is None:
        _LUT = _load_or_build()
    cps = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    low = np.minimum(cps, _LIMIT)
    flags = _LUT[low]
    lens = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    starts = np.cumsum(lens) - lens
    worst = np.zeros(len(texts), dtype=np.uint8)
    nonempty = lens > 0
    if nonempty.any():
        worst[nonempty] = np.maximum.reduceat(flags, starts[nonempty])
    mapped = np.where(cps < _LIMIT, _MAP1[low], cps).astype(np.uint32)
    out = mapped.tobytes().decode("utf-32-le", "surrogatepass")  # right for every text whose worst is <= CHANGE1
    return [out[s : s + n] if w <= CHANGE1 else nfkc(t)
            for t, s, n, w in zip(texts, starts.tolist(), lens.tolist(), worst.tolist())]
