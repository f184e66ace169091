"""Rephrase pretraining text, regenerate answers, or write chain-of-thought answers with any OpenAI-compatible model.

    python apps/serve.py --model runs/demo/pretrain/hf --port 8011 &   # our local server (or vLLM, OpenAI, ...)
    python apps/generate_data.py --job rephrase --style plain --input data/aozora/works.jsonl \
        --out runs/gen/rephrased.jsonl --base-url http://127.0.0.1:8011/v1 --model hf --dry-run
    python apps/generate_data.py --job cot --input runs/instr/sft.jsonl --out runs/gen/cot.jsonl \
        --base-url http://127.0.0.1:8011/v1 --model hf --rpm 600

Writes OUT (kept records: documents with the rephrased `text`, or `messages` records), OUT's siblings
NAME.rejected.jsonl (outputs the filter or the CoT agreement check refused, with the reason and the output),
NAME.failures.jsonl (malformed inputs, requests that failed after their retries, outputs cut at --max-tokens)
and NAME.stats.json (counts, token usage). Every result is cached under --cache-dir (default NAME.cache/):
rerunning a killed job sends only what had not finished; rerunning a finished one sends nothing. --dry-run
prints the first prompts and the request count (and how many are cached) and sends nothing. The job logic is
jpcurate.generation; argparse, not jpmoe.train.parse_args: this app needs jpcurate[llm] only, never torch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from jpcurate import read_documents
from jpcurate.endpoint import EndpointClient
from jpcurate.generation import JOBS, STYLES, JobOptions, pending, plan, run
from jpcurate.instructions import read_records


@dataclass
class Args:
    job: str
    input: str
    out: str
    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "default"
    api_key: str | None = None
    dry_run: bool = False
    style: str = "wikipedia"  # rephrase: wikipedia | plain
    text_key: str = "text"  # rephrase: the text field of the input documents
    max_chars: int = 1200  # rephrase: longest chunk per request
    temperature: float = 0.0
    max_tokens: int = 1024
    seed: int | None = None
    concurrency: int = 8
    rpm: float = 0  # requests per minute, 0: unlimited
    max_retries: int = 5
    timeout: float = 120.0
    cache_dir: str = ""  # default: OUT without .jsonl + ".cache"
    show: int = 3  # --dry-run: prompts printed


def parse(argv: list[str] | None = None) -> Args:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--job", required=True, choices=JOBS)
    p.add_argument("--input", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--base-url", dest="base_url", default=Args.base_url)
    p.add_argument("--model", default=Args.model)
    p.add_argument("--api-key", dest="api_key", default=os.environ.get("JPLLM_API_KEY"))
    p.add_argument("--dry-run", dest="dry_run", action="store_true")
    p.add_argument("--style", choices=sorted(STYLES), default=Args.style)
    for name in ("text_key", "max_chars", "temperature", "max_tokens", "seed", "concurrency", "rpm", "max_retries",
                 "timeout", "cache_dir", "show"):
        default = getattr(Args, name)
        kind = {int: int, float: float, str: str}.get(type(default), int)
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=kind, default=default)
    return Args(**vars(p.parse_args(argv)))


def outputs(out: str) -> dict[str, Path]:
    base = Path(out)
    stem = base.name[:-len(".jsonl")] if base.name.endswith(".jsonl") else base.name
    return {"kept": base, **{k: base.with_name(f"{stem}.{k}.jsonl") for k in ("rejected", "failures")},
            "stats": base.with_name(f"{stem}.stats.json"), "cache": base.with_name(f"{stem}.cache")}


def write_jsonl(path: Path, records: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    tmp.replace(path)


def main(args: Args) -> dict:
    if not Path(args.input).exists():
        raise FileNotFoundError(f"--input {args.input}: no such file")
    paths = outputs(args.out)
    o = JobOptions(style=args.style, max_chars=args.max_chars, temperature=args.temperature,
                   max_tokens=args.max_tokens, seed=args.seed)
    inputs = (read_documents(args.input, text_field=args.text_key) if args.job == "rephrase"
              else read_records([args.input]))
    job = plan(args.job, inputs, o)
    client = EndpointClient(args.base_url, args.model, api_key=args.api_key,
                            cache_dir=args.cache_dir or paths["cache"], concurrency=args.concurrency, rpm=args.rpm,
                            max_retries=args.max_retries, timeout=args.timeout, progress=not args.dry_run)
    n = sum(len(r) for r in job.requests)
    if args.dry_run:
        todo = pending(job, client)
        for reqs in job.requests[:args.show]:
            for m in reqs[0].messages:
                more = len(m["content"]) - 1000
                tail = f"\n... ({more} more characters)" if more > 0 else ""
                print(f"--- {m['role']}\n{m['content'][:1000]}{tail}")
        print(f"{args.job}: {len(job.items)} inputs ({len(job.failures)} malformed), {n} requests, "
              f"{n - todo} cached, {todo} to send to {client.url} (model {args.model})")
        return {"requests": n, "pending": todo, "malformed": len(job.failures)}
    print(f"{args.job}: {len(job.items)} inputs, {n} requests to {client.url}", file=sys.stderr)
    result = run(job, client, o)
    paths["kept"].parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(paths["kept"], result.records)
    write_jsonl(paths["rejected"], result.rejected)
    write_jsonl(paths["failures"], result.failures)
    paths["stats"].write_text(json.dumps(result.stats, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    s = result.stats
    print(f"{args.job}: kept {s['kept']}, rejected {s['rejected']} {s['rejected_by_reason']}, failures "
          f"{s['failures']} {s['failures_by_reason']}; tokens {s['usage']['total_tokens']}, requests sent "
          f"{s['usage']['requests']}, cache hits {s['usage']['cache_hits']} -> {paths['kept']}", file=sys.stderr)
    return s


if __name__ == "__main__":
    main(parse())
