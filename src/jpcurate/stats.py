"""Run statistics: counts, bytes, removals per reason, value histograms; mergeable and JSON-serialisable.

`Stats` is what `run_pipeline` returns for one batch (a "delta") and what the runners add up over shards
(`total.merge(delta)`); merging is commutative and associative, so any engine that feeds the same batches gets
the same totals. `stats.json` is `Stats.to_dict()`; `check_identity()` enforces
`input = kept + rejected + quarantined` (documents) at the end of every run.

Histograms use fixed bins so that they merge: values in [0, 1] go to 20 bins of width 0.05 (key = lower edge);
larger values to powers of two (key `"2^k"` for [2^k, 2^(k+1))); negative values to `"<0"`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

EXAMPLES_PER_REASON = 3


def histogram_bin(v: float) -> str:
    if v != v:  # NaN
        return "nan"
    if v < 0:
        return "<0"
    if v <= 1.0:
        return f"{min(math.floor(v * 20), 19) / 20:.2f}"
    if math.isinf(v):
        return "inf"
    return f"2^{math.floor(math.log2(v))}"


def quarantine_key(reason: str) -> str:
    """The `quarantine_reasons` key of a quarantine reason: the kind, without the position or parser message."""
    if reason.startswith("malformed JSON"):
        return "malformed JSON"
    if reason.startswith("invalid UTF-8"):
        return "invalid UTF-8"
    if reason.startswith("unreadable input"):
        return "unreadable input file (rest of file skipped)"
    return reason


def _add_counts(a: dict[str, int], b: dict[str, int]) -> None:
    for k, v in b.items():
        a[k] = a.get(k, 0) + v


@dataclass
class StepStats:
    name: str
    docs_in: int = 0
    docs_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0

    def merge(self, other: StepStats) -> None:
        self.docs_in += other.docs_in
        self.docs_out += other.docs_out
        self.bytes_in += other.bytes_in
        self.bytes_out += other.bytes_out


@dataclass
class Stats:
    input: int = 0
    kept: int = 0
    rejected: int = 0
    quarantined: int = 0
    bytes_in: int = 0
    bytes_kept: int = 0
    steps: dict[str, StepStats] = field(default_factory=dict)  # insertion order = pipeline order
    reasons: dict[str, int] = field(default_factory=dict)
    reason_bytes: dict[str, int] = field(default_factory=dict)  # UTF-8 bytes of the rejected texts, per reason
    examples: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    histograms: dict[str, dict[str, int]] = field(default_factory=dict)
    sums: dict[str, int] = field(default_factory=dict)  # integer counters (PII masks per kind, lines removed, ...)
    blank_lines: int = 0

    def step(self, name: str) -> StepStats:
        s = self.steps.get(name)
        if s is None:
            s = self.steps[name] = StepStats(name)
        return s

    def add_rejection(self, reason: str, doc_id: str, detail: str | None, nbytes: int = 0) -> None:
        self.reasons[reason] = self.reasons.get(reason, 0) + 1
        self.reason_bytes[reason] = self.reason_bytes.get(reason, 0) + nbytes
        ex = self.examples.setdefault(reason, [])
        ex.append({"id": doc_id, "detail": detail or ""})
        if len(ex) > EXAMPLES_PER_REASON:
            ex.sort(key=lambda e: (e["id"], e["detail"]))
            del ex[EXAMPLES_PER_REASON:]

    def add_quarantine(self, reason: str) -> None:
        key = quarantine_key(reason)
        self.quarantine_reasons[key] = self.quarantine_reasons.get(key, 0) + 1
        self.quarantined += 1
        self.input += 1

    def add_value(self, name: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return
        h = self.histograms.setdefault(name, {})
        b = histogram_bin(float(value))
        h[b] = h.get(b, 0) + 1

    def add_values(self, name: str, values: list[float]) -> None:
        """`add_value` for many values at once (vectorised binning; same bins)."""

        a = np.asarray(values, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            code = np.where(a <= 1.0, np.minimum(np.floor(a * 20), 19), 1000 + np.floor(np.log2(np.abs(a) + 1e-300)))
        code = np.where(np.isinf(a), 10_000, code)
        code = np.where(a < 0, -2, code)
        code = np.where(np.isnan(a), -3, code)
        h = self.histograms.setdefault(name, {})
        for c, n in zip(*np.unique(code, return_counts=True)):
            c = int(c)
            key = {-3: "nan", -2: "<0", 10_000: "inf"}.get(c) or (f"{c / 20:.2f}" if c < 1000 else f"2^{c - 1000}")
            h[key] = h.get(key, 0) + int(n)

    def merge(self, other: Stats) -> Stats:
        for attr in ("input", "kept", "rejected", "quarantined", "bytes_in", "bytes_kept", "blank_lines"):
            setattr(self, attr, getattr(self, attr) + getattr(other, attr))
        for name, s in other.steps.items():
            self.step(name).merge(s)
        _add_counts(self.reasons, other.reasons)
        _add_counts(self.reason_bytes, other.reason_bytes)
        _add_counts(self.quarantine_reasons, other.quarantine_reasons)
        _add_counts(self.sums, other.sums)
        for reason, ex in other.examples.items():
            both = self.examples.get(reason, []) + ex  # keep the smallest ids: the result is order-independent
            self.examples[reason] = sorted(both, key=lambda e: (e["id"], e["detail"]))[:EXAMPLES_PER_REASON]
        for name, h in other.histograms.items():
            _add_counts(self.histograms.setdefault(name, {}), h)
        return self

    def check_identity(self) -> None:
        """Raise when a record went missing: input = kept + rejected + quarantined, reasons add up to rejected."""
        if self.input != self.kept + self.rejected + self.quarantined:
            raise AssertionError(
                f"accounting identity broken: input {self.input} != kept {self.kept} + rejected {self.rejected}"
                f" + quarantined {self.quarantined}"
            )
        if sum(self.reasons.values()) != self.rejected:
            raise AssertionError(f"rejection reasons sum to {sum(self.reasons.values())}, rejected {self.rejected}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "documents": {
                "input": self.input,
                "kept": self.kept,
                "rejected": self.rejected,
                "quarantined": self.quarantined,
                "identity_holds": self.input == self.kept + self.rejected + self.quarantined,
            },
            "bytes": {"input": self.bytes_in, "kept": self.bytes_kept},
            "blank_lines_skipped": self.blank_lines,
            "steps": [vars(s).copy() for s in self.steps.values()],
            "reasons": dict(sorted(self.reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
            "reason_bytes": {k: self.reason_bytes.get(k, 0) for k in sorted(self.reasons, key=lambda k: (
                -self.reasons[k], k))},
            "examples": {k: self.examples[k] for k in sorted(self.examples)},
            "quarantine_reasons": dict(sorted(self.quarantine_reasons.items())),
            "sums": dict(sorted(self.sums.items())),
            "histograms": {k: dict(sorted(v.items(), key=lambda kv: _bin_order(kv[0]))) for k, v in
                           sorted(self.histograms.items())},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Stats:
        docs = d["documents"]
        s = cls(
            input=docs["input"], kept=docs["kept"], rejected=docs["rejected"], quarantined=docs["quarantined"],
            bytes_in=d["bytes"]["input"], bytes_kept=d["bytes"]["kept"], blank_lines=d.get("blank_lines_skipped", 0),
        )
        for st in d.get("steps", []):
            s.steps[st["name"]] = StepStats(**st)
        s.reasons = dict(d.get("reasons", {}))
        s.reason_bytes = dict(d.get("reason_bytes", {}))
        s.examples = {k: list(v) for k, v in d.get("examples", {}).items()}
        s.quarantine_reasons = dict(d.get("quarantine_reasons", {}))
        s.sums = dict(d.get("sums", {}))
        s.histograms = {k: dict(v) for k, v in d.get("histograms", {}).items()}
        return s


def _bin_order(key: str) -> float:
    if key == "<0":
        return -1.0
    if key.startswith("2^"):
        return 2.0 ** int(key[2:])
    try:
        return float(key)
    except ValueError:
        return math.inf
