"""Character n-gram language model with interpolated Kneser-Ney smoothing, stored in hashed tables (numpy).

Probability of character w after history h (Chen & Goodman 1999, interpolated KN, one discount per order):

    p_n(w | h) = max(c_n(h w) - D_n, 0) / c_n(h .)  +  gamma_n(h) * p_{n-1}(w | h')
    gamma_n(h) = D_n N1+(h .) / c_n(h .)
    p_1(w)     = max(c_1(w) - D_1, 0) / c_1(.)      +  gamma_1 / V

with raw counts at the highest order, continuation counts N1+(. g) below it, D_n = n1 / (n1 + 2 n2). When the
history h was never seen, p_n = p_{n-1} (alpha 0, gamma 1).

Storage: one hashed table per k = 2..order keyed by k-grams, each slot holding alpha_k of the k-gram and gamma_{k+1}
of the k-gram as a history (float16 on disk) and an 8-bit fingerprint that tells an empty or foreign slot from ours
(collisions keep the more frequent key); in memory a slot is a row of two float32 with the fingerprint in the low
byte of alpha, so each order costs one row gather per character. Unigrams and one-character histories are dense.
Unknown characters share the UNK probability with `UNK_SPREAD` others. n-gram hashes are a
uint64 polynomial over character ids, so scoring a batch is a handful of vectorised numpy operations per order,
no Python loop per character, run over blocks of 32 K positions so that the temporaries stay in cache.

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

from jpcurate.text.charclass import codepoints

P_MUL = np.uint64(0x9E3779B97F4A7C15)
SLOT_MUL = np.uint64(0xD6E8FEB86659FD93)
UNK, BOS = 0, 1
UNK_SPREAD = 100.0  # the UNK mass is shared by this many unseen characters (rare kanji in names must not dominate)
MAX_CP = 0x30000
BLOCK = 1 << 15  # positions scored together by `CharLM.log_probs` (its temporaries stay in cache)


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


def pack_table(alpha: np.ndarray, gamma: np.ndarray, fps: np.ndarray) -> np.ndarray:
    """(2^bits, 2) float32 rows (alpha, gamma); alpha's lowest mantissa byte holds the fingerprint (relative error
    < 2^-15), so one row gather gives both values and the key check."""
    a = (alpha.astype(np.float32).view(np.uint32) & np.uint32(0xFFFFFF00)) | fps.astype(np.uint32)
    return np.stack([a.view(np.float32), gamma.astype(np.float32)], axis=1)


def lookup(table: np.ndarray, bits: int, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(alpha, gamma) for hashes h: one multiply, one 8-byte gather, one byte compare; a missing key gives
    alpha 0 (unseen n-gram) and gamma 1 (unseen history: back off unchanged). `table` is the packed (2^bits, 2)
    float32 array seen as (2^bits,) uint64 (a 1-D take is ~20x faster than a 2-D row gather).

    The masking is arithmetic, not `np.where` (whose branches mispredict on a mixed hit/miss pattern, 5x slower):
    alpha * found and gamma * found + (not found) give exactly alpha or 0 and gamma or 1 (finite, >= 0 values)."""
    with np.errstate(over="ignore"):
        m = h * SLOT_MUL
    rows = np.take(table, (m >> np.uint64(64 - bits)).view(np.int64))  # (L,) uint64 = (alpha, gamma)
    m >>= np.uint64(56 - bits)  # its lowest byte: bits (56-bits)..(63-bits) of the product = the fingerprint
    found = rows.view(np.uint8)[::8] == (m.view(np.uint8)[::8] | np.uint8(1))  # little-endian: lowest bytes
    pair = rows.view(np.float32).reshape(-1, 2)
    alpha = pair[:, 0] * found
    gamma = pair[:, 1] * found
    gamma += ~found
    return alpha, gamma


