"""Generation jobs through an OpenAI-compatible endpoint (jpcurate.endpoint): rephrase, answer, cot.

- `rephrase`: pretraining documents rewritten in a style (STYLES: `wikipedia`, Wikipedia-like written Japanese;
  `plain`, plain explanatory Japanese). A long document is split on paragraph (line) boundaries into chunks of at
  most `max_chars`, each chunk is one request, and the outputs are joined back with newlines. The rephrased
  document must still pass jpcurate's `ja-web` preset (`build_preset("ja-web")` + `run_pipeline`): otherwise it
  is rejected with the filter's reason, as `filter:<reason>`.
- `answer`: instruction records (any format jpcurate.instructions reads) get their last answer regenerated from
  the conversation before it.
- `cot`: the last question (without the closed-QA format instruction) plus the original answer as a hint
  (COT_TEMPLATE: think step by step, end with a line 「答え：…」, do not mention the example answer). For closed
  QA (jpcurate.instructions.classify on the original answer) only outputs whose final answer agrees with the
  hint are kept (`cot_disagrees`, `cot_no_final_answer`). The kept record's last user turn is that question,
  without the hint; earlier turns are kept as they were.

Answers (and CoT texts) go back through the instruction checks of jpcurate.instructions (language, NG words,
length), rejected as `filter:<reason>`. Every input ends in exactly one of: `records` (kept), `rejected` (a
filter or agreement check said no) or `failures` (malformed input, or the request failed after its retries, or
the output was cut off at max_tokens): nothing is silently dropped. Results are cached by the client, so a
killed job reruns only the requests that had not finished.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from jpcurate import Document, Malformed, build_preset, run_pipeline
from jpcurate.endpoint import ChatRequest, EndpointClient, request_key
from jpcurate.instructions import (
    CLOSED_QA_INSTRUCTION,
    CurateOptions,
    Instruction,
    InstructionChecks,
    RecordError,
    classify,
    parse_record,
)

JOBS = ("rephrase", "answer", "cot")
STYLES = {
    "wikipedia": "次の文章を、Wikipediaの記事のような客観的で簡潔な書き言葉の日本語に書き換えてください。",
    "plain": "次の文章を、専門知識のない読者にも分かる、平易で丁寧な説明文の日本語に書き換えてください。",
}
REPHRASE_RULES = ("内容を変えず、情報を付け加えたり省いたりしないでください。"
                  "書き換えた文章だけを出力し、前置きや説明は書かないでください。")
COT_TEMPLATE = ("次の質問に答えてください。段階を追って考え、その過程を書いてから、最後の行に「答え：」に続けて"
                "最終的な答えを書いてください。\n\n質問：\n{question}\n\n"
                "参考として模範解答を示します。\n模範解答：{hint}\n\n"
                "模範解答を見たことには触れず、自分で考えたように書いてください。")
FINAL = re.compile(r"答え\s*[:：]\s*(.+)")


@dataclass
class JobOptions:
    style: str = "wikipedia"
    max_chars: int = 1200  # rephrase: longest chunk sent in one request
    temperature: float = 0.0
    max_tokens: int = 1024
    seed: int | None = None
    filter_preset: str = "ja-web"  # rephrase: the preset a rewritten document must pass
    curate: CurateOptions = field(default_factory=CurateOptions)  # answer/cot: the instruction checks


@dataclass
class Job:
    """Requests planned per input item; `run` turns the results into kept / rejected / failure records."""

    name: str
    items: list  # Document or Instruction
    requests: list[list[ChatRequest]]  # per item, in order
    failures: list[dict]  # malformed inputs, known before sending anything


@dataclass
class JobResult:
    records: list[dict]
    rejected: list[dict]
    failures: list[dict]
    stats: dict


def split_paragraphs(text: str, max_chars: int) -> list[str]:
    """Consecutive lines grouped into chunks of at most max_chars (a longer single line is a chunk of its own)."""
    chunks, cur = [], []
    for line in text.split("\n"):
        if cur and len("\n".join([*cur, line])) > max_chars:
            chunks.append("\n".join(cur))
            cur = []
        cur.append(line)
    if cur:
        chunks.append("\n".join(cur))
    return [c for c in chunks if c.strip()]


def _user(content: str, o: JobOptions) -> ChatRequest:
    return ChatRequest([{"role": "user", "content": content}], temperature=o.temperature, max_tokens=o.max_tokens,
                       seed=o.seed)


def plan(job: str, inputs: Iterable, o: JobOptions) -> Job:
    """Build the requests. rephrase: inputs are Documents/Malformed (jpcurate.read_documents); answer/cot:
    (id, object) pairs from jpcurate.instructions.read_records."""
    if job not in JOBS:
        raise ValueError(f"unknown job {job!r}; choose one of {JOBS}")
    if job == "rephrase" and o.style not in STYLES:
        raise ValueError(f"unknown style {o.style!r}; choose one of {sorted(STYLES)}")
    items, requests, failures = [], [], []
    for item in inputs:
        if job == "rephrase":
            if isinstance(item, Malformed):
                failures.append({"id": f"{item.source}:{item.position}", "reason": "malformed", "detail": item.reason})
                continue
            chunks = split_paragraphs(item.text, o.max_chars)
            prompts = [f"{STYLES[o.style]}{REPHRASE_RULES}\n\n文章：\n{c}" for c in chunks]
            items.append(item)
            requests.append([_user(p, o) for p in prompts])
            continue
        rid, obj = item
        try:
            if isinstance(obj, RecordError):
                raise obj
            rec = parse_record(obj, rid, nfkc=o.curate.nfkc)
        except RecordError as e:
            failures.append({"id": rid, "reason": "malformed", "detail": str(e)})
            continue
        items.append(rec)
        if job == "answer":
            requests.append([ChatRequest(rec.messages[:-1], temperature=o.temperature, max_tokens=o.max_tokens,
                                         seed=o.seed)])
        else:
            prompt = COT_TEMPLATE.format(question=cot_question(rec), hint=rec.answer)
            requests.append([ChatRequest([*rec.messages[:-2], {"role": "user", "content": prompt}],
                                         temperature=o.temperature, max_tokens=o.max_tokens, seed=o.seed)])
    return Job(job, items, requests, failures)


def cot_question(rec: Instruction) -> str:
    """The last user turn without the closed-QA format instruction (a CoT answer does not obey it)."""
    q = rec.messages[-2]["content"]
    return q[:-len(CLOSED_QA_INSTRUCTION)].rstrip() if q.endswith(CLOSED_QA_INSTRUCTION) else q


def pending(job: Job, client: EndpointClient) -> int:
    """How many of the job's requests are not in the client's cache yet."""
    return sum(client.cache.get(request_key(client.model, r)) is None for reqs in job.requests for r in reqs)


def _loose(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).strip()
    text = re.sub(r"[\s「」『』\"'。、.,!?！？]", "", text)
    return re.sub(r"(です|である|だ)$", "", text)


def final_answer(text: str) -> str | None:
    """The text after the last 「答え：」 in a chain of thought, or None."""
    found = FINAL.findall(text)
    return found[-1].strip() if found else None


def agrees(final: str, hint: str) -> bool:
    """Equal after NFKC and dropping spaces, brackets, punctuation and a closing です/である/だ, or one contains
    the other (「猫です」 vs 「猫」, 「答えは東京都」 vs 「東京都」)."""
    a, b = _loose(final), _loose(hint)
    return bool(a and b) and (a == b or a in b or b in a)


def run(job: Job, client: EndpointClient, o: JobOptions) -> JobResult:
    flat = [r for reqs in job.requests for r in reqs]
    results = iter(client.chat(flat))
    records, rejected, failures = [], [], list(job.failures)
    reasons = Counter()
    filt = build_preset(o.filter_preset) if job.name == "rephrase" else None
    checks = InstructionChecks(o.curate) if job.name != "rephrase" else None
    for item, reqs in zip(job.items, job.requests):
        outs = [next(results) for _ in reqs]
        bad = next((r for r in outs if r.error is not None or r.finish_reason == "length"), None)
        if bad is not None:
            reason = "generation_failed" if bad.error is not None else "truncated"
            failures.append({"id": item.id, "reason": reason, "detail": bad.error or "finish_reason length",
                             "chunks": len(reqs)})
            continue
        try:
            if job.name == "rephrase":
                records.append(_rephrased(item, [r.text.strip() for r in outs], filt, o))
            else:
                records.append(_answered(job.name, item, outs[0].text.strip(), checks, o))
        except RecordError as e:
            reasons[e.reason] += 1
            rejected.append({"id": item.id, "reason": e.reason, "detail": str(e),
                             "output": "\n".join(r.text for r in outs)})
    stats = {"job": job.name, "inputs": len(job.items) + len(job.failures), "requests": len(flat),
             "kept": len(records), "rejected": len(rejected), "rejected_by_reason": dict(sorted(reasons.items())),
             "failures": len(failures),
             "failures_by_reason": dict(sorted(Counter(f["reason"] for f in failures).items())),
             "usage": client.usage.as_dict()}
    return JobResult(records, rejected, failures, stats)


def _rephrased(doc: Document, chunks: list[str], filt, o: JobOptions) -> dict:
    new = Document(id=doc.id, text="\n".join(chunks), meta=dict(doc.meta))
    kept, rejected, _ = run_pipeline(filt, [new])
    if not kept:
        raise RecordError(f"filter:{rejected[0].reason}", f"{doc.id}: {rejected[0].detail}")
    out = kept[0]
    return {**out.meta, "id": doc.id, "text": out.text,
            "rephrase": {"style": o.style, "chunks": len(chunks), "source_chars": len(doc.text)}}


def _answered(job: str, rec: Instruction, text: str, checks: InstructionChecks, o: JobOptions) -> dict:
    kind = classify(rec.answer, closed_max_chars=o.curate.closed_max_chars)
    if job == "cot" and kind == "closed":
        final = final_answer(text)
        if final is None:
            raise RecordError("cot_no_final_answer", f"{rec.id}: no 「答え：」 line")
        if not agrees(final, rec.answer):
            raise RecordError("cot_disagrees", f"{rec.id}: final answer {final!r} vs hint {rec.answer!r}")
    if job == "cot":
        messages = [*rec.messages[:-2], {"role": "user", "content": cot_question(rec)},
                    {"role": "assistant", "content": text}]
    else:
        messages = [*rec.messages[:-1], {"role": "assistant", "content": text}]
    new = Instruction(rec.id, rec.format, messages, meta=rec.meta)
    try:
        checks(new)
    except RecordError as e:
        raise RecordError(f"filter:{e.reason}", str(e)) from None
    return {"messages": messages, "meta": {"id": rec.id, "job": job, "qa": kind, "original_answer": rec.answer}}
