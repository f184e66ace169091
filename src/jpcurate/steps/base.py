"""`Rule`: measure one value, store it in `doc.values[name]`, reject with code `name` when out of bounds."""

from __future__ import annotations

from collections.abc import Sequence

from jpcurate.document import Document
from jpcurate.pipeline import Step, Verdict
from jpcurate.text import features


class Rule(Step):
    """Subclasses implement `measure`; `lo`/`hi` are inclusive bounds of the kept range (None: no bound).

    `strict_hi=True` rejects at `value >= hi` (peers written as "keep if value < hi").
    """

    name = "rule"
    lo: float | None = None
    hi: float | None = None
    strict_hi: bool = False
    strict_lo: bool = False

    def __init__(self, lo: float | None = None, hi: float | None = None, *, name: str | None = None,
                 strict_hi: bool = False, strict_lo: bool = False) -> None:
        if name is not None:
            self.name = name
        self.lo, self.hi, self.strict_hi, self.strict_lo = lo, hi, strict_hi, strict_lo

    def measure(self, doc: Document) -> float:
        raise NotImplementedError

    def prepare(self, docs: Sequence[Document]) -> None:
        """Batch hook: compute shared features for all documents at once (vectorised) before `apply`."""
        features.prepare_counts(list(docs))

    def apply_batch(self, docs: Sequence[Document]) -> list[Verdict | None]:
        self.prepare(docs)
        return [self.apply(d) for d in docs]

    def apply(self, doc: Document) -> Verdict | None:
        v = self.measure(doc)
        doc.values[self.name] = round(v, 4) if isinstance(v, float) else v
        return self.judge(v)

    def judge(self, v: float) -> Verdict | None:
        if self.lo is not None and (v <= self.lo if self.strict_lo else v < self.lo):
            return (self.name, f"{self.name} {_fmt(v)} {'<=' if self.strict_lo else '<'} {_fmt(self.lo)}")
        if self.hi is not None and (v >= self.hi if self.strict_hi else v > self.hi):
            return (self.name, f"{self.name} {_fmt(v)} {'>=' if self.strict_hi else '>'} {_fmt(self.hi)}")
        return None

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"


def _fmt(v: float) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def ratio(a: float, b: float) -> float:
    return a / b if b else 0.0
