"""Per-step byte counts of `run_pipeline` (kept as a running total) against sums re-measured at every step."""

from jpcurate.document import Document
from jpcurate.pipeline import Step, run_pipeline


class Shorten(Step):
    """Cleaner: drops the first character of texts starting with "x" (a new string), leaves the others as they are
    (the same object), rejects texts starting with "xx" after shortening them."""

    modifies_text = True

    def __init__(self, name: str) -> None:
        self.name = name

    def apply(self, doc):
        if doc.text.startswith("x"):
            doc.set_text(doc.text[1:])
            if doc.text.startswith("x"):
                return (self.name, "xx")
        return None


class Drop(Step):
    name = "drop"

    def __init__(self, marker: str) -> None:
        self.marker, self.name = marker, f"drop_{marker}"

    def apply(self, doc):
        return (self.name, "marker") if self.marker in doc.text else None


def reference(steps, texts):
    """(docs_in, bytes_in, docs_out, bytes_out) per step, every sum taken afresh over the live documents."""
    docs = [Document(str(i), t) for i, t in enumerate(texts)]
    live, rows = docs, []
    for step in steps:
        size_in = sum(len(d.text.encode("utf-8", "surrogatepass")) for d in live)
        out = [d for d in live if step.apply(d) is None]
        rows.append((len(live), size_in, len(out), sum(len(d.text.encode("utf-8", "surrogatepass")) for d in out)))
        live = out
    return rows


def test_step_byte_counts_equal_sums_measured_at_every_step():
    texts = ["x吾輩は猫である", "xxだめ", "そのまま残る", "drop me 猫", "xdrop後で", "\ud800壊れた", "", "xあ"]
    steps = [Drop("zz"), Shorten("shorten1"), Drop("drop"), Shorten("shorten2"), Drop("猫")]
    _, _, stats = run_pipeline(steps, [Document(str(i), t) for i, t in enumerate(texts)])
    got = [(s.docs_in, s.bytes_in, s.docs_out, s.bytes_out) for s in stats.steps.values()]
    assert got == reference(steps, texts)
    assert got[1][0] > got[1][2] and got[1][1] - got[1][3] > len("xxだめ".encode())  # shortened and rejected
