"""Training records from files: SFT conversations and preference pairs read from JSONL or Parquet, the chat template
to train with, and the fixed prompts of the sample generations.

SFT records: {"messages": [{"role", "content"}, ...]} or {"instruction", "input" (optional), "output"}.
Preference records: {"prompt": str or messages, "chosen", "rejected"} or {"messages": prompt turns, "chosen",
"rejected"}; chosen/rejected are strings or TRL's conversational form [{"role": "assistant", "content": ...}].
A record of the wrong shape raises DataError("malformed_record"), counted like every other drop.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from jpalign.encode import encode_chat
from jpalign.templates import CHAT_TEMPLATES, INSTRUCTION_JA, ChatTemplate, DataError, instruction_messages

# Fixed prompts of the sample generations at each eval (repetition and stopping show up early in these).
SAMPLE_QUESTIONS = (
    "日本の首都はどこですか？",
    "富士山について二文で説明してください。",
    "「吾輩は猫である」の作者は誰ですか？",
    "健康のために毎日できることを三つ挙げてください。",
)



@dataclass
class ReadReport:
    """Records read from the files, lines that were not JSON objects, and (after encoding) kept/dropped."""

    read: int = 0
    dropped: Counter = field(default_factory=Counter)



def read_records(path: str | Path, report: ReadReport | None = None) -> list[dict]:
    """Every record of a .jsonl / .json (one object per line) or .parquet file; an unreadable line is counted
    as `bad_json` in `report` (an error when no report is given)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such data file")
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as e:
            raise ImportError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow)") from e
        rows = pq.read_table(path).to_pylist()
        if report is not None:
            report.read += len(rows)
        return rows
    rows = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if not line.strip():
            continue
        if report is not None:
            report.read += 1
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict):
                raise ValueError("not a JSON object")
        except ValueError as e:
            if report is None:
                raise ValueError(f"{path}:{i + 1}: {e}") from e
            report.dropped["bad_json"] += 1
            continue
        rows.append(rec)
    return rows


def sft_messages(record: dict) -> list[dict]:
    """The conversation of one SFT record (validated later, by the template)."""
    if isinstance(record.get("messages"), list):
        return record["messages"]
    if isinstance(record.get("instruction"), str) and "output" in record:
        output = record["output"]
        if not isinstance(output, str):
            raise DataError("non_string_content", f"output is {type(output).__name__}")
        return instruction_messages(record["instruction"], output, record.get("input") or "")
    raise DataError("malformed_record", f"neither 'messages' nor 'instruction'/'output' (keys {sorted(record)[:6]})")


def _response_text(value: object, name: str) -> str:
    """A response given as a string or as [{"role": "assistant", "content": str}] (TRL's conversational form)."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        if value[0].get("role") != "assistant":
            raise DataError("unknown_role", f"{name} is a message with role {value[0].get('role')!r}, not assistant")
        value = value[0].get("content")
    if not isinstance(value, str):
        raise DataError("malformed_record", f"{name} is {type(value).__name__}, not a string")
    return value


def preference_record(record: dict) -> dict:
    """{"prompt": messages, "chosen": str, "rejected": str} for jpalign.encode_pairs."""
    prompt = record.get("prompt", record.get("messages"))
    if isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}]
    if not isinstance(prompt, list) or "chosen" not in record or "rejected" not in record:
        raise DataError("malformed_record",
                        f"need prompt (or messages), chosen and rejected (keys {sorted(record)[:6]})")
    return {"prompt": prompt, "chosen": _response_text(record["chosen"], "chosen"),
            "rejected": _response_text(record["rejected"], "rejected")}


def convert_records(records: list[dict], convert, report: ReadReport) -> list[tuple[int, object]]:
    """(record index, converted) for each record `convert` accepts; DataErrors counted by reason in `report`."""
    out = []
    for i, rec in enumerate(records):
        try:
            out.append((i, convert(rec)))
        except DataError as e:
            report.dropped[e.reason] += 1
    return out


def choose_template(name: str, tokenizer_template: str | None, *, override: bool = False) -> ChatTemplate:
    """The template to train with. "auto": the tokenizer's own when it is one of CHAT_TEMPLATES, INSTRUCTION_JA when
    the tokenizer has none. A named template that differs from the tokenizer's existing one is an error unless
    `override` (the export would otherwise disagree with what the checkpoint was trained on)."""
    known = {t.jinja: t for t in CHAT_TEMPLATES.values()}
    if name == "auto":
        if not tokenizer_template:
            return INSTRUCTION_JA
        if tokenizer_template in known:
            return known[tokenizer_template]
        raise ValueError("the tokenizer's chat template is not one jpalign can label (assistant spans unknown); pass "
                         f"--template {' or '.join(CHAT_TEMPLATES)} with --override_template true to replace it")
    if name not in CHAT_TEMPLATES:
        raise ValueError(f"unknown --template {name!r}; choose auto or one of {sorted(CHAT_TEMPLATES)}")
    chosen = CHAT_TEMPLATES[name]
    if tokenizer_template and tokenizer_template != chosen.jinja and not override:
        what = known[tokenizer_template].name if tokenizer_template in known else "a custom template"
        raise ValueError(f"--template {name} differs from the chat template the checkpoint's tokenizer carries "
                         f"({what}); training on another format than it was tuned with is usually a mistake: pass "
                         "--override_template true to replace it")
    return chosen



def sample_prompts(tokenizer, template: ChatTemplate) -> tuple[list[str], list[list[int]]]:
    """SAMPLE_QUESTIONS and their token ids as the model sees them at inference (template + generation prompt)."""
    ids = [encode_chat(tokenizer, [{"role": "user", "content": q}], template, add_generation_prompt=True).input_ids
           for q in SAMPLE_QUESTIONS]
    return list(SAMPLE_QUESTIONS), ids