def lookup_where(table: np.ndarray, bits: int, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`lookup` written plainly (the previous implementation, kept as the test oracle)."""
    with np.errstate(over="ignore"):
        m = h * SLOT_MUL
        rows = np.take(table, (m >> np.uint64(64 - bits)).astype(np.intp))
        fp = (m >> np.uint64(56 - bits)).astype(np.uint8)
    fp |= np.uint8(1)
    found = rows.astype(np.uint8) == fp
    pair = rows.view(np.float32).reshape(-1, 2)
    return np.where(found, pair[:, 0], np.float32(0.0)), np.where(found, pair[:, 1], np.float32(1.0))


@dataclass
class CharLM:
    """Tables: for k = 2..order, `tables[k] = (alpha_k, gamma_{k+1}, fingerprint)` keyed by the k-gram (as an n-gram
    of order k and as the history of order k+1), float16/uint8 arrays of 2^bits slots; `gamma2` is dense over
    character ids (histories of one character)."""

    order: int
    vocab: np.ndarray  # (V,) uint32 code points; ids 0 (UNK) and 1 (BOS) are reserved (code point 0)
    unigram: np.ndarray  # (V,) float32 p_1
    gamma2: np.ndarray  # (V,) float32 gamma_2 of each one-character history (1 = unseen)
    tables: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]
    percentiles: dict[str, float] = field(default_factory=dict)  # "10" -> perplexity at that percentile
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if sys.byteorder != "little":  # the packed fingerprint is read as the first byte of each float32
            raise RuntimeError("jpcurate.lm needs a little-endian machine")
        self._tab = {k: pack_table(*t).view(np.uint64).ravel() for k, t in self.tables.items()}
        self._bits = {k: int(np.log2(len(t[0]))) for k, t in self.tables.items()}
        self._unigram = self.unigram.astype(np.float32)
        self._gamma2 = self.gamma2.astype(np.float32)
        self._lookup = np.full(MAX_CP, UNK, dtype=np.int32)
        cps = self.vocab.astype(np.int64)
        ok = (cps > 0) & (cps < MAX_CP)
        self._lookup[cps[ok]] = np.arange(len(cps), dtype=np.int32)[ok]
        self._lookup[ord("1") : ord("9") + 1] = self._lookup[ord("0")]
        self._lookup[0] = BOS  # NUL separates documents in a batch

    # ---- encoding -------------------------------------------------------------------------------------------
    def encode(self, text: str) -> np.ndarray:
        """(N,) int64 character ids (digits as 0, unknown characters as UNK)."""
        return self._lookup[np.minimum(codepoints(text), MAX_CP - 1)].astype(np.int64)

    # ---- scoring --------------------------------------------------------------------------------------------
    def log_probs(self, ids: np.ndarray, *, block: int = BLOCK) -> np.ndarray:
        """(N,) float32 natural-log probabilities of ids[i] given the previous ids (no distance to the BOS is
        needed: an n-gram reaching past a BOS misses every table).
        Computed in blocks of `block` positions (each with the order-1 ids before it as context), so that the
        dozen temporaries of a block stay in cache: the result is bit-identical to `log_probs_reference`."""
        ids = np.asarray(ids)
        out = np.empty(len(ids), dtype=np.float32)
        ctx = self.order - 1
        for s in range(0, len(ids), block):
            e = min(len(ids), s + block)
            lo = max(0, s - ctx)
            out[s:e] = self._log_probs_block(ids[lo:e])[s - lo :]
        return out

    def _log_probs_block(self, ids: np.ndarray) -> np.ndarray:
        """`log_probs_reference` for one block, with the hashes of order n built from those of order n-1 as it
        goes and each table's gamma kept only until the next order uses it."""
        seq = ids.astype(np.uint64)
        seq += np.uint64(1)
        p = self._unigram[ids]
        q = p[1:]  # position i >= 1 has a history; a view into p
        if self.order >= 2:
            q *= self._gamma2[ids[:-1]]
        h, gamma = seq, None
        for n in range(2, self.order + 1):
            hn = np.empty_like(seq)
            hn[0] = seq[0]
            with np.errstate(over="ignore"):
                np.multiply(h[:-1], P_MUL, out=hn[1:])
                hn[1:] += seq[1:]
            h = hn
            alpha, next_gamma = lookup(self._tab[n], self._bits[n], h)
            if gamma is not None:
                q *= gamma[:-1]
            q += alpha[1:]
            gamma = next_gamma
        p[ids == UNK] *= 1.0 / UNK_SPREAD
        np.clip(p, 1e-12, 1.0, out=p)
        return np.log(p, out=p)

    def log_probs_reference(self, ids: np.ndarray) -> np.ndarray:
        """The whole-array computation `log_probs` is tested against (bit for bit)."""
        hs = ngram_hash_table(ids, self.order)
        alpha, gamma = {}, {1: self._gamma2[ids]}
        for k in range(2, self.order + 1):
            alpha[k], gamma[k] = lookup_where(self._tab[k], self._bits[k], hs[k])
        p = self._unigram[ids]
        q = p[1:]
        for n in range(2, self.order + 1):
            # p_n(i) = alpha_n(n-gram ending at i) + gamma_n(history ending at i-1) * p_{n-1}(i). Where the history
            # is shorter than n-1 the hashed "n-gram" reaches past the BOS, which no table holds (training keeps
            # BOS only as a first character), so the lookup misses (alpha 0, gamma 1) and p stays.
            q *= gamma[n - 1][:-1]
            q += alpha[n][1:]
        p[ids == UNK] *= 1.0 / UNK_SPREAD
        return np.log(np.clip(p, 1e-12, 1.0))

    def perplexities(self, texts: list[str]) -> np.ndarray:
        """(len(texts),) perplexity of each text (inf for an empty text)."""
        if not texts:
            return np.zeros(0)
        # One encode for the whole batch: documents joined by NUL, which maps to BOS (a NUL inside a text, which
        # normalisation removes anyway, is replaced by a space first).
        texts = [t.replace("\x00", " ") if "\x00" in t else t for t in texts]
        lens = np.fromiter((len(t) + 1 for t in texts), dtype=np.int64, count=len(texts))  # + BOS
        ids = self.encode("\x00" + "\x00".join(texts))
        starts = np.cumsum(lens) - lens
        lp = self.log_probs(ids)
        lp[starts] = 0.0  # the BOS itself is not predicted
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
        arrays = {"vocab": self.vocab, "unigram": self.unigram, "dense_gamma2": self.gamma2}
        for k, (a, g, fp) in self.tables.items():
            arrays[f"table{k}_alpha"], arrays[f"table{k}_gamma"], arrays[f"table{k}_fp"] = a, g, fp
        header = {"order": self.order, "percentiles": self.percentiles, "meta": self.meta}
        arrays["header"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
        with open(path, "wb") as f:
            np.savez_compressed(f, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> CharLM:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(bytes(z["header"]).decode("utf-8"))
            order = header["order"]
            tables = {k: (z[f"table{k}_alpha"], z[f"table{k}_gamma"], z[f"table{k}_fp"]) for k in range(2, order + 1)}
            return cls(order=order, vocab=z["vocab"], unigram=z["unigram"], gamma2=z["dense_gamma2"], tables=tables,
                       percentiles=header["percentiles"], meta=header["meta"])

    def summary(self) -> str:
        sizes = {k: len(t[0]) for k, t in self.tables.items()}
        pct = {k: round(v, 1) for k, v in self.percentiles.items()}
        return (f"CharLM order {self.order}, vocab {len(self.vocab)}, table slots {sizes}, "
                f"reference perplexity percentiles {pct}, {self.meta}")
