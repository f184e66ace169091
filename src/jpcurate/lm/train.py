"""Training the character Kneser-Ney model (`jpcurate train-lm`), vectorised with numpy.

Counting: every n-gram of the BOS-separated corpus is hashed (uint64) and counted with `np.unique`; continuation
counts N1+(. g) come from the distinct (n+1)-grams' suffixes. Then D_n, alpha and gamma (see `model.py`) are
computed per distinct n-gram / history and written into hashed tables sized for a load of at most 1/2.
`prune_from` drops n-grams seen once at orders >= that value (their mass goes to the back-off), which keeps the
shipped model small. A held-out share of documents (never trained on) gives the reference perplexity
percentiles used for buckets and thresholds.
"""

from __future__ import annotations

import random
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from jpcurate.document import Document
from jpcurate.io.readers import read_documents
from jpcurate.lm.model import BOS, UNK, CharLM, fingerprints, ngram_hash_table, slots
from jpcurate.steps.normalize import normalize_text

PERCENTILES = (1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 98, 99, 99.5, 99.9)


def build_vocab(texts: list[str], *, min_count: int = 2, max_size: int = 8000) -> np.ndarray:
    counts: Counter[str] = Counter()
    for t in texts:
        counts.update(t)
    for d in "123456789":
        counts["0"] += counts.pop(d, 0)
    chars = [c for c, n in counts.most_common(max_size) if n >= min_count and c not in "123456789"]
    return np.array([0, 0] + [ord(c) for c in chars], dtype=np.uint32)  # ids 0 = UNK, 1 = BOS


