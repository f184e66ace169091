"""Dedup steps for a pipeline.toml: corpus-level steps that follow the per-document steps.

    [[steps]]
    preset = "ja-web"
    [[steps]]
    type = "RepeatedLines"     # cc_net-style line removal
    min_docs = 20
    [[steps]]
    type = "NearDedup"         # exact + MinHash near-duplicates (ExactDedup: exact only)
    threshold = 0.8
    ngram = 5

`jpcurate run --config` runs the per-document steps first (output in ``<output>/filtered/``), then one dedup run over
the kept records into ``<output>/`` with the options of all dedup steps combined (`jpcurate.cli.run`).
"""

from __future__ import annotations

from jpcurate.pipeline import Step


class CorpusStep(Step):
    corpus_level = True

    def apply(self, doc):
        raise TypeError(f"{self.name} is a corpus-level dedup step; run it through `jpcurate run --config`")

    def options(self) -> dict:
        return {}


class ExactDedup(CorpusStep):
    def __init__(self, name: str = "exact_dedup") -> None:
        self.name = name

    def options(self) -> dict:
        return {"near": False}


class NearDedup(CorpusStep):
    def __init__(self, threshold: float = 0.8, ngram: int = 5, num_perm: int = 128, unit: str = "char",
                 verify: bool = True, partitions: int = 16, name: str = "near_dedup") -> None:
        self.threshold, self.ngram, self.num_perm, self.unit = threshold, ngram, num_perm, unit
        self.verify, self.partitions, self.name = verify, partitions, name

    def options(self) -> dict:
        return {"near": True, "threshold": self.threshold, "ngram": self.ngram, "num_perm": self.num_perm,
                "unit": self.unit, "verify": self.verify, "partitions": self.partitions}


class RepeatedLines(CorpusStep):
    def __init__(self, min_docs: int = 20, name: str = "repeated_lines") -> None:
        self.min_docs, self.name = min_docs, name

    def options(self) -> dict:
        return {"line_min_docs": self.min_docs}


def split_pipeline(pipeline) -> tuple[list, list[CorpusStep]]:
    doc_steps = [s for s in pipeline if not getattr(s, "corpus_level", False)]
    corpus = [s for s in pipeline if getattr(s, "corpus_level", False)]
    first = next(i for i, s in enumerate(pipeline) if getattr(s, "corpus_level", False))
    if any(not getattr(s, "corpus_level", False) for s in list(pipeline)[first:]):
        raise ValueError("dedup steps must come after every per-document step")
    return doc_steps, corpus
