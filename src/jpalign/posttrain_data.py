"""The bundled post-training set (data/posttrain): instruction records and preference pairs made from the
bundled training-safe text, deterministically, without any model.

SFT (`messages` records), from three sources only (SOURCES):
- Aozora Bunko works (data/aozora/works.jsonl, public domain): who wrote a title (a sentence answer and a closed
  one-word answer), the opening sentence of a work, which work and author a passage comes from, the actual
  continuation of a passage, and the quoted dialogue in a passage;
- UD Japanese GSD sentences (data/ud_japanese_gsd, CC BY-SA 4.0): closed QA on facts stated in the sentence
  (the year it names, the numbers it contains, in order);
- the example debates (data/debate, CC0) through jpalign.debate.

DPO (`prompt`/`chosen`/`rejected`): every Aozora/UD SFT answer as `chosen` against the same answer degraded by
one of the two failure modes seen in the team's models, repetition and template leakage (DEGRADATIONS, in turn):
looping its own sentences, echoing the question, an extra "### 指示/### 応答" section, role tags followed by an
invented next turn, a bare next user turn; plus the debate pairs (own side's speech vs the opposite side's).

Evaluation sets (JGLUE, ELYZA-tasks-100, Japanese MT-Bench) and the web samples are never read: EVAL_ONLY names
them and `build` refuses a source under any of them. Passages are picked at evenly spaced eligible paragraphs,
so the output depends only on the input files.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from jpalign.debate import convert as convert_debates

SOURCES = {"aozora": "aozora/works.jsonl", "ud_japanese_gsd": "ud_japanese_gsd/sentences.jsonl",
           "debate": "debate"}
EVAL_ONLY = ("jglue", "elyza_tasks_100", "japanese_mt_bench", "web_ja", "web_en")
LICENSES = {"aozora": "public-domain", "ud_japanese_gsd": "CC-BY-SA-4.0", "debate": "CC0-1.0"}
CLOSED_SUFFIX = "答えだけを書き、それ以外には何も含めないでください。"  # the closed-QA format instruction

OPEN, CLOSE, ENDS = "「『（", "」』）", "。！？"
QUOTE = re.compile(r"「([^「」]{2,80})」")
YEAR = re.compile(r"(\d{3,4})年")
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def sentences(text: str) -> list[str]:
    """Split after 。！？ outside brackets, or after a closing bracket that ends one at depth 0 (「…。」)."""
    out, cur, depth = [], [], 0
    for i, ch in enumerate(text.replace("\n", "")):
        cur.append(ch)
        depth += (ch in OPEN) - (ch in CLOSE)
        depth = max(depth, 0)
        nxt = text.replace("\n", "")[i + 1:i + 2]
        if depth == 0 and (ch in ENDS or (ch in CLOSE and cur[-2:-1] and cur[-2] in ENDS)) and nxt not in CLOSE:
            out.append("".join(cur).strip())
            cur = []
    if "".join(cur).strip():
        out.append("".join(cur).strip())
    return [s for s in out if s]


def balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += (ch in OPEN) - (ch in CLOSE)
        if depth < 0:
            return False
    return depth == 0


def _paragraphs(text: str) -> list[list[str]]:
    return [sentences(p.strip("\u3000 ")) for p in text.split("\n") if p.strip("\u3000 ")]


def _spread(items: list, n: int, offset: int = 0) -> list:
    """n items at evenly spaced positions (shifted by offset/(2n) of a step); all of them when fewer."""
    if len(items) <= n:
        return list(items)
    return [items[(2 * k * len(items) + offset * len(items) // n) // (2 * n) % len(items)] for k in range(n)]


def _qa(question: str, answer: str, **meta) -> dict:
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
            "meta": meta}


def aozora_records(works: list[dict], *, passages: int = 4) -> list[dict]:
    out, seen = [], set()
    for w in works:
        title, author, wid = w["title"], w["author"], w["id"]
        meta = {"source": "aozora", "work": wid, "license": LICENSES["aozora"]}
        if (title, author) not in seen:
            seen.add((title, author))
            out.append(_qa(f"「{title}」を書いたのは誰ですか。", f"「{title}」を書いたのは{author}です。",
                           task="author", **meta))
            out.append(_qa(f"「{title}」の作者の名前を答えてください。{CLOSED_SUFFIX}", author,
                           task="author_closed", **meta))
        paras = _paragraphs(w["text"])
        if paras and paras[0] and len(paras[0][0]) <= 100:
            out.append(_qa(f"{author}の「{title}」の書き出しの一文を答えてください。", paras[0][0],
                           task="opening", **meta))
        # A passage is the first 2-3 sentences of a paragraph; its continuation the next 1-2 sentences.
        cands = []
        for p in paras:
            head = p[:3] if len("".join(p[:3])) <= 160 else p[:2]
            tail = p[len(head):len(head) + 2]
            ok = len(head) >= 2 and len("".join(head)) <= 160 and tail and 10 <= len("".join(tail)) <= 120
            if ok and balanced("".join(head)) and balanced("".join(tail)):
                cands.append(("".join(head), "".join(tail)))
        for passage, cont in _spread(cands, passages):
            out.append(_qa(f"次の文章の続きを書いてください。\n\n{passage}", cont, task="continuation", **meta))
        for passage, _ in _spread(cands, 2, offset=1):
            out.append(_qa(f"次の文章は、ある日本の文学作品の一節です。作品名と作者を答えてください。\n\n{passage}",
                           f"{author}の「{title}」の一節です。", task="identify", **meta))
        quoted = [(c[0], QUOTE.findall(c[0])) for c in cands if QUOTE.findall(c[0])]
        for passage, quotes in _spread(quoted, 2):
            out.append(_qa("次の文章から、かぎかっこ（「」）で囲まれた部分をすべて抜き出し、一行に一つずつ書いてください。"
                           f"\n\n{passage}", "\n".join(quotes), task="quotes", **meta))
    return out


def ud_records(rows: list[dict], *, limit: int = 60) -> list[dict]:
    """Closed QA on facts stated in a sentence: the one year it names; the numbers it contains, in order."""
    years, numbers = [], []
    for r in rows:
        text = r["text"]
        meta = {"source": "ud_japanese_gsd", "sentence": r["id"], "license": LICENSES["ud_japanese_gsd"]}
        if not 15 <= len(text) <= 100:
            continue
        found = YEAR.findall(text)
        if len(found) == 1:
            years.append(_qa(f"次の文に書かれている年を答えてください。{CLOSED_SUFFIX}\n\n{text}", f"{found[0]}年",
                             task="year", **meta))
        nums = NUMBER.findall(text)
        if 2 <= len(nums) <= 5:
            numbers.append(_qa(f"次の文に出てくる数字を、出てきた順にすべて読点（、）で区切って書いてください。{CLOSED_SUFFIX}"
                               f"\n\n{text}", "、".join(nums), task="numbers", **meta))
    return _spread(years, limit) + _spread(numbers, limit)


# --- anti-repetition pairs -------------------------------------------------------------------------------
ROLE_TAGS = (("ユーザー: ", "アシスタント: "), ("USER: ", "ASSISTANT: "), ("<|user|>\n", "<|assistant|>\n"),
             ("[INST] ", " [/INST] "))


def _first_line(text: str) -> str:
    return text.split("\n", 1)[0]


def degrade(kind: str, question: str, answer: str, other_q: str, other_a: str, variant: int = 0) -> str:
    """The clean `answer` spoiled by one failure mode; other_q/other_a are another record's turn to leak."""
    if kind == "loop":
        s = sentences(answer) or [answer]
        return answer + s[-1] * 4 if (variant % 2 and len(s) > 1) else answer * 3
    if kind == "echo_question":
        return f"{_first_line(question)}\n{answer}" if variant % 2 else f"{question}\n\n{question}"
    if kind == "hash_section":
        return f"{answer}\n\n### 指示:\n{_first_line(other_q)}\n\n### 応答:\n{other_a}"
    if kind == "role_tags":
        user, assistant = ROLE_TAGS[variant % len(ROLE_TAGS)]
        return f"{answer}\n{user}{_first_line(other_q)}\n{assistant}{other_a}"
    if kind == "next_turn":
        return f"{answer}\n\n{_first_line(other_q)}"
    raise ValueError(f"unknown degradation {kind!r}")


