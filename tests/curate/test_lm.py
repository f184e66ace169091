"""The character Kneser-Ney model against a direct dictionary implementation of the same formulas."""

from collections import Counter, defaultdict

import numpy as np
import pytest

from jpcurate.lm.model import BOS, UNK_SPREAD, CharLM
from jpcurate.lm.train import calibrate, train

CORPUS = ["あいうあいえ", "いうえおあい", "かきくけこあいう", "あいうえお", "ういあいう"]


def kn_reference(docs: list[list[int]], order: int, V: int):
    """Interpolated KN exactly as documented in jpcurate.lm.model, with dictionaries."""
    levels = {}
    grams = Counter()
    for d in docs:
        for i in range(order - 1, len(d)):
            grams[tuple(d[i - order + 1 : i + 1])] += 1
    levels[order] = dict(grams)
    for n in range(order - 1, 0, -1):
        cont = Counter(g[1:] for g in levels[n + 1])
        levels[n] = dict(cont)
    disc, alpha, gamma = {}, {}, {}
    for n in range(order, 0, -1):
        cnt = levels[n]
        vals = list(cnt.values())
        n1, n2 = vals.count(1), vals.count(2)
        disc[n] = n1 / (n1 + 2 * n2) if n1 + 2 * n2 else 0.5
        if n == 1:
            continue
        ctx_total, ctx_types = defaultdict(int), defaultdict(int)
        for g, c in cnt.items():
            ctx_total[g[:-1]] += c
            ctx_types[g[:-1]] += 1
        alpha[n] = {g: max(c - disc[n], 0) / ctx_total[g[:-1]] for g, c in cnt.items()}
        gamma[n] = {h: disc[n] * ctx_types[h] / ctx_total[h] for h in ctx_total}
    c1 = levels[1]
    total = sum(c1.values())
    g0 = disc[1] * len(c1) / total

    def prob(hist: tuple, w: int) -> float:
        p = 0.0 if w == BOS else max(c1.get((w,), 0) - disc[1], 0) / total + g0 / V
        for n in range(2, order + 1):
            if len(hist) < n - 1:
                break
            h = tuple(hist[len(hist) - n + 1 :])
            if h not in gamma[n]:
                continue
            p = alpha[n].get(h + (w,), 0.0) + gamma[n][h] * p
        return p

    return prob


@pytest.mark.parametrize("order", [2, 3, 5])
def test_kneser_ney_matches_the_dictionary_reference(order):
    model = train(CORPUS, order=order, min_count=1)
    docs = [[BOS] + model.encode(t).tolist() for t in CORPUS]
    prob = kn_reference(docs, order, len(model.vocab))
    probe = "あいうえおかきあう"
    ids = np.array([BOS] + model.encode(probe).tolist())
    got = np.exp(model.log_probs(ids))[1:]
    want = [prob(tuple(ids[:i].tolist()), int(ids[i])) for i in range(1, len(ids))]
    np.testing.assert_allclose(got, want, rtol=2e-3)  # tables hold float16


def test_probabilities_sum_to_one_over_the_vocabulary():
    model = train(CORPUS, order=3, min_count=1)
    # BOS is never predicted, so training gives it no unigram mass; UNK (unseen here) holds exactly the g0/V share
    # every character gets from the back-off. Give BOS the same share and the distribution must sum to 1.
    model._unigram[BOS] = model._unigram[0]
    for hist_text in ("あい", "かき", "ん"):
        total = 0.0
        for w in range(len(model.vocab)):
            ids = np.array([BOS] + model.encode(hist_text).tolist() + [w])
            p = np.exp(model.log_probs(ids)[-1])
            total += p * (UNK_SPREAD if w == 0 else 1.0)  # undo the UNK spread
        assert total == pytest.approx(1.0, abs=2e-3), hist_text


def test_save_load_roundtrip_and_percentiles(tmp_path):
    model = train(CORPUS * 3, order=4, min_count=1)
    calibrate(model, CORPUS)
    model.save(tmp_path / "m.npz")
    back = CharLM.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(back.perplexities(CORPUS), model.perplexities(CORPUS))
    assert back.bucket(0.0) == "head" and back.bucket(1e9) == "tail"
    assert 0 <= back.percentile_of(back.percentiles["50"]) <= 100


def test_default_model_is_small_and_prefers_natural_text():
    from importlib import resources

    from jpcurate.lm import load_default_model

    path = resources.files("jpcurate").joinpath("data/charlm_ja.npz")
    assert path.stat().st_size < 4e6
    m = load_default_model()
    natural = "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。"
    junk = "東京 大阪 ホテル 格安 予約 最安値 比較 ランキング 口コミ 評判 おすすめ 人気 " * 3
    mojibake = "縺薙ｌ縺ｯ譁�ｭ怜喧縺代〒縺吶" * 3
    n, j, b = m.perplexities([natural, junk, mojibake])
    assert n < m.percentiles["90"] < j and n * 10 < b
    assert m.perplexity("") == float("inf")


def test_train_lm_command(tmp_path, data_dir):
    from jpcurate.cli import main

    out = tmp_path / "lm.npz"
    assert main(["train-lm", "--input", str(data_dir / "aozora" / "works.jsonl"), "--output", str(out),
                 "--order", "3", "--max-docs", "8"]) == 0
    m = CharLM.load(out)
    assert m.order == 3 and m.meta["heldout_docs"] >= 1 and set(m.percentiles) >= {"30", "60", "99"}


def test_naturalness_step_values_match_the_model_methods():
    from jpcurate.document import Document
    from jpcurate.lm import load_default_model
    from jpcurate.steps.naturalness import NaturalnessFilter

    step, m = NaturalnessFilter(max_chars=30), load_default_model()
    texts = ["吾輩は猫である。名前はまだ無い。" * 4, "東京 大阪 ホテル 格安 予約 " * 8, "カタカナ", ""]
    docs = [Document(str(i), t) for i, t in enumerate(texts)]
    verdicts = step.apply_batch(docs)
    for d, v in zip(docs, verdicts):
        ppl = m.perplexity(step.sample(d.text))
        assert d.values["ppl_bucket"] == m.bucket(ppl)
        assert d.values["ppl_pct"] == pytest.approx(round(m.percentile_of(ppl), 1), abs=0.051)
        assert (v is not None) == (ppl > step.limit())
    assert len(step.sample("あ" * 100)) == 31 and step.sample("あ" * 30) == "あ" * 30