def _counts(h: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct hashes among h[mask], one position of each, and their counts."""
    pos = np.flatnonzero(mask)
    uniq, first, cnt = np.unique(h[pos], return_index=True, return_counts=True)
    return uniq, pos[first], cnt


def _discount(cnt: np.ndarray) -> float:
    n1, n2 = int((cnt == 1).sum()), int((cnt == 2).sum())
    return n1 / (n1 + 2 * n2) if n1 + 2 * n2 else 0.5


def _table(keys_a, alpha, w_a, keys_g, gamma, w_g) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One hashed table over the union of n-gram keys (alpha) and history keys (gamma), at most half full."""
    keys, inv = np.unique(np.concatenate([keys_a, keys_g]), return_inverse=True)
    na = len(keys_a)
    a = np.zeros(len(keys))
    g = np.ones(len(keys))
    a[inv[:na]] = alpha
    g[inv[na:]] = gamma
    w = np.bincount(inv, weights=np.concatenate([w_a, w_g]).astype(np.float64), minlength=len(keys))
    bits = max(10, int(np.ceil(np.log2(max(2 * len(keys), 2)))))
    s = slots(keys, bits)
    order = np.argsort(w, kind="stable")  # written in ascending weight: on a collision the most frequent key stays
    ta = np.zeros(1 << bits, dtype=np.float16)
    tg = np.ones(1 << bits, dtype=np.float16)
    fp = np.zeros(1 << bits, dtype=np.uint8)
    ta[s[order]], tg[s[order]], fp[s[order]] = a[order], g[order], fingerprints(keys[order], bits)
    return ta, tg, fp


def train(texts: list[str], *, order: int = 5, prune_from: int = 0, min_count: int = 2, max_vocab: int = 8000,
          prune_below: int = 2, meta: dict | None = None) -> CharLM:
    """`prune_from` > 0: at orders >= prune_from, n-grams (and histories) seen fewer than `prune_below` times are
    dropped (their mass backs off)."""
    vocab = build_vocab(texts, min_count=min_count, max_size=max_vocab)
    V = len(vocab)
    empty = CharLM(order, vocab, np.zeros(V, np.float32), np.ones(V, np.float32), {})
    docs = [np.concatenate(([BOS], empty.encode(t))).astype(np.int64) for t in texts if t]
    ids = np.concatenate(docs)
    lens = np.array([len(d) for d in docs], dtype=np.int64)
    hist = np.arange(len(ids)) - np.repeat(np.concatenate(([0], np.cumsum(lens)[:-1])), lens)
    hs = ngram_hash_table(ids, order)
    predicted = hist >= 1  # BOS is context only
    empty_f = np.zeros(0)
    empty_k = np.zeros(0, dtype=np.uint64)
    ngrams: dict[int, tuple] = {}  # k -> (keys, alpha, counts) of the k-grams
    histories: dict[int, tuple] = {k: (empty_k, empty_f, empty_f) for k in range(1, order + 1)}
    gamma2 = np.ones(V, dtype=np.float32)
    # Highest order: raw counts. Lower orders: continuation counts from the distinct (n+1)-grams.
    uniq, rep, cnt = _counts(hs[order], predicted & (hist >= order - 1))
    unigram, rep_up = None, rep
    for n in range(order, 0, -1):
        if n < order:
            # each distinct (n+1)-gram contributes 1 to its suffix n-gram
            uniq, inv, cnt = np.unique(hs[n][rep_up], return_inverse=True, return_counts=True)
            rep = np.zeros(len(uniq), dtype=np.int64)
            rep[inv] = rep_up
        d = _discount(cnt)
        if n == 1:
            c1 = np.bincount(ids[rep], weights=cnt, minlength=V)
            total = c1.sum()
            g0 = d * int((c1 > 0).sum()) / total
            unigram = (np.maximum(c1 - d, 0) / total + g0 / V).astype(np.float32)
            unigram[BOS] = 0.0
            break
        ctx = hs[n - 1][rep - 1]
        cu, cinv = np.unique(ctx, return_inverse=True)
        c_ctx = np.bincount(cinv, weights=cnt)
        g = d * np.bincount(cinv) / c_ctx
        a = np.maximum(cnt - d, 0) / c_ctx[cinv]
        keep = cnt >= prune_below if (prune_from and n >= prune_from) else np.ones(len(cnt), dtype=bool)
        ngrams[n] = (uniq[keep], a[keep], cnt[keep])
        if n == 2:  # one-character histories: dense by character id (hash of a 1-gram = id + 1)
            gamma2[(cu - np.uint64(1)).astype(np.int64)] = g
        else:  # a history seen once had only pruned continuations: drop it too (full back-off)
            hk = c_ctx >= prune_below if (prune_from and n >= prune_from) else np.ones(len(cu), dtype=bool)
            histories[n - 1] = (cu[hk], g[hk], c_ctx[hk])
        rep_up = rep  # positions of the distinct n-grams, for the next lower order's continuation counts
    tables = {k: _table(*ngrams[k], *histories[k]) for k in range(2, order + 1)}
    info = {"train_docs": len(docs), "train_chars": int(predicted.sum()), "prune_from": prune_from,
            "prune_below": prune_below,
            **(meta or {})}
    return CharLM(order, vocab, unigram, gamma2, tables, meta=info)


def calibrate(model: CharLM, texts: list[str]) -> None:
    ppl = model.perplexities([t for t in texts if t])
    ppl = ppl[np.isfinite(ppl)]
    model.percentiles = {f"{q:g}": float(np.percentile(ppl, q)) for q in PERCENTILES}
    model.meta["heldout_docs"] = len(ppl)


def read_texts(paths: list[str], *, text_field: str = "text", skipped: dict[str, int] | None = None) -> list[str]:
    """Normalised non-empty texts; `skipped` counts the records left out ("malformed", "empty"). A file that
    cannot be read to its end is an error naming it (a model from part of a corpus would pass unnoticed)."""

    out = []
    skipped = {} if skipped is None else skipped
    for p in paths:
        try:
            for item in read_documents(p, text_field=text_field):
                t = normalize_text(item.text) if isinstance(item, Document) else None
                if t:
                    out.append(t)
                else:
                    kind = "malformed" if t is None else "empty"
                    skipped[kind] = skipped.get(kind, 0) + 1
        except Exception as e:  # noqa: BLE001 - corrupt gzip/zstd/Parquet
            raise SystemExit(f"train-lm: cannot read {p}: {e}") from None
    return out


def train_from_files(paths: list[str | Path], *, text_field: str = "text", order: int = 5, heldout: float = 0.1,
                     max_docs: int = 0, seed: int = 0, prune_from: int = 0) -> CharLM:
    skipped: dict[str, int] = {}
    texts = read_texts([str(p) for p in paths], text_field=text_field, skipped=skipped)
    if skipped:
        print(f"train-lm: records left out: {skipped} (malformed: bad JSON/UTF-8, missing or non-string text)",
              file=sys.stderr)
    if max_docs:
        texts = texts[:max_docs]
    if len(texts) < 2:
        raise SystemExit(f"train-lm: need at least 2 documents, found {len(texts)} in {paths}")
    idx = list(range(len(texts)))
    random.Random(seed).shuffle(idx)
    n_held = max(1, int(len(texts) * heldout))
    held, train_idx = sorted(idx[:n_held]), sorted(idx[n_held:])
    model = train([texts[i] for i in train_idx], order=order, prune_from=prune_from,
                  meta={"sources": [Path(p).name for p in paths]})
    calibrate(model, [texts[i] for i in held])
    return model


__all__ = ["BOS", "UNK", "calibrate", "train", "train_from_files"]
