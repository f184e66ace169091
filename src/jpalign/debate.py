"""Debate transcripts to SFT conversations and DPO pairs (torch-free formatting).

A match is one JSON object with the motion 議題 and eight speeches (many empty):

    肯定側第一立論 肯定側第二立論 肯定側第一反駁 肯定側第二反駁   (affirmative constructives and rebuttals)
    否定側第一立論 否定側第二立論 否定側第一反駁 否定側第二反駁   (negative ones)

From each valid match:
- single-turn QA, one per non-empty speech: a side-specific question (templates below; a rebuttal question
  quotes the opponent's constructive speeches) answered by the speech itself. `templates="one"` picks one
  template per speech from sha256(seed, match id, speech), `"all"` writes one record per template;
- multi-turn conversations in the shape of Japanese MT-Bench, one per side that has a constructive and a
  rebuttal: turn 1 asks for the side's speech, turn 2 quotes the opponent's constructive and asks for the
  rebuttal;
- preference pairs: for a side-specific question the side's own speech is `chosen`, the opposite side's speech
  in the same slot `rejected`.

Dropped matches are counted by reason: broken_json, not_an_object, missing_keys, non_string_value,
empty_motion, both_sides_empty. Unknown extra keys are kept in each output record's `meta.extra`.
SFT records are {"messages": [...], "meta": {...}}; DPO records {"prompt", "chosen", "rejected", "meta"}.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

MOTION_KEY = "議題"
SIDES = {"affirmative": "肯定側", "negative": "否定側"}
OTHER = {"affirmative": "negative", "negative": "affirmative"}
SLOTS = ("第一立論", "第二立論", "第一反駁", "第二反駁")
SPEECH_KEYS = tuple(SIDES[side] + slot for side in SIDES for slot in SLOTS)
DROP_REASONS = ("broken_json", "not_an_object", "missing_keys", "non_string_value", "empty_motion",
                "both_sides_empty")

# Questions for a constructive speech: (name, affirmative text, negative text); {m} is the motion.
CONSTRUCTIVE_TEMPLATES = (
    ("strengthen", "「{m}」という主張を、根拠を挙げてより説得力のあるものにしてください。",
     "「{m}」という主張に対して、根拠を挙げて反対の議論を組み立ててください。"),
    ("speech", "あなたは「{m}」という主張に賛成の立場です。その立場からスピーチをしてください。",
     "あなたは「{m}」という主張に反対の立場です。その立場からスピーチをしてください。"),
    ("merits", "「{m}」という議題について肯定側の立場に立ち、そのメリットを詳しく説明してください。",
     "「{m}」という議題について否定側の立場に立ち、そのデメリットを詳しく説明してください。"),
)
# Questions for a rebuttal speech; {opp} is the opponent's constructive speech(es), {os} the opponent's side.
REBUTTAL_TEMPLATES = (
    ("rebut", "議題「{m}」のディベートで、あなたは{s}です。{os}の次の立論に反駁してください。\n\n{os}の立論：\n{opp}"),
    ("weakness", "あなたは「{m}」という議題で{s}に立っています。相手の次の主張の弱点を指摘し、"
     "{s}の立場を守ってください。\n\n相手の主張：\n{opp}"),
)
REBUTTAL_BLIND = ("「{m}」という議題について、{s}として反駁のスピーチをしてください。"
                  "{os}から予想される主張に反論してください。")
TURN2 = "では、{os}から次の立論がありました。{s}として、これに反駁してください。\n\n{opp}"
TURN2_BLIND = "では、{os}から予想される反論を踏まえて、{s}として反駁してください。"


class DebateError(ValueError):
    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason


@dataclass
class Match:
    id: str
    motion: str
    speeches: dict[str, str]  # SPEECH_KEYS -> stripped text ("" when empty)
    extra: dict = field(default_factory=dict)

    def speech(self, side: str, slot: str) -> str:
        return self.speeches[SIDES[side] + slot]

    def constructive(self, side: str) -> str:
        """The side's constructive speeches, first then second, joined by a blank line ("" when none)."""
        return "\n\n".join(t for t in (self.speech(side, "第一立論"), self.speech(side, "第二立論")) if t)


