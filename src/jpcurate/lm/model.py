"""Character n-gram language model with interpolated Kneser-Ney smoothing, stored in hashed tables (numpy).

Probability of character w after history h (Chen & Goodman 1999, interpolated KN, one discount per order):

    p_n(w | h) = max(c_n(h w) - D_n, 0) / c_n(h .)  +  gamma_n(h) * p_{n-1}(w | h')
    gamma_n(h) = D_n N1+(h .) / c_n(h .)
    p_1(w)     = max(c_1(w) - D_1, 0) / c_1(.)      +  gamma_1 / V

with raw counts at the highest order, continuation counts N1+(. g) below it, D_n = n1 / (n1 + 2 n2). When the
history h was never seen, p_n = p_{n-1} (alpha 0, gamma 1).

Storage: for each order n >= 2 two hashed tables — `alpha[slot(h w)]` and `gamma[slot(h)]`, float16 on disk, each
with an 8-bit fingerprint to tell an empty or foreign slot from ours (collisions inside a table keep the more
frequent entry); in memory value and fingerprint are packed into one float32 so a lookup is one gather — and a
dense unigram array. Unknown characters share the UNK probability with `UNK_SPREAD` others. n-gram hashes are a
uint64 polynomial over character ids, so scoring a batch is a handful of vectorised numpy operations per order,
no Python loop per character.

Characters: NFKC text (the pipeline normalises first), digits mapped to 0 (as cc_net does), ids by frequency, rare
characters -> UNK; every document starts with a BOS id. Perplexity = exp(-mean log p) over the document's
characters; `bucket` compares it with percentiles of held-out reference documents (cc_net head/middle/tail at the
30th/60th percentiles).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from jpcurate.charclass import codepoints

P_MUL = np.uint64(0x9E3779B97F4A7C15)
SLOT_MUL = np.uint64(0xD6E8FEB86659FD93)
UNK, BOS = 0, 1
UNK_SPREAD = 1000.0  # the UNK mass is shared by this many unseen characters: an unknown character is costly
MAX_CP = 0x30000


def ngram_hash_table(ids: np.ndarray, order: int) -> list[np.ndarray]:
    """H[n][i] = hash of the n-gram ending at position i (n = 1..order); entries with i < n-1 are garbage."""
    seq = ids.astype(np.uint64) + np.uint64(1)
    hs = [seq]
    with np.errstate(over="ignore"):
        for _ in range(2, order + 1):
            prev = hs[-1]
            h = np.empty_like(seq)
            h[0] = seq[0]
            h[1:] = prev[:-1] * P_MUL + seq[1:]
            hs.append(h)
    return [None] + hs  # index by order


def slots(h: np.ndarray, bits: int) -> np.ndarray:
    with np.errstate(over="ignore"):
        return ((h * SLOT_MUL) >> np.uint64(64 - bits)).astype(np.int64)


def fingerprints(h: np.ndarray, bits: int) -> np.ndarray:
    """8 bits of the same product just below the slot bits, never 0 (0 marks an empty slot)."""
    with np.errstate(over="ignore"):
        return ((((h * SLOT_MUL) >> np.uint64(56 - bits)) & np.uint64(255)) | np.uint64(1)).astype(np.uint8)


def pack(values: np.ndarray, fps: np.ndarray) -> np.ndarray:
    """float32 values whose lowest 8 mantissa bits hold the fingerprint (relative error < 2^-15)."""
    v = values.astype(np.float32).view(np.uint32) & np.uint32(0xFFFFFF00)
    return (v | fps.astype(np.uint32)).view(np.float32)


def lookup(table: np.ndarray, bits: int, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values, found) for hashes h in a packed table: one multiply, one gather, one byte compare."""
    with np.errstate(over="ignore"):
        m = h * SLOT_MUL
        v = table[(m >> np.uint64(64 - bits)).astype(np.intp)]
        fp = (m >> np.uint64(56 - bits)).astype(np.uint8)  # the low byte: bits (56-bits)..(63-bits) of m
    fp |= np.uint8(1)
    return v, v.view(np.uint8)[0::4] == fp  # little-endian: byte 0 of each float32 holds the fingerprint


