"""Pipeline = an ordered list of steps; `run_pipeline` is the one function every engine calls.

A step is a small picklable object:

    class Step:
        name: str                        # unique in a pipeline; prefixes its rejection codes and values
        modifies_text: bool              # True for cleaners (byte counts are re-measured after them)
        def apply(self, doc) -> Verdict | None          # one document
        def apply_batch(self, docs) -> list[Verdict | None]   # a batch (default: apply() per document)
        def reasons(self) -> tuple[str, ...]             # the rejection codes it can emit

`Verdict = (reason_code, detail)`: `None` keeps the document; a verdict rejects it with `reason_code`
(e.g. `"hiragana_frac"`, `"ngwords.adult"`) and a readable `detail`. Steps write what they measure into
`doc.values` (integers named `n_*` are summed into `stats.sums`, other numbers binned into histograms) and cleaners
replace the text with `doc.set_text`. Steps hold only plain data (compiled patterns, numpy arrays,
word lists), so a pipeline pickles to worker processes or Ray tasks; heavy state (MeCab taggers) is created
lazily inside the worker.

    kept, rejected, delta = run_pipeline(pipeline, items)

takes Documents (and `Malformed` items, which count as quarantined), returns the kept and rejected Documents in
input order and a `Stats` delta; it is pure (no I/O, no clock), so the local runner and the Ray engine produce
identical records and statistics from the same input.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

from jpcurate.document import Document, Malformed
from jpcurate.stats import Stats

Verdict = tuple[str, str]


@runtime_checkable
class StepLike(Protocol):
    name: str

    def apply(self, doc: Document) -> Verdict | None: ...


class Step:
    """Base class: subclasses set `name` and implement `apply` (and may override `apply_batch`)."""

    name: str = "step"
    modifies_text: bool = False

    def apply(self, doc: Document) -> Verdict | None:
        raise NotImplementedError

    def apply_batch(self, docs: Sequence[Document]) -> list[Verdict | None]:
        return [self.apply(d) for d in docs]

    def reasons(self) -> tuple[str, ...]:
        """Every rejection code this step can emit (besides `<name>.error`); tests trigger each one."""
        return (self.name,)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"



class RebuiltStep(Step):
    """A step whose private `_` attributes (compiled matchers, loaded lists) derive from its public settings:
    only the settings are pickled (to worker processes and Ray tasks), and `_build()` recreates the rest."""

    def _build(self) -> None:
        raise NotImplementedError

    def __getstate__(self) -> dict:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def __setstate__(self, state: dict) -> None:
        vars(self).update(state)
        self._build()

class Pipeline(list):
    """A list of steps with a name (a preset name or a config file); checks that step names are unique."""

    def __init__(self, steps: Iterable[StepLike] = (), name: str = "custom") -> None:
        super().__init__(steps)
        self.name = name
        names = [s.name for s in self]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"pipeline {name!r}: step names must be unique, repeated: {sorted(dup)}")


def _nbytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _apply_step(step: StepLike, docs: list[Document]) -> list[Verdict | None]:
    """Batch call when the step has one; a step that raises rejects only the documents it raised on."""
    batch = getattr(step, "apply_batch", None)
    if batch is not None:
        try:
            return batch(docs)
        except Exception:  # noqa: BLE001 - isolate the offending document below
            pass
    out: list[Verdict | None] = []
    for d in docs:
        try:
            out.append(step.apply(d))
        except Exception as e:  # noqa: BLE001 - a bug or a pathological input must not stop the run
            out.append((f"{step.name}.error", f"{type(e).__name__}: {e}"[:300]))
    return out


def run_pipeline(
    steps: Sequence[StepLike], items: Iterable[Document | Malformed]
) -> tuple[list[Document], list[Document], Stats]:
    """Run `steps` over `items`; return (kept, rejected, stats delta). Malformed items are only counted here
    (`stats.quarantined`, `stats.quarantine_reasons`); writing them out is the engine's job."""
    stats = Stats()
    docs: list[Document] = []
    for item in items:
        if isinstance(item, Malformed):
            stats.add_quarantine(item.reason)
        else:
            docs.append(item)
    stats.input += len(docs)
    sizes = [_nbytes(d.text) for d in docs]
    stats.bytes_in += sum(sizes)
    live = list(range(len(docs)))
    live_bytes = stats.bytes_in  # UTF-8 bytes of the live documents, kept up to date instead of re-summed per step
    for step in steps:
        st = stats.step(step.name)
        st.docs_in += len(live)
        st.bytes_in += live_bytes
        modifies = getattr(step, "modifies_text", False)
        texts = [docs[i].text for i in live] if modifies else None
        verdicts = _apply_step(step, [docs[i] for i in live]) if live else []
        survivors = []
        for i, verdict in zip(live, verdicts):
            if verdict is None:
                survivors.append(i)
            else:
                docs[i].reject(verdict[0], verdict[1])
                live_bytes -= sizes[i]
        if modifies:
            for i, old, verdict in zip(live, texts, verdicts):
                if verdict is None and docs[i].text is not old:  # a survivor whose text changed: re-measure it
                    live_bytes -= sizes[i]
                    sizes[i] = _nbytes(docs[i].text)
                    live_bytes += sizes[i]
        live = survivors
        st.docs_out += len(live)
        st.bytes_out += live_bytes
    return _account(docs, sizes, stats)


def _account(docs: list[Document], sizes: list[int], stats: Stats) -> tuple[list[Document], list[Document], Stats]:
    """Split kept from rejected and add counts, reasons, PII/other `n_` counters and value histograms."""
    kept, rejected = [], []
    by_name: dict[str, list] = {}  # every value per name first, then sorted out per name (fewer checks per value)
    for i, d in enumerate(docs):
        for k, v in d.values.items():
            vs = by_name.get(k)
            if vs is None:
                by_name[k] = [v]
            else:
                vs.append(v)
        if d.reason is None:
            kept.append(d)
            stats.bytes_kept += sizes[i]
        else:
            rejected.append(d)
            stats.add_rejection(d.reason, d.id, d.detail, sizes[i])
    for k, vs in by_name.items():
        if k.startswith("n_"):
            ints = [v for v in vs if type(v) is int]
            if ints:
                stats.sums[k] = stats.sums.get(k, 0) + sum(ints)
            numbers = [v for v in vs if type(v) is float]
        else:
            numbers = [v for v in vs if type(v) is float or type(v) is int]
        if numbers:
            stats.add_values(k, numbers)
    stats.kept += len(kept)
    stats.rejected += len(rejected)
    return kept, rejected, stats


def value_thresholds(steps: Sequence[StepLike]) -> dict[str, dict[str, float]]:
    """The bounds of the measured values, for the report's plots: {value name: {"lo": x, "hi": y}}. A rule's value
    carries its step's name and `lo`/`hi`; a step with a `limit()` (the naturalness filter) bounds `ppl` from above."""
    out: dict[str, dict[str, float]] = {}
    for s in steps:
        bounds = {k: float(v) for k in ("lo", "hi") if type(v := getattr(s, k, None)) in (int, float)}
        if bounds:
            out[s.name] = bounds
        limit = getattr(s, "limit", None)
        if callable(limit):
            try:
                out["ppl"] = {"hi": float(limit())}
            except Exception:  # noqa: BLE001 - a model that cannot load: the plot goes without the line
                pass
    return out