def parse_match(obj: object, match_id: str) -> Match:
    """Validate one transcript object; raises DebateError with one of DROP_REASONS."""
    if not isinstance(obj, dict):
        raise DebateError("not_an_object", f"{match_id}: a match is a JSON object, got {type(obj).__name__}")
    missing = [k for k in (MOTION_KEY, *SPEECH_KEYS) if k not in obj]
    if missing:
        raise DebateError("missing_keys", f"{match_id}: missing {', '.join(missing)}")
    bad = [k for k in (MOTION_KEY, *SPEECH_KEYS) if not isinstance(obj[k], str)]
    if bad:
        raise DebateError("non_string_value", f"{match_id}: {', '.join(f'{k}={obj[k]!r}' for k in bad)} not strings")
    motion = obj[MOTION_KEY].strip()
    if not motion:
        raise DebateError("empty_motion", f"{match_id}: 議題 is empty")
    speeches = {k: obj[k].strip() for k in SPEECH_KEYS}
    if not any(speeches.values()):
        raise DebateError("both_sides_empty", f"{match_id}: every speech is empty")
    extra = {k: v for k, v in obj.items() if k != MOTION_KEY and k not in SPEECH_KEYS}
    return Match(match_id, motion, speeches, extra)


def read_objects(path: str | Path) -> Iterator[tuple[str, object]]:
    """(match id, parsed object or DebateError) for a .json file (object or list), a .jsonl file or a folder."""
    path = Path(path)
    if path.is_dir():
        for p in sorted(q for q in path.iterdir() if q.suffix in (".json", ".jsonl")):
            yield from read_objects(p)
        return
    raw = path.read_bytes()
    if path.suffix == ".jsonl":
        for n, line in enumerate(raw.split(b"\n"), 1):
            if line.strip():
                yield f"{path.name}:{n}", _loads(line, f"{path.name}:{n}")
        return
    obj = _loads(raw, path.name)
    if isinstance(obj, list):
        for i, item in enumerate(obj):
            yield f"{path.name}#{i}", item
    else:
        yield path.name, obj


def _loads(raw: bytes, where: str) -> object:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        return DebateError("broken_json", f"{where}: {e}")


def _pick(seed: int, *parts: str, n: int) -> int:
    digest = hashlib.sha256(":".join([str(seed), *parts]).encode("utf-8")).hexdigest()
    return int(digest, 16) % n


def _topic(motion: str) -> str:
    return motion.rstrip("。．. ")


def questions(match: Match, side: str, slot: str) -> list[tuple[str, str]]:
    """Every (template name, question) for the side's speech in this slot."""
    m, s, other = _topic(match.motion), SIDES[side], OTHER[side]
    if slot.endswith("立論"):
        return [(name, (aff if side == "affirmative" else neg).format(m=m))
                for name, aff, neg in CONSTRUCTIVE_TEMPLATES]
    opp = match.constructive(other)
    if not opp:
        return [("rebut_blind", REBUTTAL_BLIND.format(m=m, s=s, os=SIDES[other]))]
    return [(name, t.format(m=m, s=s, os=SIDES[other], opp=opp)) for name, t in REBUTTAL_TEMPLATES]


def _meta(match: Match, kind: str, side: str, speech: str, template: str) -> dict:
    meta = {"source": "debate", "match": match.id, "kind": kind, "side": side, "speech": speech,
            "template": template}
    if match.extra:
        meta["extra"] = match.extra
    return meta