@dataclass
class CharLM:
    order: int
    vocab: np.ndarray  # (V,) uint32 code points; ids 0 (UNK) and 1 (BOS) are reserved (code point 0)
    unigram: np.ndarray  # (V,) float32 p_1
    alpha: dict[int, np.ndarray]  # order -> (2^bits,) float16
    alpha_fp: dict[int, np.ndarray]  # order -> (2^bits,) uint8
    gamma: dict[int, np.ndarray]
    gamma_fp: dict[int, np.ndarray]
    percentiles: dict[str, float] = field(default_factory=dict)  # "10" -> perplexity at that percentile
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._alpha = {n: pack(self.alpha[n], self.alpha_fp[n]) for n in self.alpha}
        self._gamma = {n: pack(self.gamma[n], self.gamma_fp[n]) for n in self.gamma}
        self._bits = {n: (int(np.log2(len(self.alpha[n]))), int(np.log2(len(self.gamma[n])))) for n in self.alpha}
        self._unigram = self.unigram.astype(np.float32)
        if sys.byteorder != "little":  # the packed fingerprint is read as the first byte of each float32
            raise RuntimeError("jpcurate.lm needs a little-endian machine")
        self._lookup = np.full(MAX_CP, UNK, dtype=np.int32)
        cps = self.vocab.astype(np.int64)
        ok = (cps > 0) & (cps < MAX_CP)
        self._lookup[cps[ok]] = np.arange(len(cps), dtype=np.int32)[ok]
        self._lookup[ord("1") : ord("9") + 1] = self._lookup[ord("0")]

    # ---- encoding -------------------------------------------------------------------------------------------
    def encode(self, text: str) -> np.ndarray:
        """(N,) int64 character ids (digits as 0, unknown characters as UNK)."""
        cps = codepoints(text).astype(np.int64)
        return self._lookup[np.minimum(cps, MAX_CP - 1)]

    # ---- scoring --------------------------------------------------------------------------------------------
    def log_probs(self, ids: np.ndarray, hist: np.ndarray) -> np.ndarray:
        """Natural-log probabilities of ids[i] given up to hist[i] previous ids (hist = distance to the BOS).
        Vectorised over all positions: per order two packed-table lookups and an interpolation."""
        hs = ngram_hash_table(ids, self.order)
        p = self._unigram[ids]
        q = p[1:]  # position i >= 1 has a history; view into p
        for n in range(2, self.order + 1):
            abits, gbits = self._bits[n]
            gv, seen = lookup(self._gamma[n], gbits, hs[n - 1][:-1])
            av, hit = lookup(self._alpha[n], abits, hs[n][1:])
            seen &= hist[1:] >= n - 1
            hit &= seen
            gv[~seen] = 1.0  # unseen history: p_n = p_{n-1}
            av[~hit] = 0.0
            q *= gv
            q += av
        p[ids == UNK] *= 1.0 / UNK_SPREAD
        return np.log(np.clip(p, 1e-12, 1.0))

    def perplexities(self, texts: list[str]) -> np.ndarray:
        """(len(texts),) perplexity of each text (inf for an empty text)."""
        if not texts:
            return np.zeros(0)
        encoded = [self.encode(t) for t in texts]
        lens = np.array([len(e) + 1 for e in encoded], dtype=np.int64)  # + BOS
        ids = np.concatenate([np.concatenate(([BOS], e)).astype(np.int64) for e in encoded])
        starts = np.concatenate(([0], np.cumsum(lens)[:-1]))
        hist = np.arange(len(ids), dtype=np.int64) - np.repeat(starts, lens)
        lp = self.log_probs(ids, hist)
        lp[hist == 0] = 0.0  # the BOS itself is not predicted
        sums = np.add.reduceat(lp, starts)
        n = lens - 1
        with np.errstate(divide="ignore", over="ignore"):
            return np.where(n > 0, np.exp(-sums / np.maximum(n, 1)), np.inf)

    def perplexity(self, text: str) -> float:
        return float(self.perplexities([text])[0])

    def percentile_of(self, ppl: float) -> float:
        """Estimated percentile (0-100) of `ppl` in the reference distribution (linear between stored points)."""
        pts = sorted((float(k), v) for k, v in self.percentiles.items())
        if not pts:
            return float("nan")
        qs, vs = zip(*pts)
        return float(np.interp(ppl, vs, qs, left=0.0, right=100.0))

    def bucket(self, ppl: float, head: float = 30, tail: float = 60) -> str:
        """cc_net bucket: head below the `head` percentile, tail at or above the `tail` percentile."""
        if ppl < self.percentiles[f"{head:g}"]:
            return "head"
        return "middle" if ppl < self.percentiles[f"{tail:g}"] else "tail"

    # ---- persistence ----------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        arrays = {"vocab": self.vocab, "unigram": self.unigram}
        for n in self.alpha:
            arrays[f"alpha{n}"], arrays[f"alpha_fp{n}"] = self.alpha[n], self.alpha_fp[n]
            arrays[f"gamma{n}"], arrays[f"gamma_fp{n}"] = self.gamma[n], self.gamma_fp[n]
        header = {"order": self.order, "percentiles": self.percentiles, "meta": self.meta}
        arrays["header"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
        with open(path, "wb") as f:
            np.savez_compressed(f, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> CharLM:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(bytes(z["header"]).decode("utf-8"))
            order = header["order"]
            orders = range(2, order + 1)
            return cls(order=order, vocab=z["vocab"], unigram=z["unigram"],
                       alpha={n: z[f"alpha{n}"] for n in orders}, alpha_fp={n: z[f"alpha_fp{n}"] for n in orders},
                       gamma={n: z[f"gamma{n}"] for n in orders}, gamma_fp={n: z[f"gamma_fp{n}"] for n in orders},
                       percentiles=header["percentiles"], meta=header["meta"])

    def summary(self) -> str:
        sizes = {n: len(self.alpha[n]) for n in self.alpha}
        pct = {k: round(v, 1) for k, v in self.percentiles.items()}
        return (f"CharLM order {self.order}, vocab {len(self.vocab)}, table slots {sizes}, "
                f"reference perplexity percentiles {pct}, {self.meta}")
