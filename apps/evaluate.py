"""Evaluate models in Japanese and write one report comparing them: llm-jp-eval-style JGLUE (JCommonsenseQA, JNLI,
JSQuAD, JSTS), Japanese MT-Bench and ELYZA-tasks-100 (judged through any OpenAI-compatible endpoint), repetition,
leakage and grounding metrics, optional contamination overlap and judge calibration.

    python apps/evaluate.py --model runs/demo/pretrain/hf --model runs/demo/sft/hf --out_dir runs/demo/eval --limit 20
    python apps/evaluate.py --model base=runs/a/hf --model sft=runs/b/hf --out_dir runs/eval \\
        --judge-url http://127.0.0.1:8000/v1 --judge-model judge --contamination data/aozora --contaminated sft=jsquad
    python apps/evaluate.py --endpoint http://127.0.0.1:8001/v1 --model my-served-model --out_dir runs/eval
    python apps/evaluate.py --calibrate-judge --judge-url URL --judge-model NAME --out_dir runs/judge-check

`--model [NAME=]PATH` is repeatable (a jpmoe export, HF directory, checkpoint step or run directory; with
`--endpoint`, the served model's name). Judge URL/model/key also come from JUDGE_URL / JUDGE_MODEL /
JUDGE_API_KEY. Every finished item is appended to OUT/items.jsonl: a killed run reruns only what is missing, and
judgements are cached in OUT/judge_cache (a rerun judges only what is new). `--contaminated NAME=task+task` marks a
model whose training data held those evaluation sets (`NAME` alone: all); the report flags it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from jpalign.eval import char_f1, exact_match, judge
from jpalign.eval.contamination import contamination_report
from jpalign.eval.llmjp import TASKS, build_prompt, load_task, postprocess
from jpalign.eval.metrics import parse_float
from jpalign.eval.repetition import generation_flags, not_a_span, repetition_stats
from jpalign.eval.report import write_report
from jpalign.eval.store import RecordStore, key
from jpalign.eval.suites import chat_items, judged_answers, parse_contaminated
from jpalign.eval.summary import calibration, summarize
from jpcurate.endpoint import ChatRequest, EndpointClient
from jpmoe.train import parse_args

CHAT_SUITES = ("mt_bench", "elyza")


@dataclass
class Args:
    model: list[str] = field(default_factory=list)
    out_dir: str = "runs/eval"
    tasks: list[str] = field(default_factory=lambda: [*TASKS, *CHAT_SUITES])
    limit: int | None = None  # items per task / suite (and answers re-judged by --calibrate-judge)
    num_few_shots: int = 4
    data_dir: str = "data"
    batch_size: int = 8
    max_new_tokens: int = 512  # MT-Bench / ELYZA answers
    mc: bool = True  # also score JCommonsenseQA / JNLI by the log-likelihood of each choice (in-process only)
    device: str = "cpu"
    seed: int = 0
    endpoint: str | None = None  # generate through this OpenAI-compatible endpoint instead of in-process
    api_key: str | None = None  # for --endpoint (default: $OPENAI_API_KEY)
    judge_url: str | None = None
    judge_model: str | None = None
    judge_api_key: str | None = None
    judge_concurrency: int = 8
    contamination: list[str] = field(default_factory=list)  # training corpora: JSONL with `text`, or directories
    contamination_threshold: float = 0.5
    contaminated: list[str] = field(default_factory=list)  # NAME or NAME=task+task
    calibrate_judge: bool = False


def say(msg: str) -> None:
    print(f"[evaluate {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def model_names(specs: list[str]) -> dict[str, str]:
    """`NAME=PATH` or `PATH` (named by its last directory that is not `hf`) -> {name: path}."""
    out: dict[str, str] = {}
    for spec in specs:
        name, eq, path = spec.partition("=")
        if not eq:
            path = spec
            parts = [p for p in Path(spec).parts if p not in ("hf", "checkpoints")]
            name = parts[-1] if parts else spec
        if name in out:
            raise ValueError(f"two models are named {name!r}; name them: --model NAME=PATH")
        out[name] = path
    return out


class InProcess:
    """A model loaded with jpmoe.load.load_pretrained, generating with jpmoe.generate (batched)."""

    def __init__(self, path: str, args: Args):
        import torch
        from transformers import AutoTokenizer

        from jpalign.templates import INSTRUCTION_JA
        from jpmoe.load import describe, load_pretrained

        self.torch, self.args = torch, args
        self.loaded = load_pretrained(path, device=args.device)
        if self.loaded.tokenizer_dir is None:
            raise FileNotFoundError(f"{path}: no tokenizer next to the weights")
        self.tok = AutoTokenizer.from_pretrained(str(self.loaded.tokenizer_dir))
        self.note = None
        if not self.tok.chat_template:
            self.tok.chat_template = INSTRUCTION_JA.jinja
            self.note = f"{path} has no chat template: MT-Bench/ELYZA prompts use jpalign's instruction-ja"
        say(f"loaded {describe(self.loaded)}")

    def complete(self, texts: list[str], *, max_new_tokens: int, temperature: float, stop: tuple[str, ...],
                 chat: bool, what: str) -> list:
        from jpmoe.generate import SamplingParams
        from jpmoe.textgen import generate_texts

        ids = [self.tok(t, add_special_tokens=not chat)["input_ids"] for t in texts]
        params = SamplingParams(max_new_tokens=max_new_tokens, temperature=temperature, stop_strings=stop)
        gen = self.torch.Generator().manual_seed(self.args.seed)
        return generate_texts(self.loaded.model, self.tok, ids, params, batch_size=self.args.batch_size,
                              generator=gen, progress=lambda d, n, tps: say(f"{what}: {d}/{n} ({tps:.0f} tok/s)"))

    def render(self, messages: list[dict]) -> str:
        return self.tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def fits(self, prompt: str, max_new_tokens: int) -> bool:
        return len(self.tok(prompt)["input_ids"]) + max_new_tokens <= self.loaded.config.max_seq_len

    def choices(self, prompt: str, choices: tuple[str, ...]) -> list[float]:
        from jpmoe.textgen import choice_logprobs

        ctx = self.tok(prompt)["input_ids"]
        return choice_logprobs(self.loaded.model, ctx, [self.tok(c, add_special_tokens=False)["input_ids"]
                                                        for c in choices])


class Remote:
    """A served model: the same prompts through an OpenAI-compatible endpoint (chat completions only, so the
    llm-jp prompt is sent as one user message and there is no log-likelihood scoring)."""

    note = "generation through an OpenAI-compatible endpoint: llm-jp prompts sent as one user message, no mc scores"

    def __init__(self, name: str, args: Args, out_dir: Path):
        self.seed = args.seed
        self.client = EndpointClient(args.endpoint, name, api_key=args.api_key or os.environ.get("OPENAI_API_KEY"),
                                     cache_dir=out_dir / "gen_cache")

    def complete(self, texts, *, max_new_tokens, temperature, stop, chat, what):
        from types import SimpleNamespace

        msgs = [t if chat else [{"role": "user", "content": t}] for t in texts]
        res = self.client.chat([ChatRequest(m, temperature=temperature, max_tokens=max_new_tokens,
                                            stop=list(stop) or None, seed=self.seed) for m in msgs])
        say(f"{what}: {len(res)} answers ({sum(r.error is not None for r in res)} failed)")
        return [SimpleNamespace(text=r.text or "", token_ids=None, finish=r.finish_reason, truncated=False,
                                error=r.error) for r in res]

    def render(self, messages):
        return messages

    def fits(self, prompt, max_new_tokens):
        return True  # the server's context length is unknown here; it answers with an error if too long

    choices = None


def run_llmjp(be, name: str, task: str, args: Args, store: RecordStore) -> list[tuple]:
    spec = TASKS[task]
    shots, samples = load_task(task, Path(args.data_dir) / "jglue", num_few_shots=args.num_few_shots,
                               limit=args.limit)
    base = {"kind": "llmjp", "model": name, "task": task}
    todo = [e for e in samples if key(base | {"id": e.id}) not in store]
    prompts, used = [], []
    for e in todo:  # as many of the shots as fit the model (a left-cut prompt would lose the instruction)
        k = next(k for k in range(len(shots), -1, -1)
                 if k == 0 or be.fits(build_prompt(spec.instruction, shots[:k], e.input), spec.output_length))
        prompts.append(build_prompt(spec.instruction, shots[:k], e.input))
        used.append(k)
    say(f"{name} {task}: {len(samples) - len(todo)} done, {len(todo)} to go")
    for start in range(0, len(todo), 64):  # chunks, so a kill loses at most one chunk
        part, ps, ks = todo[start:start + 64], prompts[start:start + 64], used[start:start + 64]
        outs = be.complete(ps, max_new_tokens=spec.output_length, temperature=0.0, stop=("\n\n",), chat=False,
                           what=f"{name} {task}")
        for e, p, k, o in zip(part, ps, ks, outs):
            if getattr(o, "error", None):
                continue  # an endpoint failure is retried by the next run, never scored
            pred = postprocess(o.text)
            rec = base | {"id": e.id, "prompt": p, "shots": k, "output": o.text, "pred": pred, "gold": e.output,
                          "finish": o.finish, "truncated": o.truncated, "n_tokens": len(o.token_ids or [])}
            if spec.metric == "correlation":
                rec |= {"score": None, "pred_value": parse_float(pred), "format_ok": parse_float(pred) is not None}
            else:
                score = exact_match(pred, e.output) if spec.metric == "exact_match" else char_f1(pred, e.output)
                fmt = pred in (e.choices if task == "jnli" else [str(i) for i in range(len(e.choices))]) \
                    if e.choices else bool(pred)
                rec |= {"score": score, "format_ok": fmt}
            if e.choices and args.mc and be.choices:
                lps = be.choices(p, e.choices)
                norm = [lp / len(c) for lp, c in zip(lps, e.choices)]  # harness acc_norm: per character
                rec |= {"mc_logprobs": lps, "mc_correct": max(range(len(lps)), key=lps.__getitem__) == e.label,
                        "mc_correct_norm": max(range(len(norm)), key=norm.__getitem__) == e.label}
            if task == "jsquad":
                rec["not_span"] = not_a_span(pred, e.context)
            store.add(rec)
    return [key(base | {"id": e.id}) for e in samples]


def run_chat(be, name: str, suite: str, args: Args, store: RecordStore) -> list[tuple]:
    """Answers turn by turn (MT-Bench turn 2 sees the model's own turn-1 answer), grouped by temperature."""
    items, keys = chat_items(suite, args.data_dir, args.limit), []
    for turn in (1, 2) if suite == "mt_bench" else (1,):
        base = {"kind": "gen", "model": name, "suite": suite, "turn": turn}
        keys += [key(base | {"id": it["id"]}) for it in items]
        for temp in sorted({judge.MT_BENCH_TEMPERATURE.get(it["category"], 0.0) for it in items}):
            todo = [it for it in items if judge.MT_BENCH_TEMPERATURE.get(it["category"], 0.0) == temp
                    and key(base | {"id": it["id"]}) not in store
                    and (turn == 1 or key(base | {"id": it["id"], "turn": 1}) in store)]
            for start in range(0, len(todo), 4 * args.batch_size):  # chunks: a kill loses at most one
                part = todo[start:start + 4 * args.batch_size]
                msgs = []
                for it in part:
                    m = [{"role": "user", "content": it["turns"][0]}]
                    if turn == 2:
                        first = store.get(key(base | {"id": it["id"], "turn": 1}))
                        m += [{"role": "assistant", "content": first["output"] or " "},
                              {"role": "user", "content": it["turns"][1]}]
                    msgs.append(m)
                outs = be.complete([be.render(m) for m in msgs], max_new_tokens=args.max_new_tokens,
                                   temperature=temp, stop=(), chat=True, what=f"{name} {suite} turn {turn} (T={temp})")
                for it, m, o in zip(part, msgs, outs):
                    if getattr(o, "error", None):
                        continue
                    q = it["turns"][turn - 1]
                    store.add(base | {"id": it["id"], "category": it["category"], "messages": m, "question": q,
                                      "output": o.text, "token_ids": o.token_ids, "finish": o.finish,
                                      "truncated": o.truncated,
                                      "flags": generation_flags(o.text, q, finish_reason=o.finish),
                                      "rep": repetition_stats(o.text, o.token_ids)})
    return keys


def judge_requests(suite: str, items: dict, store: RecordStore, name: str, judge_name: str) -> list[tuple[dict, list]]:
    """(judge record without the verdict, messages) for every answer of `name` not judged yet."""
    out = []
    for it in items.values():
        for turn in (1, 2) if suite == "mt_bench" else (1,):
            gens = [store.get(("gen", name, suite, None, it["id"], t, None)) for t in range(1, turn + 1)]
            jkey = {"kind": "judge", "model": name, "suite": suite, "id": it["id"], "turn": turn, "judge": judge_name,
                    "category": it["category"]}
            if None in gens or key(jkey) in store:
                continue
            answers = [g["output"] for g in gens]
            if suite == "mt_bench":
                msgs = judge.mt_bench_judge_messages(it["turns"], answers, turn, references=it["references"])
            elif not answers[0].strip():  # gpt4-autoeval grades an empty answer 1 without asking
                store.add(jkey | {"text": "", "score": float(judge.ELYZA_EMPTY_GRADE), "status": "ok"})
                continue
            else:
                msgs = judge.elyza_judge_messages(it["turns"][0], it["reference"], it["eval_aspect"], answers[0])
            out.append((jkey, msgs))
    return out


def run_judge(client, name: str, suite: str, args: Args, store: RecordStore) -> None:
    items = {it["id"]: it for it in chat_items(suite, args.data_dir, args.limit)}
    todo = judge_requests(suite, items, store, name, args.judge_model)
    res = client.chat([ChatRequest(m, temperature=0.0, max_tokens=judge.JUDGE_MAX_TOKENS) for _, m in todo])
    parse = judge.parse_mt_bench_rating if suite == "mt_bench" else judge.parse_elyza_grade
    for (rec, _), r in zip(todo, res):
        if r.error is None:
            rating = parse(r.text)
            store.add(rec | {"text": r.text, "score": rating.score, "status": rating.status})
    failed = sum(r.error is not None for r in res)
    say(f"{name} {suite}: judged {len(todo) - failed} new answers ({failed} judge calls failed, retried next run)")


def calibrate(client, args: Args, store: RecordStore) -> dict:
    rows = judged_answers(args.data_dir, args.limit)
    todo = [(r, {"kind": "calib", "model": r["model"], "id": str(r["question_id"]), "judge": args.judge_model})
            for r in rows]
    new = [(r, k) for r, k in todo if key(k) not in store]
    res = client.chat([ChatRequest(judge.mt_bench_judge_messages([r["prompt"]], [r["response"]], 1,
                                                                 references=r["references"]),
                                   temperature=0.0, max_tokens=judge.JUDGE_MAX_TOKENS) for r, _ in new])
    for (r, k), res_ in zip(new, res):
        if res_.error is None:
            store.add(k | {"text": res_.text, "gpt4": r["gpt4_score"], **vars(judge.parse_mt_bench_rating(res_.text))})
    done = [store.get(key(k)) for _, k in todo if key(k) in store]
    pairs = [(c["score"], float(c["gpt4"])) for c in done if c["status"] == "ok"]
    return calibration(pairs) | {"judge": args.judge_model, "failed": len(todo) - len(pairs)}


def main(args: Args) -> dict:
    out = Path(args.out_dir)
    store = RecordStore(out / "items.jsonl")
    if store.dropped:
        say(f"dropped {store.dropped} torn line(s) of a killed run: those items are redone")
    unknown = sorted(set(args.tasks) - set(TASKS) - set(CHAT_SUITES))
    if unknown:
        raise ValueError(f"unknown tasks {unknown}; known: {[*TASKS, *CHAT_SUITES]}")
    models = model_names(args.model)
    if not models and not args.calibrate_judge:
        raise ValueError("nothing to do: give --model [NAME=]PATH (repeatable) and/or --calibrate-judge")
    marks = parse_contaminated(args.contaminated, list(models))
    judge_url = args.judge_url or os.environ.get("JUDGE_URL")
    args.judge_model = args.judge_model or os.environ.get("JUDGE_MODEL")
    client = EndpointClient(judge_url, args.judge_model, api_key=args.judge_api_key or os.environ.get("JUDGE_API_KEY"),
                            cache_dir=out / "judge_cache", concurrency=args.judge_concurrency) if judge_url else None
    if (args.calibrate_judge or judge_url) and not (judge_url and args.judge_model):
        raise ValueError("a judge needs both --judge-url and --judge-model (or JUDGE_URL / JUDGE_MODEL)")
    wanted, notes = [], []
    for name, path in models.items():
        be = Remote(path, args, out) if args.endpoint else InProcess(path, args)
        if be.note:
            notes.append(f"{name}: {be.note}")
        for task in [t for t in args.tasks if t in TASKS]:
            wanted += run_llmjp(be, name, task, args, store)
        for suite in [s for s in args.tasks if s in CHAT_SUITES]:
            wanted += run_chat(be, name, suite, args, store)
            if client:
                run_judge(client, name, suite, args, store)
        del be
    if client:  # every judgement of the chosen answers (also those of earlier runs)
        gens = set(wanted)
        wanted += [key(r) for r in store.records if r["kind"] == "judge" and r["judge"] == args.judge_model
                   and ("gen", r["model"], r["suite"], None, r["id"], r["turn"], None) in gens]
    else:
        notes.append("no judge configured: MT-Bench/ELYZA answers generated, reference-free metrics only")
    records = [store.get(k) for k in dict.fromkeys(wanted) if k in store]
    contamination = None
    if args.contamination:
        jglue = Path(args.data_dir) / "jglue"
        examples = {t: {e.id: e.input + "\n" + e.output for e in load_task(
            t, jglue, num_few_shots=args.num_few_shots, limit=args.limit)[1]} for t in args.tasks if t in TASKS}
        examples |= {s: {it["id"]: "\n".join(it["turns"]) for it in chat_items(s, args.data_dir, args.limit)}
                     for s in args.tasks if s in CHAT_SUITES}
        contamination = {", ".join(args.contamination): contamination_report(
            examples, args.contamination, threshold=args.contamination_threshold)}
    cal = calibrate(client, args, store) if args.calibrate_judge else None
    summary = summarize(records)
    meta = {n: {"path": p, "contaminated": marks.get(n, [])} for n, p in models.items()}
    write_report(out, summary, records, models=meta, contamination=contamination, calibration=cal, notes=notes)
    result = {"models": meta, "summary": summary, "contamination": contamination, "calibration": cal,
              "records": records}
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(result, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, out / "results.json")
    say(f"wrote {out / 'report.md'} and {out / 'results.json'} ({len(records)} records)")
    return result


if __name__ == "__main__":
    try:
        main(parse_args(Args))
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
