"""jpcurate throughput and kept counts vs HojiChar and datatrove (FineWeb-2 ja) on the same real text.

    make .venv-peers            # once: HojiChar + datatrove (+ spaCy/Sudachi, fugashi) in their own venv
    .venv/bin/python benchmarks/bench_curate.py [--repeats 3] [--tag shared] [--only-ours]

Input: the bundled real Japanese text — FineWeb-2 sample (100 web pages), OSCAR (2), JSQuAD Wikipedia paragraphs
grouped into 400+-character documents, Aozora Bunko excerpts (~2,000 characters). Every configuration runs in
its own process on one core over texts preloaded in memory (JSON parsing excluded, as in the anchors' harness);
MB/s per core = UTF-8 megabytes / CPU seconds, median of the repeats. One extra row runs the whole
`jpcurate filter` command (JSONL in, three outputs, stats.json) for the end-to-end cost (CPU of the child process,
wall clock shown beside it). Results go to
benchmarks/results/curate-<date>-<machine>[-<tag>].{md,json} (`--tag shared` for a run on a machine other jobs
share, so that it does not overwrite a quiet run's file). A missing peer venv is reported, not fatal;
`--only-ours` skips the peers and the end-to-end row (a quick check of our rows).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEERS_PY = ROOT / ".venv-peers" / "bin" / "python"
OURS = [("jpcurate", "ja-web", False), ("jpcurate", "ja-web", True), ("jpcurate", "swallow", False)]
PEERS = [("HojiChar", "hojichar"), ("datatrove", "datatrove-fw2-ja")]


def build_input(path: Path) -> None:
    sys.path.insert(0, str(ROOT / "src"))
    from jpcurate.lm.build_default import aozora_excerpts, wikipedia_documents

    data = ROOT / "data"
    texts = [json.loads(line)["text"] for f in ("fineweb2_edu_ja_sample.jsonl", "oscar_ja_dummy.jsonl")
             for line in open(data / "web_ja" / f, encoding="utf-8")]
    texts += wikipedia_documents(data / "jglue" / "jsquad_paragraphs.jsonl")
    texts += aozora_excerpts(data / "aozora" / "works.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for i, t in enumerate(texts):
            f.write(json.dumps({"id": str(i), "text": t}, ensure_ascii=False) + "\n")


def worker(preset: str, mecab: bool, path: str, repeats: int) -> None:
    """Our side, in its own process: run_pipeline over preloaded Documents, batches of 512."""
    from jpcurate import Document, build_preset, run_pipeline

    texts = [json.loads(line)["text"] for line in open(path, encoding="utf-8")]
    pipeline = build_preset(preset, mecab=mecab)
    run_pipeline(pipeline, [Document(str(i), t) for i, t in enumerate(texts[:20])])  # warm-up: tables, models
    seconds, kept = [], 0
    for _ in range(repeats):
        docs = [Document(str(i), t) for i, t in enumerate(texts)]
        t0 = time.process_time()
        kept = sum(len(run_pipeline(pipeline, docs[i : i + 512])[0]) for i in range(0, len(docs), 512))
        seconds.append(time.process_time() - t0)
    print(json.dumps({"kept": kept, "docs": len(texts), "bytes": sum(len(t.encode()) for t in texts),
                      "seconds": seconds}))


def run_json(cmd: list[str]) -> dict | str:
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    if r.returncode != 0:
        return (r.stderr.strip().splitlines() or ["no output"])[-1][:200]
    return json.loads(r.stdout.strip().splitlines()[-1])


def end_to_end(path: Path, repeats: int, copies: int = 4) -> dict:
    """The whole command on `copies` concatenated copies of the input (distinct ids), so that the process start
    (imports, model and table loading: ~1 s) weighs less."""
    big = path.parent / "e2e_input.jsonl"
    with open(big, "w", encoding="utf-8") as f:
        for c in range(copies):
            for line in open(path, encoding="utf-8"):
                rec = json.loads(line)
                rec["id"] = f"{c}-{rec['id']}"
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    seconds, wall = [], []
    for k in range(repeats):
        out = path.parent / f"e2e{k}"
        c0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        subprocess.run([sys.executable, "-m", "jpcurate.cli", "filter", "--preset", "ja-web", "--input", str(big),
                        "--output", str(out), "--quiet"], check=True, capture_output=True)
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        seconds.append(c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime)  # CPU of the whole command
        wall.append(time.perf_counter() - t0)
    stats = json.loads((path.parent / "e2e0" / "stats.json").read_text())
    return {"kept": stats["documents"]["kept"], "docs": stats["documents"]["input"],
            "bytes": stats["bytes"]["input"], "seconds": seconds, "wall_seconds": wall}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} vCPU"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tag", default="", help="suffix of the result file names, e.g. shared or quiet")
    ap.add_argument("--only-ours", action="store_true", help="our preset rows only (no peers, no end-to-end row)")
    ap.add_argument("--worker", nargs=3, metavar=("PRESET", "MECAB", "INPUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1] == "1", args.worker[2], args.repeats)
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="bench_curate_"))
    inp = tmp / "input.jsonl"
    build_input(inp)
    rows = []
    for system, preset, mecab in OURS:
        res = run_json([sys.executable, __file__, "--repeats", str(args.repeats), "--worker", preset,
                        "1" if mecab else "0", str(inp)])
        rows.append((system, preset + (" + MeCab rules" if mecab else ""), res))
    for system, name in [] if args.only_ours else PEERS:
        if not PEERS_PY.exists():
            res = f"peer venv {PEERS_PY.parent.parent} missing: run `make .venv-peers` (pip install failed or not run)"
        else:
            res = run_json([str(PEERS_PY), str(ROOT / "benchmarks" / "peers_curate.py"), name, str(inp),
                            str(args.repeats)])
        rows.append((system, name, res))
    if not args.only_ours:
        e2e = end_to_end(inp, args.repeats)
        e2e_wall = e2e["bytes"] / statistics.median(e2e["wall_seconds"]) / 1e6
        rows.append(("jpcurate", f"ja-web, `jpcurate filter` end to end on 4x the input (1 worker; JSON in/out, "
                     f"start-up; wall {e2e_wall:.2f} MB/s)", e2e))
    print_and_save(rows, inp, args.repeats, args.tag)
    return 0


def print_and_save(rows, inp: Path, repeats: int, tag: str = "") -> None:
    hoji = next((r for s, n, r in rows if s == "HojiChar" and isinstance(r, dict)), None)
    hoji_mbs = hoji["bytes"] / statistics.median(hoji["seconds"]) / 1e6 if hoji else None
    n_docs = sum(1 for _ in open(inp, encoding="utf-8"))
    mb = inp.stat().st_size / 1e6
    load = f"load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "load unknown"
    lines = [f"Machine: {machine()} ({tag or 'untagged'} run, {load} at the end: on a shared machine the numbers "
             f"are noisy). Input: {n_docs} real Japanese "
             f"documents, {mb:.2f} MB JSONL (FineWeb-2 + OSCAR web pages, Wikipedia, Aozora). One process per row, "
             f"one core, median of {repeats}; MB/s from CPU time (an oversubscribed machine distorts wall time).",
             "",
             "| system | configuration | kept / docs | MB/s per core | vs HojiChar |", "|---|---|---:|---:|---:|"]
    out = []
    for system, name, res in rows:
        if isinstance(res, str):
            lines.append(f"| {system} | {name} | — | — | missing: {res} |")
            out.append({"system": system, "config": name, "error": res})
            continue
        mbs = res["bytes"] / statistics.median(res["seconds"]) / 1e6
        ratio = f"{mbs / hoji_mbs:.1f}x" if hoji_mbs else "—"
        lines.append(f"| {system} | {name} | {res['kept']} / {res['docs']} | {mbs:.2f} | {ratio} |")
        out.append({"system": system, "config": name, "mb_per_s": round(mbs, 3), **res})
    table = "\n".join(lines)
    print(table)
    results = ROOT / "benchmarks" / "results"
    results.mkdir(exist_ok=True)
    stem = f"curate-{date.today().isoformat()}-{platform.machine()}-{os.cpu_count()}cpu" + (f"-{tag}" if tag else "")
    (results / f"{stem}.md").write_text("# bench_curate\n\n" + table + "\n", encoding="utf-8")
    (results / f"{stem}.json").write_text(json.dumps({"machine": machine(), "tag": tag, "rows": out}, indent=1),
                                          encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
