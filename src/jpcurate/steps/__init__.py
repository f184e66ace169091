"""Steps: every filter and cleaner, one concept per module, each a small named object (`jpcurate.pipeline.Step`).

Rules (`Rule` in `base`: `measure(doc) -> float`, bounds `lo`/`hi`, a `name` that is both the key of the value in
`doc.values` and the rejection code) grouped by what they look at: characters (`charstats`), lines and sentences
(`lines`), repetition (`repetition`), words (`words`). Cleaners and filters with their own logic: `normalize`
(NFKC, markup, whitespace), `boilerplate` (navigation and footer lines), `langid` (script-ratio language id),
`ngwords` (NG word lists), `urlrules` (URL/domain rules), `pii` (masking), `naturalness` (the character LM's
perplexity; the model is `jpcurate.lm`), `dedup` (corpus-level dedup steps for pipeline TOML files).
"""

from jpcurate.steps.base import Rule

__all__ = ["Rule"]
