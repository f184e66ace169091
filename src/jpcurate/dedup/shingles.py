"""Shingle hashes of many documents at once: character n-grams (Japanese) or word n-grams (English).

A shingle hash is a 32-bit value computed in numpy over the whole batch with no Python loop per shingle:

- character n-grams: a polynomial over the code points, ``h = sum(cp[i + j] * M**(n - 1 - j)) mod 2**64``, computed
  as a rolling update over n shifted views of one code-point array, then the MurmurHash3 64-bit finaliser and the
  high 32 bits;
- word n-grams: each ``\\w+`` token hashed the same way (through prefix sums of the polynomial), then the same
  polynomial over n consecutive token hashes with a second multiplier.

`shingle_hash_reference` computes one shingle's value in pure Python: the specification and the test oracle (and the
`hashfunc` to give datasketch for bit-exact parity). Documents with fewer than n units have no shingles.
"""

from __future__ import annotations

import numpy as np
import regex

CHAR_MULT = 0x9E3779B97F4A7C15  # odd 64-bit constants (golden ratio, a SplitMix64 increment)
WORD_MULT = 0xBF58476D1CE4E5B9
_MASK64 = (1 << 64) - 1
_WORD = regex.compile(r"\w+")


def fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3 64-bit finaliser (a bijection that avalanches every input bit), on a uint64 array."""
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


def fmix64_int(h: int) -> int:
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & _MASK64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & _MASK64
    return h ^ (h >> 33)


def _poly_int(values, mult: int) -> int:
    h = 0
    for v in values:
        h = (h * mult + v) & _MASK64
    return h


def shingle_hash_reference(shingle: str | tuple[str, ...]) -> int:
    """The 32-bit hash of one shingle: a string (character n-gram) or a tuple of words (word n-gram)."""
    if isinstance(shingle, str):
        return fmix64_int(_poly_int(map(ord, shingle), CHAR_MULT)) >> 32
    words = [fmix64_int(_poly_int(map(ord, w), CHAR_MULT)) for w in shingle]
    return fmix64_int(_poly_int(words, WORD_MULT)) >> 32


def shingles_reference(text: str, ngram: int, unit: str = "char") -> set:
    """The shingle set of one (normalised) text, as Python objects; empty when shorter than `ngram` units."""
    units = text if unit == "char" else _WORD.findall(text)
    if unit == "char":
        return {text[i : i + ngram] for i in range(len(text) - ngram + 1)}
    return {tuple(units[i : i + ngram]) for i in range(len(units) - ngram + 1)}


def codepoints(text: str) -> np.ndarray:
    """(len(text),) uint32 code points; lone surrogates pass through rather than raising."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")


def _rolling(units: np.ndarray, ngram: int, mult: int) -> np.ndarray:
    """(len(units) - ngram + 1,) uint64 polynomial hashes of every window of `ngram` consecutive units."""
    m = len(units) - ngram + 1
    if m <= 0:
        return np.zeros(0, dtype=np.uint64)
    h = units[:m].astype(np.uint64)
    mult64 = np.uint64(mult)
    for j in range(1, ngram):
        h *= mult64
        h += units[j : j + m]
    return h


def _windows_inside_docs(lengths: np.ndarray, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions (in the concatenation) of the windows that lie inside one document, and per-document offsets."""
    counts = np.maximum(lengths - ngram + 1, 0)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    starts = np.zeros(len(lengths), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    # window k of the output belongs to doc d; its position is starts[d] + (k - offsets[d])
    positions = np.arange(offsets[-1], dtype=np.int64) + np.repeat(starts - offsets[:-1], counts)
    return positions, offsets


def _to_u32(h: np.ndarray) -> np.ndarray:
    return (fmix64(h) >> np.uint64(32)).astype(np.uint32)


def char_shingle_hashes(texts: list[str], ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of the character n-grams of each text: (values uint32 (S,), offsets int64 (N + 1,)).

    Document d's hashes are values[offsets[d]:offsets[d + 1]] (with repeats, in text order).
    """
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    if len(texts) == 0:
        return np.zeros(0, np.uint32), np.zeros(1, np.int64)
    cps = codepoints("".join(texts))
    positions, offsets = _windows_inside_docs(lengths, ngram)
    return _to_u32(_rolling(cps, ngram, CHAR_MULT)[positions]), offsets


def _word_hashes(words: list[str]) -> np.ndarray:
    """(W,) uint64: fmix64 of each word's code-point polynomial, all words at once.

    poly(word) = sum(cp[i] * M**(len - 1 - i)), so each character is weighted by M to the power of its distance from
    the word's end and the weighted characters are summed per word (add.reduceat; uint64 wraps mod 2**64).
    """
    lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
    cps = codepoints("".join(words)).astype(np.uint64)
    powers = np.ones(int(lengths.max(initial=0)) + 1, dtype=np.uint64)
    mult = np.uint64(CHAR_MULT)
    for k in range(1, len(powers)):
        powers[k] = powers[k - 1] * mult
    ends = np.cumsum(lengths)
    starts = ends - lengths
    distance_to_end = np.repeat(ends, lengths) - 1 - np.arange(len(cps))
    return fmix64(np.add.reduceat(cps * powers[distance_to_end], starts))


def word_shingle_hashes(texts: list[str], ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of the word n-grams (``\\w+`` tokens) of each text; same layout as `char_shingle_hashes`."""
    tokenised = [_WORD.findall(t) for t in texts]
    counts = np.fromiter(map(len, tokenised), dtype=np.int64, count=len(texts))
    words = [w for ws in tokenised for w in ws]
    if not words:
        return np.zeros(0, np.uint32), np.zeros(len(texts) + 1, np.int64)
    with np.errstate(over="ignore"):
        wh = _word_hashes(words)
    positions, offsets = _windows_inside_docs(counts, ngram)
    return _to_u32(_rolling(wh, ngram, WORD_MULT)[positions]), offsets


def shingle_hashes(texts: list[str], ngram: int, unit: str = "char") -> tuple[np.ndarray, np.ndarray]:
    if unit == "char":
        return char_shingle_hashes(texts, ngram)
    if unit == "word":
        return word_shingle_hashes(texts, ngram)
    raise ValueError(f"shingle unit must be 'char' or 'word', got {unit!r}")
