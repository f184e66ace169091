"""What the team read by eye, measured on every generation: repetition, diversity, runaway answers, prompt echo,
template leakage and (for extractive QA) answers that are not a span of the context.

Units: Japanese has no word spaces, so every n-gram metric is computed on characters and, where the token ids are
known, on tokenizer tokens; the report names the unit.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence


def ngrams(seq: Sequence, n: int) -> list[tuple]:
    return [tuple(seq[i:i + n]) for i in range(len(seq) - n + 1)]


def seq_rep_n(seq: Sequence, n: int) -> float:
    """seq-rep-n of Welleck et al. 2019 (arXiv:1908.04319), as `pct_repeat_{n}grams` in facebookresearch/
    unlikelihood_training `custom/metrics.py`: 1 - |unique n-grams| / |n-grams| of one sequence (a string is a
    sequence of characters). 0.0 for a sequence shorter than n (nothing repeats)."""
    grams = ngrams(seq, n)
    return 0.0 if not grams else 1.0 - len(set(grams)) / len(grams)


def distinct_n(seqs: Sequence[Sequence], n: int) -> float:
    """distinct-n of Li et al. 2016 (arXiv:1510.03055), corpus level: the number of distinct n-grams over all
    sequences divided by the total number of generated units (tokens or characters), as the paper defines it
    (not by the number of n-grams). 0.0 for an empty corpus."""
    total = sum(len(s) for s in seqs)
    distinct = {g for s in seqs for g in ngrams(s, n)}
    return len(distinct) / total if total else 0.0


def _clean(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def echoes_prompt(answer: str, question: str, *, window: int = 20, min_chars: int = 8) -> bool:
    """The answer repeats the question: it contains `window` consecutive characters of it (the whole question when
    shorter), after NFKC and removing whitespace. Questions under `min_chars` characters are not checked (a short
    question's words are legitimately reused)."""
    q, a = _clean(question), _clean(answer)
    if len(q) < min_chars:
        return False
    k = min(window, len(q))
    return any(q[i:i + k] in a for i in range(len(q) - k + 1))


# Markers of a prompt format inside an answer: instruction-format headings, role tags of common chat templates
# (ours: <|user|> ..., Llama-2: [INST] <<SYS>>, ChatML: <|im_start|>), and "User:"-style prefixes at a line start.
_USER_MARKERS = (
    r"###\s*(指示|入力|Instruction|Input|User|ユーザー|質問)\s*[:：]", r"<\|user\|>", r"<\|system\|>",
    r"\[INST\]", r"<<SYS>>", r"<\|im_start\|>\s*user", r"^\s*(USER|User|ユーザー|ユーザ|Human|質問者)\s*[:：]",
)
_ANY_MARKERS = _USER_MARKERS + (
    r"###", r"<\|assistant\|>", r"<\|end\|>", r"\[/INST\]", r"<</SYS>>", r"<\|im_start\|>", r"<\|im_end\|>",
    r"^\s*(ASSISTANT|Assistant|アシスタント|システム|System)\s*[:：]",
)
_USER_RE = re.compile("|".join(f"(?:{m})" for m in _USER_MARKERS), re.MULTILINE)
_ANY_RE = re.compile("|".join(f"(?:{m})" for m in _ANY_MARKERS), re.MULTILINE)


def leaks_template(answer: str) -> bool:
    """The answer contains a template marker: "###", a role tag or a role prefix at a line start."""
    return _ANY_RE.search(answer) is not None


def leaks_next_turn(answer: str) -> bool:
    """The answer goes on to write the user's next turn (a user-side marker: "### 指示:", "<|user|>", "[INST]",
    "ユーザー:" at a line start, ...)."""
    return _USER_RE.search(answer) is not None


def not_a_span(answer: str, context: str) -> bool:
    """Extractive QA grounding failure: the (post-processed) answer is empty or is not a substring of the context,
    both NFKC-normalised."""
    a = unicodedata.normalize("NFKC", answer).strip()
    return not a or a not in unicodedata.normalize("NFKC", context)


def generation_flags(answer: str, question: str, *, finish_reason: str | None) -> dict:
    """Per-answer booleans the report turns into shares (hit_max_tokens is None when the backend did not say)."""
    return {
        "hit_max_tokens": None if finish_reason is None else finish_reason == "length",
        "echo": echoes_prompt(answer, question),
        "template_leak": leaks_template(answer),
        "next_turn_leak": leaks_next_turn(answer),
    }


def repetition_stats(text: str, token_ids: Sequence[int] | None = None) -> dict:
    """seq-rep-1..4 of one answer on characters (`char_seq_rep_n`) and, given its token ids, on tokens."""
    out = {f"char_seq_rep_{n}": seq_rep_n(text, n) for n in range(1, 5)}
    if token_ids is not None:
        out |= {f"tok_seq_rep_{n}": seq_rep_n(list(token_ids), n) for n in range(1, 5)}
    return out
