"""The record every jpcurate step reads and writes.

A `Document` carries

- `id`: from the input's id field, or `"<source>:<line>"` when the input has none;
- `text`: the (possibly normalised) text; steps that clean text replace it;
- `meta`: every input field except the text field, unchanged and in input order (the id field included);
- `values`: what the steps measured (`{"hiragana_frac": 0.41, "lang": "ja", ...}`), written out under
  `"jpcurate"` so a user can re-threshold without re-running;
- `cache`: features computed from the current text and shared between steps (cleared by `set_text`);
- `reason` / `detail`: `None` while kept; on rejection `reason` is a stable code (`"<step>"` or
  `"<step>.<what>"`, e.g. `"ngwords.adult"`) used for statistics, and `detail` a readable explanation
  (`"ratio 0.12 > 0.05"`).

`Malformed` stands for an input record that could not become a Document (bad JSON, invalid UTF-8, missing or
non-string text): it goes to the quarantine output with its raw bytes (as text, errors replaced) and a reason.

`to_record()` gives the output dict: every input field, the text field replaced by the cleaned text, plus
`"jpcurate": {"values": ..., "reason": ..., "detail": ...}`; a rejected record also gets a top-level `"reason"`
(unless the input already had a field of that name, which is kept as is).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

OUR_KEY = "jpcurate"


@dataclass(slots=True)
class Document:
    id: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    detail: str | None = None
    text_field: str = "text"
    cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # per-text features, not output

    def set_text(self, text: str) -> None:
        """Replace the text (cleaners) and drop features computed from the old one."""
        if text is not self.text:
            self.text = text
            self.cache.clear()

    @property
    def kept(self) -> bool:
        return self.reason is None

    def reject(self, reason: str, detail: str | None = None) -> None:
        self.reason = reason
        self.detail = detail

    @classmethod
    def from_record(
        cls, record: dict[str, Any], *, text_field: str = "text", id_field: str = "id", fallback_id: str = ""
    ) -> Document:
        """Build a Document from a parsed input record; raises `ValueError` naming the problem when it cannot."""
        if not isinstance(record, dict):
            raise ValueError(f"record is a {type(record).__name__}, not an object")
        if text_field not in record:
            raise ValueError(f"missing text field {text_field!r}")
        text = record[text_field]
        if not isinstance(text, str):
            raise ValueError(f"text field {text_field!r} is {type(text).__name__}, not a string")
        raw_id = record.get(id_field)
        doc_id = str(raw_id) if raw_id is not None else fallback_id
        meta = {k: v for k, v in record.items() if k != text_field}
        prior = meta.pop(OUR_KEY, None)  # a re-run over our own output: keep the earlier measurements under meta
        if prior is not None:
            meta[f"{OUR_KEY}_previous"] = prior
        return cls(id=doc_id, text=text, meta=meta, text_field=text_field)

    def to_record(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.meta)
        out[self.text_field] = self.text
        ours: dict[str, Any] = {"values": self.values}
        if self.reason is not None:
            ours["reason"] = self.reason
            ours["detail"] = self.detail
            out.setdefault("reason", self.reason)
        out[OUR_KEY] = ours
        return out


@dataclass(slots=True)
class Malformed:
    """An input record that could not be parsed into a Document; written to quarantine, counted, never dropped."""

    source: str
    position: int
    reason: str
    raw: str

    def to_record(self) -> dict[str, Any]:
        return {"source": self.source, "position": self.position, "reason": self.reason, "raw": self.raw}
