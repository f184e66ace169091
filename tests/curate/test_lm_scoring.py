"""The block-wise, mask-free scoring of `CharLM.log_probs` against the whole-array reference (bit for bit) and
against a per-character scalar computation from the stored tables."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jpcurate.lm import load_default_model
from jpcurate.lm.model import BOS, P_MUL, SLOT_MUL, UNK, UNK_SPREAD, lookup, lookup_where, ngram_hash_table

M64 = (1 << 64) - 1
TEXTS = [
    "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。",
    "東京 大阪 ホテル 格安 予約 最安値 比較 ランキング 口コミ 評判 おすすめ 人気",
    "縺薙ｌ縺ｯ譁�ｭ怜喧縺代〒縺吶",
    "The quick brown fox 123-4567 jumps. 𠮷野家の𩸽は鱻。",
    "あ",
    "",
]


def scalar_log_prob(model, ids: list[int], i: int) -> float:
    """log p(ids[i] | ids[:i]) one position at a time: Python-integer hashes, table slots and fingerprints
    recomputed from the stored float16 tables, the packed fingerprint byte put into alpha as the model does."""
    w = ids[i]
    p = float(model.unigram[w])
    if i > 0:
        p *= float(model.gamma2[ids[i - 1]])
    for n in range(2, model.order + 1):
        if i == 0:
            break
        if n > 2:
            g = table_entry(model, n - 1, ids, i - 1)[1]
            p = np.float32(p) * np.float32(g)
        p = np.float32(p) + np.float32(table_entry(model, n, ids, i)[0])
    if w == UNK:
        p = np.float32(p) * np.float32(1.0 / UNK_SPREAD)
    return float(np.log(np.clip(np.float32(p), 1e-12, 1.0)))


def table_entry(model, k: int, ids: list[int], i: int) -> tuple[float, float]:
    """(alpha, gamma) of the k-gram ending at i, (0, 1) when its slot holds another key (or none)."""
    h = 0
    for j in range(max(0, i - k + 1), i + 1):
        h = (h * int(P_MUL) + ids[j] + 1) & M64
    alpha, gamma, fps = model.tables[k]
    bits = int(np.log2(len(alpha)))
    prod = (h * int(SLOT_MUL)) & M64
    slot, fp = prod >> (64 - bits), ((prod >> (56 - bits)) & 255) | 1
    if int(fps[slot]) != fp:
        return 0.0, 1.0
    a_bits = (int(np.float32(alpha[slot]).view(np.uint32)) & 0xFFFFFF00) | fp
    return float(np.uint32(a_bits).view(np.float32)), float(np.float32(gamma[slot]))


def encoded(model, text: str) -> np.ndarray:
    return np.concatenate(([BOS], model.encode(text))).astype(np.int64)


@pytest.mark.parametrize("text", TEXTS[:4])
def test_log_probs_match_the_per_character_scalar_computation(text):
    model = load_default_model()
    ids = encoded(model, text)
    got = model.log_probs(ids)
    want = [scalar_log_prob(model, ids.tolist(), i) for i in range(len(ids))]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("block", [1, 2, 3, 7, 64, 1 << 15])
def test_blocks_are_bit_identical_to_the_whole_array_reference(block):
    model = load_default_model()
    ids = model.encode("\x00" + "\x00".join(TEXTS * 3))
    np.testing.assert_array_equal(model.log_probs(ids, block=block), model.log_probs_reference(ids))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from("あいうえおかきくけこ日本語漢字カタナ。、 0123abcー\n"), max_size=80)
                | st.text(max_size=60), min_size=1, max_size=5), st.integers(1, 40))
def test_perplexities_equal_the_reference_on_random_text(texts, block):
    model = load_default_model()
    ids = model.encode("\x00" + "\x00".join(t.replace("\x00", " ") for t in texts))
    np.testing.assert_array_equal(model.log_probs(ids, block=block), model.log_probs_reference(ids))


def test_mask_free_lookup_equals_the_where_lookup_on_hits_and_misses():
    model = load_default_model()
    rng = np.random.default_rng(0)
    ids = model.encode("".join(TEXTS))
    for k in (2, 3, 5):
        real = ngram_hash_table(ids, model.order)[k][k - 1 :]  # k-gram hashes of real text: mostly hits
        hashes = np.concatenate([real, rng.integers(0, 2**63, 5000, dtype=np.uint64)])  # random: mostly misses
        a, g = lookup(model._tab[k], model._bits[k], hashes)
        ra, rg = lookup_where(model._tab[k], model._bits[k], hashes)
        np.testing.assert_array_equal(a, ra)
        np.testing.assert_array_equal(g, rg)
        hit = ra != 0.0
        # hits and misses both occur (the shipped model prunes 3-grams seen < 4 times: ~25 % of these hit at k=3)
        assert hit[len(real) :].mean() < 0.05 and (k == 5 or hit[: len(real)].mean() > 0.2)
