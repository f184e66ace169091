"""`NaturalnessFilter`: the character LM as a pipeline step (batch-vectorised perplexity)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jpcurate.document import Document
from jpcurate.lm import load_model
from jpcurate.pipeline import Step, Verdict
from jpcurate.steps.verse import is_verse

# katakana -> hiragana (ァ..ヶ -> ぁ..ゖ); ー and half-width kana are left alone (NFKC has widened the latter)
KANA_FOLD = {cp: cp - 0x60 for cp in range(0x30A1, 0x30F7)}


def fold_katakana(text: str) -> str:
    """The text with katakana written as hiragana: 雨ニモマケズ -> 雨にもまけず, the register the model knows."""
    return text.translate(KANA_FOLD)


class NaturalnessFilter(Step):
    """Stores `ppl`, `ppl_pct` (percentile in the reference distribution) and `ppl_bucket` (head/middle/tail);
    rejects (`perplexity`) when the perplexity is above the reference's `max_percentile` percentile times
    `factor` (or above `max_ppl` when given). `max_chars` bounds the cost per document: longer documents are
    scored on a head-and-tail sample of that many characters.

    Two second chances, for documents over the limit only (so they cost nothing on the rest):
    `kana_fold=True` rescores the text with katakana folded to hiragana and keeps the lower perplexity (漢字カタカナ
    交じり文 such as 雨ニモマケズ or Meiji-era laws is natural Japanese the model has seen little of; folding
    makes katakana junk, ホテル -> ほてる, no likelier); `verse_factor` multiplies the limit for documents that
    `rules.verse.is_verse` calls verse (tanka in classical grammar without punctuation score higher than prose).
    The stored `ppl` is the one judged."""

    def __init__(self, *, model_path: str | None = None, max_percentile: float = 99.0, factor: float = 1.0,
                 max_ppl: float | None = None, max_chars: int = 20_000, kana_fold: bool = False,
                 verse_factor: float = 1.0, name: str = "perplexity") -> None:
        if max_chars < 2:
            raise ValueError("max_chars must be at least 2")
        if verse_factor < 1.0:
            raise ValueError("verse_factor must be at least 1")
        self.name, self.model_path, self.max_percentile, self.factor = name, model_path, max_percentile, factor
        self.max_ppl, self.max_chars, self.kana_fold, self.verse_factor = max_ppl, max_chars, kana_fold, verse_factor

    @property
    def model(self):
        return load_model(self.model_path)

    def sample(self, text: str) -> str:
        """The text, or for a longer one its first 2/3 and last 1/3 of `max_chars` characters (junk is often
        appended at the end)."""
        if len(text) <= self.max_chars:
            return text
        head = self.max_chars * 2 // 3
        return text[:head] + "\n" + text[len(text) - (self.max_chars - head) :]

    def limit(self) -> float:
        if self.max_ppl is not None:
            return self.max_ppl
        return self.model.percentiles[f"{self.max_percentile:g}"] * self.factor

    def apply(self, doc: Document) -> Verdict | None:
        return self.apply_batch([doc])[0]

    def apply_batch(self, docs: Sequence[Document]) -> list[Verdict | None]:
        model, limit = self.model, self.limit()
        samples = [self.sample(d.text) for d in docs]
        ppl = model.perplexities(samples)
        over = [i for i, p in enumerate(ppl.tolist()) if p > limit]
        if over and self.kana_fold:
            folded = model.perplexities([fold_katakana(samples[i]) for i in over])
            ppl[over] = np.minimum(ppl[over], folded)
        limits = [limit] * len(docs)
        if self.verse_factor > 1.0:
            for i in over:
                if is_verse(docs[i]):
                    limits[i] = limit * self.verse_factor
        pts = sorted((float(k), v) for k, v in model.percentiles.items())
        pct = np.interp(ppl, [v for _, v in pts], [q for q, _ in pts], left=0.0, right=100.0)  # = percentile_of
        cut = [model.percentiles["30"], model.percentiles["60"]]  # = bucket: head / middle / tail
        buckets = np.array(["head", "middle", "tail"])[np.searchsorted(cut, ppl, side="right")]
        out: list[Verdict | None] = []
        for d, p, q, b, lim in zip(docs, ppl.tolist(), pct.tolist(), buckets.tolist(), limits):
            d.values["ppl"] = round(p, 1)
            d.values["ppl_pct"] = round(q, 1)
            d.values["ppl_bucket"] = b
            out.append((self.name, f"perplexity {p:.0f} > {lim:.0f}") if p > lim else None)
        return out