DEGRADATIONS = ("loop", "echo_question", "hash_section", "role_tags", "next_turn")


def anti_repetition_pairs(records: list[dict]) -> list[dict]:
    """One pair per single-turn record, the degradation taken in turn; the leaked turn is another record's."""
    out = []
    n = len(records)
    for i, rec in enumerate(records):
        q, a = rec["messages"][0]["content"], rec["messages"][1]["content"]
        other = records[(i * 7 + 3) % n]["messages"] if n > 1 else rec["messages"]
        kind = DEGRADATIONS[i % len(DEGRADATIONS)]
        rejected = degrade(kind, q, a, other[0]["content"], other[1]["content"], variant=i // len(DEGRADATIONS))
        if rejected.strip() == a.strip():
            continue
        out.append({"prompt": q, "chosen": a, "rejected": rejected,
                    "meta": {**rec["meta"], "pair": "anti_repetition", "degradation": kind}})
    return out


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def check_sources(data_dir: Path, sources: dict[str, str] = SOURCES) -> dict[str, Path]:
    """Resolve the source paths; refuses any path inside an evaluation-only or test-only folder."""
    paths = {}
    for name, rel in sources.items():
        parts = Path(rel).parts
        if any(p in EVAL_ONLY for p in parts):
            raise ValueError(f"source {name}={rel} is evaluation/test-only data ({', '.join(EVAL_ONLY)}): "
                             "never train on it")
        paths[name] = data_dir / rel
        if not paths[name].exists():
            raise FileNotFoundError(f"source {name}: {paths[name]} does not exist")
    return paths


def build(data_dir: str | Path, *, seed: int = 0) -> tuple[list[dict], list[dict], dict]:
    """(sft records, dpo records, stats) from the bundled sources under data_dir."""
    paths = check_sources(Path(data_dir))
    aozora = aozora_records(_read_jsonl(paths["aozora"]))
    ud = ud_records(_read_jsonl(paths["ud_japanese_gsd"]))
    debate = convert_debates([paths["debate"]], seed=seed, templates="one")
    for r in debate.sft + debate.dpo:
        r["meta"]["license"] = LICENSES["debate"]
    sft = aozora + ud + debate.sft
    dpo = anti_repetition_pairs(aozora + ud) + debate.dpo
    stats = {"sources": {k: str(v.relative_to(data_dir)) for k, v in paths.items()},
             "sft": len(sft), "dpo": len(dpo),
             "sft_by_task": dict(sorted(Counter(f"{r['meta']['source']}:{r['meta'].get('task') or r['meta']['kind']}"
                                                for r in sft).items())),
             "dpo_by_kind": dict(sorted(Counter(r["meta"].get("degradation", "debate") for r in dpo).items())),
             "debate_dropped": debate.stats["dropped"]}
    return sft, dpo, stats
