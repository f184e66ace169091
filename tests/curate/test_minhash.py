"""MinHash signatures, shingle hashes and LSH parameters against datasketch and exact formulas."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from datasketch import MinHash, MinHashLSH
from datasketch.lsh import _optimal_param

from jpcurate.dedup.lsh import band_hashes, bucket_pairs, optimal_params
from jpcurate.dedup.minhash import _BLOCK, EMPTY, MinHasher, estimate_jaccard, to_lean_minhash
from jpcurate.dedup.normalize import normalize_for_dedup
from jpcurate.dedup.shingles import shingle_hash_reference, shingle_hashes, shingles_reference

KANA = "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをん"


def _docs(data_dir, n=60):
    lines = (data_dir / "near_duplicates" / "documents.jsonl").read_text(encoding="utf-8").splitlines()[:n]
    return [normalize_for_dedup(json.loads(x)["text"]) for x in lines]


@pytest.mark.parametrize("unit,ngram", [("char", 5), ("char", 3), ("word", 2)])
def test_shingle_hashes_match_reference(data_dir, unit, ngram):
    texts = _docs(data_dir, 8) + ["short", "", "the quick brown fox jumps over the lazy dog"]
    values, offsets = shingle_hashes(texts, ngram, unit)
    for i, t in enumerate(texts):
        units = list(t) if unit == "char" else __import__("regex").findall(r"\w+", t)
        grams = [("".join if unit == "char" else tuple)(units[j:j + ngram]) for j in range(len(units) - ngram + 1)]
        assert values[offsets[i]:offsets[i + 1]].tolist() == [shingle_hash_reference(g) for g in grams]


@pytest.mark.parametrize("unit,ngram", [("char", 5), ("word", 3)])
def test_signatures_equal_datasketch_minhash(data_dir, unit, ngram):
    texts = _docs(data_dir, 40)
    mh = MinHasher(num_perm=64, ngram=ngram, unit=unit, seed=7)
    sig, has = mh.signatures(texts)
    for i, t in enumerate(texts):
        ref = mh.datasketch_minhash()
        ref.update_batch(list(shingles_reference(t, ngram, unit)))
        assert has[i]
        np.testing.assert_array_equal(sig[i], ref.hashvalues)


def test_batching_does_not_change_a_signature():
    rng = random.Random(0)
    long_doc = "".join(rng.choice(KANA) for _ in range(3 * _BLOCK + 17))  # spans several blocks
    texts = ["".join(rng.choice(KANA) for _ in range(rng.randint(0, 400))) for _ in range(50)] + [long_doc]
    mh = MinHasher()
    together, _ = mh.signatures(texts)
    alone = np.stack([mh.signatures([t])[0][0] for t in texts])
    np.testing.assert_array_equal(together, alone)


def test_empty_and_short_documents_have_no_signature():
    sig, has = MinHasher(ngram=5).signatures(["", "abcd", "abcde"])
    assert has.tolist() == [False, False, True]
    assert (sig[:2] == EMPTY).all() and not (sig[2] == EMPTY).all()


def test_jaccard_estimate_within_statistical_bound():
    """Over 300 random pairs with Jaccard spread over [0, 1]: every estimate within 4.5 sigma of the exact value
    (sigma = sqrt(J(1-J)/K)), and no bias: the mean error within 4 standard errors of 0."""
    rng = random.Random(1)
    k = 128
    mh = MinHasher(num_perm=k, ngram=5)
    pairs, exact = [], []
    for _ in range(300):
        base = "".join(rng.choice(KANA) for _ in range(rng.randint(100, 600)))
        chars = list(base)
        for _ in range(rng.randint(0, len(chars) // 6)):
            chars[rng.randrange(len(chars))] = rng.choice(KANA)
        other = "".join(chars)
        a, b = shingles_reference(base, 5), shingles_reference(other, 5)
        pairs.append((base, other))
        exact.append(len(a & b) / len(a | b))
    sig_a, _ = mh.signatures([p[0] for p in pairs])
    sig_b, _ = mh.signatures([p[1] for p in pairs])
    est, exact = estimate_jaccard(sig_a, sig_b), np.array(exact)
    sigma = np.sqrt(exact * (1 - exact) / k) + 1e-3
    assert exact.min() < 0.3 and exact.max() > 0.9  # the pairs cover the range
    assert np.all(np.abs(est - exact) <= 4.5 * sigma)
    err = est - exact
    assert abs(err.mean()) <= 4 * err.std() / np.sqrt(len(err)) + 1e-3


def test_lean_minhash_export_same_estimate_and_usable_in_datasketch_lsh(data_dir):
    texts = _docs(data_dir, 375)
    mh = MinHasher(num_perm=128)
    sig, has = mh.signatures(texts)
    lean = [to_lean_minhash(s) for s in sig]
    assert lean[0].jaccard(lean[1]) == pytest.approx(float(estimate_jaccard(sig[0], sig[1])))
    lsh = MinHashLSH(threshold=0.8, num_perm=128)
    for i, m in enumerate(lean):
        if has[i]:
            lsh.insert(i, m)
    # a query built with datasketch itself (same permutations, same shingle hash) finds the document
    q = mh.datasketch_minhash()
    q.update_batch(list(shingles_reference(texts[5], 5)))
    assert 5 in lsh.query(q)
    found = set(lsh.query(lean[5]))
    assert all(estimate_jaccard(sig[5], sig[j]) > 0.5 for j in found)


@pytest.mark.parametrize("num_perm", [16, 64, 128, 256])
@pytest.mark.parametrize("weights", [(0.5, 0.5), (0.2, 0.8)])
def test_optimal_params_equal_datasketch(num_perm, weights):
    for t in (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95):
        assert optimal_params(t, num_perm, weights) == _optimal_param(t, num_perm, *weights), (t, num_perm)


def test_optimal_params_rejects_bad_threshold():
    with pytest.raises(ValueError, match="threshold"):
        optimal_params(1.0, 128)


def test_bucket_pairs_all_pairs_small_and_anchors_large():
    bucket = np.array([5, 5, 5, 1, 1, 9] + [3] * 20, dtype=np.uint64)
    member = np.arange(len(bucket))[::-1].astype(np.int64)
    pairs = {tuple(p) for p in bucket_pairs(bucket, member).tolist()}
    assert {(23, 24), (23, 25), (24, 25), (21, 22)} <= pairs  # buckets 5 and 1, all pairs
    big = sorted(member[6:].tolist())
    assert len([p for p in pairs if p[0] in big]) == 19 + 18  # bucket of 20: two anchors
    assert not any(20 in p for p in pairs)  # the singleton bucket makes no pair


def test_band_hashes_separate_bands():
    sig = np.zeros((1, 8), dtype=np.uint32)  # equal values in every band
    h = band_hashes(sig, 4, 2)
    assert len(set(h[0].tolist())) == 4


def test_datasketch_default_minhash_differs_only_by_offsets(data_dir):
    """Our family is affine32 with b = 0: with datasketch's defaults (random b) the values differ."""
    t = _docs(data_dir, 1)[0]
    ours = MinHasher(num_perm=32).signatures([t])[0][0]
    default = MinHash(num_perm=32, hashfunc=shingle_hash_reference)
    default.update_batch(list(shingles_reference(t, 5)))
    assert not np.array_equal(ours, default.hashvalues)
