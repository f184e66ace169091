"""Text primitives the steps share: character classes (`charclass`), fast NFKC (`nfkc`), per-document features
computed once per batch (`features`), word-list matching (`wordmatch`). No step logic here."""
