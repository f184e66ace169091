"""Quality rules: small named objects that measure one value, store it on the document and keep or reject.

Every rule is a `Rule` (see `base`): `measure(doc) -> float`, bounds `lo`/`hi` (None = unbounded), a `name`
that is both the key of the value in `doc.values` and the rejection code, and a detail string naming the value and
the bound it broke. Modules group rules by what they look at: characters (`charstats`), lines and sentences
(`lines`), repetition (`repetition`), words (`words`).
"""

from jpcurate.rules.base import Rule

__all__ = ["Rule"]
