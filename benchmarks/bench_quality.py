"""What `ja-web` keeps and removes, per kind of text, on the quality set (real natural Japanese + generated junk).

    .venv/bin/python benchmarks/bench_quality.py [--presets ja-web ja-web+mecab swallow] [--tag shared] [--examples 3]
                                                 [--junk-seed 1]

Input: `benchmarks/quality_set/{natural,junk}.jsonl` (built by `build_quality_set.py`; every document labelled
with its kind). Prints one markdown table per preset: documents per kind, share kept (natural) or removed (junk),
the target (natural: keep >= 98 % of every kind; junk: remove >= 99 % overall and >= 90 % of every kind), whether
it is met, and the reasons behind the misses; then the losses themselves (`--examples` per kind). Results go to
benchmarks/results/quality-<date>-<machine>[-<tag>].{md,json}.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections import Counter
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SET = ROOT / "benchmarks" / "quality_set"
KEEP_TARGET, REMOVE_TARGET, REMOVE_EACH = 0.98, 0.99, 0.90


def load(junk_seed: int | None = None) -> list[dict]:
    """The stored set, or with `junk_seed` its natural part next to a fresh draw of the junk generator (a check
    that the thresholds were not fitted to the stored junk documents)."""
    natural = [json.loads(line) for line in open(SET / "natural.jsonl", encoding="utf-8")]
    if junk_seed is None:
        return natural + [json.loads(line) for line in open(SET / "junk.jsonl", encoding="utf-8")]
    sys.path.insert(0, str(Path(__file__).parent))
    from quality_junk import generate

    return natural + [{"id": f"s{i:04d}", "group": "junk", **d} for i, d in enumerate(generate(seed=junk_seed))]


def evaluate(preset: str, records: list[dict]) -> dict:
    """Per kind: documents, kept, reasons of the wrong outcomes; plus the wrong outcomes themselves."""
    from jpcurate import Document, build_preset, run_pipeline

    name, plus, extra = preset.partition("+")
    pipeline = build_preset(name, mecab=plus == "+" and extra == "mecab")
    docs = [Document(r["id"], r["text"]) for r in records]
    out = []
    for i in range(0, len(docs), 256):
        run_pipeline(pipeline, docs[i : i + 256])
    by_kind: dict[tuple[str, str], dict] = {}
    for r, d in zip(records, docs):
        k = by_kind.setdefault((r["group"], r["kind"]), {"docs": 0, "kept": 0, "reasons": Counter()})
        k["docs"] += 1
        k["kept"] += d.reason is None
        wrong = (d.reason is not None) if r["group"] == "natural" else (d.reason is None)
        if wrong:
            k["reasons"][d.reason or "kept"] += 1
            out.append({"id": r["id"], "kind": r["kind"], "reason": d.reason, "detail": d.detail,
                        "source": r["source"], "text": r["text"][:300]})
    return {"kinds": by_kind, "wrong": out}


def table(preset: str, res: dict) -> str:
    rows = [f"### `{preset}`", "", "| group | kind | docs | kept | removed | share right | target | met | "
            "reasons of the misses |", "|---|---|---:|---:|---:|---:|---|---|---|"]
    totals = {"natural": [0, 0], "junk": [0, 0]}
    for (group, kind), k in sorted(res["kinds"].items()):
        right = k["kept"] if group == "natural" else k["docs"] - k["kept"]
        totals[group][0] += k["docs"]
        totals[group][1] += right
        share = right / k["docs"]
        target = KEEP_TARGET if group == "natural" else REMOVE_EACH
        miss = ", ".join(f"{r} {n}" for r, n in k["reasons"].most_common())
        rows.append(f"| {group} | {kind} | {k['docs']} | {k['kept']} | {k['docs'] - k['kept']} | {share:.1%} | "
                    f"{'keep' if group == 'natural' else 'remove'} >= {target:.0%} | "
                    f"{'yes' if share >= target else '**no**'} | {miss} |")
    for group, (n, right) in totals.items():
        target = KEEP_TARGET if group == "natural" else REMOVE_TARGET
        rows.append(f"| **{group}** | **all** | {n} | | | **{right / n:.1%}** | "
                    f"{'keep' if group == 'natural' else 'remove'} >= {target:.0%} | "
                    f"{'yes' if right / n >= target else '**no**'} | |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="+", default=["ja-web"])
    ap.add_argument("--tag", default="")
    ap.add_argument("--examples", type=int, default=3, help="wrong outcomes shown per kind")
    ap.add_argument("--junk-seed", type=int, default=None, help="a fresh junk draw instead of the stored junk")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    records = load(args.junk_seed)
    n_nat = sum(r["group"] == "natural" for r in records)
    md = [f"# ja-web quality: keep/remove per kind ({date.today()}, {platform.machine()})", "",
          f"Quality set: {n_nat} natural documents, {len(records) - n_nat} junk documents "
          "(benchmarks/quality_set, built by benchmarks/build_quality_set.py"
          f"{'' if args.junk_seed is None else f'; junk drawn afresh with seed {args.junk_seed}'}).", ""]
    results = {}
    for preset in args.presets:
        res = evaluate(preset, records)
        results[preset] = res
        md += [table(preset, res), ""]
        shown: Counter = Counter()
        examples = []
        for w in res["wrong"]:
            if shown[w["kind"]] < args.examples:
                shown[w["kind"]] += 1
                examples.append(f"- {w['kind']} `{w['id']}` ({w['source']}): {w['reason'] or 'kept'} — "
                                f"{w['detail'] or ''} — {w['text'][:80]!r}")
        if examples:
            md += [f"Misses of `{preset}` (first {args.examples} per kind):", "", *examples, ""]
    text = "\n".join(md)
    print(text)
    tag = f"-{args.tag}" if args.tag else ""
    out = ROOT / "benchmarks" / "results" / f"quality-{date.today()}-{platform.machine()}{tag}"
    out.with_suffix(".md").write_text(text + "\n", encoding="utf-8")
    summary = {p: {f"{g}/{k}": {"docs": v["docs"], "kept": v["kept"], "misses": dict(v["reasons"])}
                   for (g, k), v in r["kinds"].items()} for p, r in results.items()}
    out.with_suffix(".json").write_text(json.dumps(summary, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
