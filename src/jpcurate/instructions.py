"""Instruction-data curation: Alpaca, `messages` and chatbot-arena records to clean Japanese SFT/DPO records.

    from jpcurate.instructions import CurateOptions, curate, read_records
    result = curate(read_records(["alpaca.jsonl", "arena.jsonl"]), CurateOptions())
    result.sft, result.pairs, result.rejected, result.stats

Input formats (detected per record by its keys):
- Alpaca: `instruction`, optional `input`, `output` (the question is the instruction, then the input after a
  blank line);
- `messages`: an optional system turn, then user/assistant turns (the first user turn is the question, the last
  assistant turn the answer; the whole conversation is kept);
- chatbot-arena style: `question` with `answer`, or with `chosen` and `rejected` (also written as a DPO pair).

Steps, in order, each rejection counted under its reason:
1. `malformed`: not JSON, not an object, no known format, a field that is not a string, bad turn order;
2. normalise (`normalize`): CRLF to LF, control and zero-width characters removed, trailing spaces stripped per
   line, 3+ newlines to 2, ends stripped; NFKC only with `nfkc=True` (it would turn ！ into !). Indentation is
   kept (answers hold code);
3. `empty_question`, `empty_answer`;
4. `too_long`: question + answer(s) longer than `max_chars` characters;
5. `not_japanese`: jpcurate's script-ratio language id (jpcurate.steps.langid) must say `ja` (score >= 0.5) for the
   question, and for an answer of 20 or more letters (short closed answers such as 「東京」 have no kana);
6. `ngwords.<category>`: any hit of jpcurate's adult / discrimination / violence lists (jpcurate.steps.ngwords,
   script-boundary matching) in the question or an answer;
7. `identical_pair`: `chosen` equal to `rejected`;
8. `duplicate`: jpcurate's MinHash dedup (jpcurate.dedup.memory, character 5-grams, Jaccard >= `dedup_threshold`
   after exact-hash matching) over the normalised questions, with jpcurate's keep policy: the longest question of
   a cluster, then the earliest record.

Open vs closed QA (`classify`): closed when the answer is at most `closed_max_chars` (30) characters, one line,
and at most one sentence (no 。！？ before its last character) - a name, a number, a short phrase, as in
llm-jp-eval; everything else is open (explanations, lists, code, MT-Bench-like answers). A closed question gets
CLOSED_QA_INSTRUCTION appended on a new line (unless it already ends with it).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from jpcurate import Document
from jpcurate.dedup.memory import dedup_texts
from jpcurate.dedup.stages import DedupConfig
from jpcurate.steps.langid import identify
from jpcurate.steps.ngwords import NGWords

CLOSED_QA_INSTRUCTION = "答えだけを書き、それ以外には何も含めないでください。"
NG_CATEGORIES = ("adult", "discrimination", "violence")
INVISIBLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]")
LETTER = re.compile(r"[^\W\d_]")


class RecordError(ValueError):
    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason


@dataclass
class CurateOptions:
    max_chars: int = 4000
    dedup_threshold: float = 0.8
    closed_max_chars: int = 30
    add_closed_instruction: bool = True
    nfkc: bool = False
    lang_min_score: float = 0.5
    answer_lang_min_letters: int = 20


@dataclass
class Instruction:
    id: str
    format: str  # alpaca | messages | arena
    messages: list[dict]  # normalised conversation, ending with the assistant answer
    rejected: str | None = None
    meta: dict = field(default_factory=dict)

    @property
    def question(self) -> str:
        return next(m["content"] for m in self.messages if m["role"] == "user")

    @property
    def answer(self) -> str:
        return self.messages[-1]["content"]


def normalize(text: str, *, nfkc: bool = False) -> str:
    """The light normalisation above; idempotent."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = unicodedata.normalize("NFKC" if nfkc else "NFC", text)
    text = INVISIBLE.sub("", text)
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def read_records(paths: Iterable[str | Path]) -> Iterator[tuple[str, object]]:
    """(record id, parsed object or RecordError) for every non-blank line of JSONL files (or folders of them)."""
    for path in paths:
        path = Path(path)
        if path.is_dir():
            yield from read_records(sorted(path.glob("*.jsonl")))
            continue
        with open(path, "rb") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                rid = f"{path.name}:{n}"
                try:
                    yield rid, json.loads(line.decode("utf-8"))
                except (UnicodeDecodeError, ValueError) as e:
                    yield rid, RecordError("malformed", f"{rid}: not JSON ({e})")


