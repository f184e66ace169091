"""Evaluation-set contamination: the share of evaluation examples whose character 13-grams are found in a
training corpus: JSONL files (or directories of them) of pretraining text (`text`), chat records (`messages`),
instruction records (`instruction`/`input`/`output`) or preference pairs (`prompt`/`chosen`/`rejected`), the
shapes the project trains on.

The evaluation side is small, so its 13-grams are collected in a set and the corpus is streamed once past it
(memory is bounded by the evaluation sets, not the corpus). Whitespace is removed and the text NFKC-normalised
on both sides, so a reflowed or full-width copy still matches.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path

N = 13


def _clean(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def char_ngrams(text: str, n: int = N) -> set[str]:
    t = _clean(text)
    return {t[i:i + n] for i in range(len(t) - n + 1)}


TEXT_FIELDS = ("text", "messages", "instruction", "input", "output", "prompt", "chosen", "rejected")


def _strings(value: object) -> Iterator[str]:
    """Every string in a field: a string, a list of strings or of chat messages ({"role", "content"})."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v["content"] if isinstance(v, dict) and "content" in v else v)


def record_text(record: object) -> str:
    """The trainable text of one record, its fields joined by newlines; a KeyError when it has none of them."""
    if not isinstance(record, dict) or not any(k in record for k in TEXT_FIELDS):
        raise KeyError(f"none of {', '.join(TEXT_FIELDS)}")
    return "\n".join(s for k in TEXT_FIELDS for s in _strings(record.get(k)))


def corpus_texts(paths: Iterable[str | Path]) -> Iterator[str]:
    """The text of every record of every JSONL file given (a directory: its *.jsonl files, recursively)."""
    for p in map(Path, paths):
        files = sorted(p.rglob("*.jsonl")) if p.is_dir() else [p]
        if not files or not all(f.is_file() for f in files):
            raise FileNotFoundError(f"{p}: no JSONL corpus file there")
        for f in files:
            with f.open(encoding="utf-8") as fh:
                for i, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        text = record_text(json.loads(line))
                    except (json.JSONDecodeError, KeyError, TypeError) as e:
                        raise ValueError(f"{f}:{i}: expected a training record: a JSON object with a text field "
                                         f"({e})") from None
                    yield text


def overlap(examples: dict[str, str], corpus: Iterable[str], n: int = N) -> dict[str, float]:
    """{example id: share of its n-grams found in the corpus} (0.0 for an example shorter than n)."""
    grams = {k: char_ngrams(v, n) for k, v in examples.items()}
    wanted = set().union(*grams.values()) if grams else set()
    found: set[str] = set()
    for text in corpus:
        t = _clean(text)
        found.update(g for g in (t[i:i + n] for i in range(len(t) - n + 1)) if g in wanted)
    return {k: (len(g & found) / len(g) if g else 0.0) for k, g in grams.items()}


def contamination_report(tasks: dict[str, dict[str, str]], corpus_paths: list[str | Path], *,
                         threshold: float = 0.5, n: int = N) -> dict[str, dict]:
    """Per task: examples checked, how many overlap above `threshold`, that share and the mean overlap."""
    flat = {f"{task}\x00{k}": v for task, ex in tasks.items() for k, v in ex.items()}
    scores = overlap(flat, corpus_texts(corpus_paths), n)
    out = {}
    for task, ex in tasks.items():
        vals = [scores[f"{task}\x00{k}"] for k in ex]
        hits = sum(v > threshold for v in vals)
        out[task] = {"examples": len(vals), "contaminated": hits, "share": hits / len(vals) if vals else 0.0,
                     "mean_overlap": sum(vals) / len(vals) if vals else 0.0, "threshold": threshold, "n": n}
    return out
