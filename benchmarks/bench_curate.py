"""jpcurate throughput and kept counts vs HojiChar and datatrove (FineWeb-2 ja) on the same real text.

    make .venv-peers            # once: HojiChar + datatrove (+ spaCy/Sudachi, fugashi) in their own venv
    .venv/bin/python benchmarks/bench_curate.py [--repeats 3] [--tag shared] [--only-ours]

Input: the bundled real Japanese text — FineWeb-2 sample (100 web pages), OSCAR (2), JSQuAD Wikipedia paragraphs
grouped into 400+-character documents, Aozora Bunko excerpts (~2,000 characters). Every configuration runs in
its own process on one core over texts preloaded in memory (JSON parsing excluded, as in the anchors' harness);
MB/s per core = UTF-8 megabytes / CPU seconds, median of the repeats. The end-to-end rows run the whole
`jpcurate filter --preset ja-web` command (JSONL in, three outputs, stats.json, process start-up) on ~10 MB of
page-sized documents (<= 3,000 characters; `build_pages`), timed by wall clock, interleaved repeat by repeat with
HojiChar's filters alone on the same texts (the issue-15 comparison). Results go to
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
    sys.path.insert(0, str(ROOT / "src"))  # this checkout's code, not an installed jpcurate
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


def build_pages(path: Path, megabytes: float = 10.0, seed: int = 0) -> None:
    """Page-sized documents (<= 3,000 characters): the bundled web pages and Wikipedia documents cut to 3,000
    characters, and Aozora Bunko works (../shared/data/aozora_corpus when present, else data/aozora) cut into pieces
    of 300-3,000 characters; shuffled, up to `megabytes` of JSONL."""
    import random

    sys.path.insert(0, str(ROOT / "src"))
    from jpcurate.lm.build_default import wikipedia_documents

    rng = random.Random(seed)
    data = ROOT / "data"
    texts = [json.loads(line)["text"][:3000] for line in open(data / "web_ja" / "fineweb2_edu_ja_sample.jsonl",
                                                               encoding="utf-8")]
    texts += [t[:3000] for t in wikipedia_documents(data / "jglue" / "jsquad_paragraphs.jsonl")]
    shared = next((d / "shared" / "data" for d in (ROOT, *ROOT.parents) if (d / "shared" / "data").is_dir()), ROOT)
    aozora = shared / "aozora_corpus" / "aozora_pd_corpus.jsonl"  # ../shared/data of the checkout
    for line in open(aozora if aozora.exists() else data / "aozora" / "works.jsonl", encoding="utf-8"):
        t, i = json.loads(line)["text"], 0
        while i < len(t):
            k = rng.randint(300, 3000)
            texts.append(t[i : i + k])
            i += k
    rng.shuffle(texts)
    size = 0
    with open(path, "w", encoding="utf-8") as f:
        for n, t in enumerate(texts):
            line = json.dumps({"id": f"page-{n}", "text": t}, ensure_ascii=False) + "\n"
            f.write(line)
            size += len(line.encode("utf-8"))
            if size >= megabytes * 1e6:
                break


def end_to_end(pages: Path, repeats: int) -> list[tuple[str, str, dict | str]]:
    """The whole `jpcurate filter --preset ja-web` command on `pages` (JSONL in, three outputs, stats.json; process
    start-up included), timed by wall clock, interleaved with HojiChar's filters alone on the same texts (preloaded,
    CPU time, as in the filters-only rows): each repeat runs ours, then HojiChar."""
    ours: dict = {"seconds": [], "cpu_seconds": []}
    hoji: dict | str = {"seconds": []}
    for k in range(repeats):
        out = pages.parent / f"e2e{k}"
        c0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        subprocess.run([sys.executable, "-m", "jpcurate", "filter", "--preset", "ja-web", "--input", str(pages),
                        "--output", str(out), "--quiet"], check=True, capture_output=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        ours["seconds"].append(time.perf_counter() - t0)  # wall clock of the whole process
        ours["cpu_seconds"].append(c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime)
        if isinstance(hoji, dict):
            if not PEERS_PY.exists():
                hoji = f"peer venv {PEERS_PY.parent.parent} missing: run `make .venv-peers`"
            else:
                r = run_json([str(PEERS_PY), str(ROOT / "benchmarks" / "peers_curate.py"), "hojichar", str(pages), "1"])
                hoji = r if isinstance(r, str) else {**r, "seconds": hoji["seconds"] + r["seconds"]}
    stats = json.loads((pages.parent / "e2e0" / "stats.json").read_text())
    ours.update(kept=stats["documents"]["kept"], docs=stats["documents"]["input"], bytes=stats["bytes"]["input"])
    mb = pages.stat().st_size / 1e6
    return [("jpcurate", f"ja-web, `jpcurate filter` end to end ({mb:.1f} MB page-sized JSONL, 1 worker, JSON "
             "in/out, start-up; wall clock)", ours),
            ("HojiChar", "hojichar filters alone, same pages (preloaded, CPU time)", hoji)]


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
    ap.add_argument("--pages-mb", type=float, default=10.0, help="size of the page-sized input of the end-to-end rows")
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
        pages = tmp / "pages.jsonl"
        build_pages(pages, args.pages_mb)
        rows += end_to_end(pages, args.repeats)
    print_and_save(rows, inp, args.repeats, args.tag)
    return 0


def print_and_save(rows, inp: Path, repeats: int, tag: str = "") -> None:
    def mbs_of(res: dict) -> float:
        return res["bytes"] / statistics.median(res["seconds"]) / 1e6

    hojis = [(n, r) for s, n, r in rows if s == "HojiChar" and isinstance(r, dict)]
    hoji_mbs = mbs_of(hojis[0][1]) if hojis else None  # the filters-only rows: HojiChar on the same input
    hoji_pages = mbs_of(hojis[-1][1]) if hojis and "pages" in hojis[-1][0] else None  # the end-to-end rows
    n_docs = sum(1 for _ in open(inp, encoding="utf-8"))
    mb = inp.stat().st_size / 1e6
    load = f"load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "load unknown"
    lines = [f"Machine: {machine()} ({tag or 'untagged'} run, {load} at the end: on a shared machine the numbers "
             f"are noisy). Input: {n_docs} real Japanese "
             f"documents, {mb:.2f} MB JSONL (FineWeb-2 + OSCAR web pages, Wikipedia, Aozora). One process per row, "
             f"one core, median of {repeats}; MB/s from CPU time (an oversubscribed machine distorts wall time). The "
             "end-to-end rows (last two) run on page-sized documents, ours as a whole process timed by wall clock "
             "(start-up included; its CPU time beside it, as a busy machine stretches wall time), "
             "HojiChar's filters alone "
             "on the same texts, interleaved repeat by repeat.",
             "",
             "| system | configuration | kept / docs | MB/s per core | vs HojiChar |", "|---|---|---:|---:|---:|"]
    out = []
    for system, name, res in rows:
        if isinstance(res, str):
            lines.append(f"| {system} | {name} | — | — | missing: {res} |")
            out.append({"system": system, "config": name, "error": res})
            continue
        mbs = mbs_of(res)
        base = hoji_pages if ("end to end" in name or "pages" in name) else hoji_mbs
        ratio = f"{mbs / base:.1f}x" if base else "—"
        if "cpu_seconds" in res:  # the whole process: wall clock (above) and CPU time, which a busy machine spares
            cpu = res["bytes"] / statistics.median(res["cpu_seconds"]) / 1e6
            res["cpu_mb_per_s"] = round(cpu, 3)
            mbs_text = f"{mbs:.2f} wall; {cpu:.2f} CPU"
            ratio += f" wall; {cpu / base:.1f}x CPU" if base else ""
        else:
            mbs_text = f"{mbs:.2f}"
        lines.append(f"| {system} | {name} | {res['kept']} / {res['docs']} | {mbs_text} | {ratio} |")
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