def _strings(obj: dict, keys: tuple[str, ...], rid: str) -> list[str]:
    bad = [k for k in keys if not isinstance(obj.get(k), str)]
    if bad:
        raise RecordError("malformed", f"{rid}: {', '.join(bad)} must be string(s)")
    return [obj[k] for k in keys]


def parse_record(obj: object, rid: str, *, nfkc: bool = False) -> Instruction:
    """Detect the format and normalise; raises RecordError("malformed", ...)."""
    if not isinstance(obj, dict):
        raise RecordError("malformed", f"{rid}: a record is a JSON object, got {type(obj).__name__}")
    norm = lambda s: normalize(s, nfkc=nfkc)  # noqa: E731
    known = {"instruction", "input", "output", "messages", "question", "answer", "chosen", "rejected"}
    meta = {k: v for k, v in obj.items() if k not in known}
    if "messages" in obj:
        msgs = obj["messages"]
        if not isinstance(msgs, list) or not all(isinstance(m, dict) for m in msgs):
            raise RecordError("malformed", f"{rid}: messages must be a list of objects")
        if any(not isinstance(m.get("content"), str) or m.get("role") not in ("system", "user", "assistant")
               for m in msgs):
            raise RecordError("malformed", f"{rid}: every message needs role system/user/assistant and string content")
        roles = [m["role"] for m in msgs]
        body = roles[1:] if roles[:1] == ["system"] else roles
        if not body or body != ["user", "assistant"] * (len(body) // 2):
            raise RecordError("malformed", f"{rid}: turns must alternate user/assistant and end with assistant")
        return Instruction(rid, "messages", [{"role": m["role"], "content": norm(m["content"])} for m in msgs],
                           meta=meta)
    if "instruction" in obj and "output" in obj:
        inst, out = _strings(obj, ("instruction", "output"), rid)
        inp = obj.get("input", "")
        if not isinstance(inp, str):
            raise RecordError("malformed", f"{rid}: input must be a string")
        q = norm(inst) + ("\n\n" + norm(inp) if norm(inp) else "")
        return Instruction(rid, "alpaca", [{"role": "user", "content": q}, {"role": "assistant", "content": norm(out)}],
                           meta=meta)
    if "question" in obj and ("answer" in obj or "chosen" in obj):
        if "chosen" in obj:
            q, chosen, rejected = _strings(obj, ("question", "chosen", "rejected"), rid)
        else:
            (q, chosen), rejected = _strings(obj, ("question", "answer"), rid), None
        return Instruction(rid, "arena", [{"role": "user", "content": norm(q)},
                                          {"role": "assistant", "content": norm(chosen)}],
                           None if rejected is None else norm(rejected), meta)
    raise RecordError("malformed", f"{rid}: no known format (instruction/output, messages, question/answer|chosen)")


def classify(answer: str, *, closed_max_chars: int = 30) -> str:
    """'closed' for a short one-line, one-sentence answer, else 'open' (the rule in the module docstring)."""
    a = answer.strip()
    one_sentence = not re.search(r"[。！？!?]", a[:-1])
    return "closed" if len(a) <= closed_max_chars and "\n" not in a and one_sentence else "open"


class InstructionChecks:
    """The per-record checks of `curate` (steps 3-7): raises RecordError with the reason; also used on generated
    answers (jpcurate.generation)."""

    def __init__(self, options: CurateOptions) -> None:
        self.o = options
        self.ng = NGWords({c: {"max_hits": 0} for c in NG_CATEGORIES}, boundary="script")

    def __call__(self, rec: Instruction) -> None:
        texts = [m["content"] for m in rec.messages if m["role"] != "system"]
        answers = [m["content"] for m in rec.messages if m["role"] == "assistant"]
        if rec.rejected is not None:
            answers.append(rec.rejected)
        if not all(m["content"] for m in rec.messages if m["role"] == "user"):
            raise RecordError("empty_question", rec.id)
        if not all(answers):
            raise RecordError("empty_answer", rec.id)
        size = sum(len(t) for t in texts) + len(rec.rejected or "")
        if size > self.o.max_chars:
            raise RecordError("too_long", f"{rec.id}: {size} characters > {self.o.max_chars}")
        lang, score = identify(rec.question)
        if lang != "ja" or score < self.o.lang_min_score:
            raise RecordError("not_japanese", f"{rec.id}: question is {lang} ({score:.2f})")
        for a in answers:
            if len(LETTER.findall(a)) >= self.o.answer_lang_min_letters:
                lang, score = identify(a)
                if lang != "ja" or score < self.o.lang_min_score:
                    raise RecordError("not_japanese", f"{rec.id}: answer is {lang} ({score:.2f})")
        for t in texts + ([rec.rejected] if rec.rejected else []):
            verdict = self.ng.apply(Document(id=rec.id, text=t))
            if verdict is not None:
                raise RecordError(verdict[0], f"{rec.id}: {verdict[1]}")
        if rec.rejected is not None and rec.rejected == rec.answer:
            raise RecordError("identical_pair", f"{rec.id}: chosen and rejected are the same")


@dataclass
class Curated:
    sft: list[dict]
    pairs: list[dict]
    rejected: list[dict]
    stats: dict


def _with_instruction(messages: list[dict]) -> list[dict]:
    out = [dict(m) for m in messages]
    last_user = max(i for i, m in enumerate(out) if m["role"] == "user")
    if not out[last_user]["content"].endswith(CLOSED_QA_INSTRUCTION):
        out[last_user]["content"] += "\n" + CLOSED_QA_INSTRUCTION
    return out


def curate(records: Iterable[tuple[str, object]], options: CurateOptions | None = None) -> Curated:
    """Parse, normalise, filter and deduplicate; every input record ends up kept or in `rejected` with a reason."""
    o = options or CurateOptions()
    check = InstructionChecks(o)
    live, rejected, reasons, read = [], [], Counter(), 0

    def drop(rid: str, err: RecordError, obj: object) -> None:
        reasons[err.reason] += 1
        rejected.append({"id": rid, "reason": err.reason, "detail": str(err), "record": obj})

    for rid, obj in records:
        read += 1
        try:
            if isinstance(obj, RecordError):
                raise obj
            rec = parse_record(obj, rid, nfkc=o.nfkc)
            check(rec)
            live.append((rec, obj))
        except RecordError as err:
            drop(rid, err, None if isinstance(obj, RecordError) else obj)
    if live:
        ids = [f"{i:09d}" for i in range(len(live))]  # zero-padded: the keep policy's tie-break sorts ids as text
        clusters = dedup_texts([r.question for r, _ in live], ids, DedupConfig(threshold=o.dedup_threshold))
    sft, pairs, kinds = [], [], Counter()
    for i, (rec, obj) in enumerate(live):
        c = clusters[f"{i:09d}"]
        if c["reason"] is not None:
            first = live[int(c["cluster_id"])][0].id
            drop(rec.id, RecordError("duplicate", f"{rec.id}: {c['reason']} of {first}"), obj)
            continue
        kind = classify(rec.answer, closed_max_chars=o.closed_max_chars)
        kinds[kind] += 1
        messages = _with_instruction(rec.messages) if kind == "closed" and o.add_closed_instruction else rec.messages
        meta = {"id": rec.id, "format": rec.format, "qa": kind, **({"extra": rec.meta} if rec.meta else {})}
        sft.append({"messages": messages, "meta": meta})
        if rec.rejected is not None:
            prompt = messages[:-1]
            pairs.append({"prompt": prompt[0]["content"] if len(prompt) == 1 else prompt, "chosen": rec.answer,
                          "rejected": rec.rejected, "meta": meta})
    stats = {"read": read, "kept": len(sft), "pairs": len(pairs), "rejected": len(rejected),
             "rejected_by_reason": dict(sorted(reasons.items())), "open": kinds["open"], "closed": kinds["closed"],
             "options": vars(o)}
    return Curated(sft, pairs, rejected, stats)