def single_turn(match: Match, *, seed: int = 0, templates: str = "one") -> list[dict]:
    out = []
    for side in SIDES:
        for slot in SLOTS:
            answer = match.speech(side, slot)
            if not answer:
                continue
            options = questions(match, side, slot)
            if templates == "one":
                options = [options[_pick(seed, match.id, side, slot, n=len(options))]]
            for name, q in options:
                out.append({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": answer}],
                            "meta": _meta(match, "single", side, SIDES[side] + slot, name)})
    return out


def multi_turn(match: Match, *, seed: int = 0) -> list[dict]:
    """Per side: turn 1 asks for its constructive, turn 2 for its rebuttal of the opponent's constructive."""
    out = []
    for side in SIDES:
        first = next((match.speech(side, s) for s in ("第一立論", "第二立論") if match.speech(side, s)), "")
        slot = next((s for s in ("第一反駁", "第二反駁") if match.speech(side, s)), None)
        if not first or slot is None:
            continue
        options = questions(match, side, "第一立論")
        name, q1 = options[_pick(seed, match.id, side, "multi", n=len(options))]
        s, os_, opp = SIDES[side], SIDES[OTHER[side]], match.constructive(OTHER[side])
        q2 = TURN2.format(s=s, os=os_, opp=opp) if opp else TURN2_BLIND.format(s=s, os=os_)
        messages = [{"role": "user", "content": q1}, {"role": "assistant", "content": first},
                    {"role": "user", "content": q2}, {"role": "assistant", "content": match.speech(side, slot)}]
        out.append({"messages": messages, "meta": _meta(match, "multi", side, s + slot, name)})
    return out


def preference_pairs(match: Match, *, seed: int = 0) -> list[dict]:
    """For each slot both sides spoke in: the side's question, its own speech chosen, the opponent's rejected."""
    out = []
    for side in SIDES:
        for slot in SLOTS:
            chosen, rejected = match.speech(side, slot), match.speech(OTHER[side], slot)
            if not chosen or not rejected or chosen == rejected:
                continue
            options = questions(match, side, slot)
            name, q = options[_pick(seed, match.id, side, slot, n=len(options))]
            out.append({"prompt": q, "chosen": chosen, "rejected": rejected,
                        "meta": _meta(match, "pair", side, SIDES[side] + slot, name)})
    return out


@dataclass
class Conversion:
    sft: list[dict]
    dpo: list[dict]
    stats: dict


def convert(paths: Iterable[str | Path], *, seed: int = 0, templates: str = "one", multi: bool = True,
            pairs: bool = True) -> Conversion:
    """Read every match under `paths`, validate, and build SFT and DPO records with per-reason drop counts."""
    if templates not in ("one", "all"):
        raise ValueError(f"templates must be 'one' or 'all', got {templates!r}")
    sft, dpo, dropped, errors = [], [], Counter(), []
    read = ok = empty = 0
    for path in paths:
        for match_id, obj in read_objects(path):
            read += 1
            try:
                if isinstance(obj, DebateError):
                    raise obj
                match = parse_match(obj, match_id)
            except DebateError as e:
                dropped[e.reason] += 1
                errors.append(str(e))
                continue
            ok += 1
            empty += sum(not t for t in match.speeches.values())
            sft += single_turn(match, seed=seed, templates=templates)
            if multi:
                sft += multi_turn(match, seed=seed)
            if pairs:
                dpo += preference_pairs(match, seed=seed)
    kinds = Counter(r["meta"]["kind"] for r in sft)
    stats = {"records_read": read, "records_valid": ok, "dropped": dict(sorted(dropped.items())),
             "empty_speeches": empty, "sft_written": len(sft), "single_turn": kinds["single"],
             "multi_turn": kinds["multi"], "dpo_written": len(dpo), "seed": seed, "templates": templates,
             "errors": errors[:50]}
    return Conversion(sft, dpo, stats)


def write_jsonl(path: str | Path, records: Iterable[dict]) -> int:
    """Write records atomically (tmp file + rename); returns the count."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    n = 0
    with open(tmp, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
            n += 1
    tmp.replace(path)
    return n
