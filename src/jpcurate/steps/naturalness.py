"""`NaturalnessFilter`: the character LM as a pipeline step (batch-vectorised perplexity)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jpcurate.document import Document
from jpcurate.lm import load_model
from jpcurate.pipeline import Step, Verdict


class NaturalnessFilter(Step):
    """Stores `ppl`, `ppl_pct` (percentile in the reference distribution) and `ppl_bucket` (head/middle/tail);
    rejects (`perplexity`) when the perplexity is above the reference's `max_percentile` percentile times
    `factor` (or above `max_ppl` when given). `max_chars` bounds the cost per document: longer documents are
    scored on a head-and-tail sample of that many characters."""

    def __init__(self, *, model_path: str | None = None, max_percentile: float = 99.0, factor: float = 1.0,
                 max_ppl: float | None = None, max_chars: int = 20_000, name: str = "perplexity") -> None:
        if max_chars < 2:
            raise ValueError("max_chars must be at least 2")
        self.name, self.model_path, self.max_percentile, self.factor = name, model_path, max_percentile, factor
        self.max_ppl, self.max_chars = max_ppl, max_chars

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
        ppl = model.perplexities([self.sample(d.text) for d in docs])
        pts = sorted((float(k), v) for k, v in model.percentiles.items())
        pct = np.interp(ppl, [v for _, v in pts], [q for q, _ in pts], left=0.0, right=100.0)  # = percentile_of
        cut = [model.percentiles["30"], model.percentiles["60"]]  # = bucket: head / middle / tail
        buckets = np.array(["head", "middle", "tail"])[np.searchsorted(cut, ppl, side="right")]
        out: list[Verdict | None] = []
        for d, p, q, b in zip(docs, ppl.tolist(), pct.tolist(), buckets.tolist()):
            d.values["ppl"] = round(p, 1)
            d.values["ppl_pct"] = round(q, 1)
            d.values["ppl_bucket"] = b
            out.append((self.name, f"perplexity {p:.0f} > {limit:.0f}") if p > limit else None)
        return out
