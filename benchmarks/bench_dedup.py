"""Dedup benchmark: MinHash signature throughput against datasketch, and end-to-end dedup time and memory.

    python benchmarks/bench_dedup.py                 # signatures + end-to-end at 1e4 and 1e5 documents
    python benchmarks/bench_dedup.py --sizes 1000000 # the 10^6 run (minutes; run it in the background)

Same documents for every contender, one process, median of `--repeats`:

- ours: `MinHasher.signatures` (char 5-grams, 128 permutations, numpy, all documents of a batch at once);
- datasketch `MinHash(num_perm=128)` per document with its defaults (sha1 hashfunc, affine32), `update_batch`;
- datasketch `MinHash.bulk` (the same, reusing the initialised state).

Throughput is UTF-8 bytes of text per second on one core (the shingle sets are built inside each timed region).
The real-text end-to-end rows run `jpcurate dedup` and datasketch MinHash + MinHashLSH (`peers_dedup.py`) each as a
whole process on ~24 MB of real Japanese text (Aozora pieces + the near-duplicate set), wall clock incl. start-up.
The end-to-end runs start a fresh process per size (`jpcurate.dedup.local.run_dedup`, 1 worker) on synthetic
Japanese web documents built from the bundled samples: 10% exact copies, 15% near copies (character edits, a
changed footer), shared boilerplate lines. Reported: seconds per phase, peak RSS, and bytes per document of
each phase (peak traced memory and on-disk intermediates).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from jpcurate.dedup.minhash import MinHasher  # noqa: E402
from jpcurate.dedup.normalize import normalize_for_dedup  # noqa: E402


def base_sentences() -> list[str]:
    out = []
    for rel in ("data/web_ja/fineweb2_edu_ja_sample.jsonl", "data/jglue/jsquad_paragraphs.jsonl",
                "data/aozora/works.jsonl"):
        for line in (ROOT / rel).read_text(encoding="utf-8").splitlines():
            text = json.loads(line).get("text") or ""
            out += [s + "。" for s in text.replace("\n", "。").split("。") if len(s) > 8]
    return out


FOOTERS = ["このサイトについて | プライバシーポリシー | お問い合わせ", "Copyright © 2024 All Rights Reserved.",
           "ホーム > ブログ > 記事一覧", "関連記事: 人気のランキングはこちら"]


def synth_docs(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    sents = base_sentences()
    docs: list[dict] = []
    for i in range(n):
        r = rng.random()
        if docs and r < 0.10:  # exact copy
            text = docs[rng.randrange(len(docs))]["text"]
        elif docs and r < 0.25:  # near copy: a few character edits and another footer
            chars = list(docs[rng.randrange(len(docs))]["text"])
            for _ in range(rng.randint(1, 4)):
                chars[rng.randrange(len(chars))] = rng.choice("あいうえおかきくけこ")
            text = "".join(chars) + "\n" + rng.choice(FOOTERS)
        else:
            k = rng.randint(3, 12)
            body = "".join(rng.choice(sents) for _ in range(k))
            text = "\n".join([body[j:j + 120] for j in range(0, len(body), 120)] + [rng.choice(FOOTERS)])
        docs.append({"id": f"doc-{i:08d}", "text": text})
    return docs


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_signatures(n_docs: int, repeats: int) -> list[dict]:
    from datasketch import MinHash

    texts = [normalize_for_dedup(d["text"]) for d in synth_docs(n_docs, seed=1)]
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    ours = MinHasher(num_perm=128, ngram=5)

    def shingles(t: str) -> list[bytes]:
        return [s.encode("utf-8") for s in {t[i:i + 5] for i in range(len(t) - 4)}]

    def per_doc():
        for t in texts:
            m = MinHash(num_perm=128)
            m.update_batch(shingles(t))

    def bulk():
        MinHash.bulk([shingles(t) for t in texts], num_perm=128)

    rows = []
    for name, fn, reps in (("jpcurate MinHasher (numpy, batch)", lambda: ours.signatures(texts), repeats),
                           ("datasketch MinHash per document (defaults)", per_doc, max(1, repeats // 2)),
                           ("datasketch MinHash.bulk", bulk, max(1, repeats // 2))):
        sec = median_time(fn, reps)
        rows.append({"impl": name, "docs": n_docs, "MB": round(mb, 2), "seconds": round(sec, 3),
                     "MB_per_s": round(mb / sec, 2)})
    base = rows[1]["MB_per_s"]
    for r in rows:
        r["vs_datasketch"] = round(r["MB_per_s"] / base, 1)
    return rows


def bench_end_to_end(n_docs: int, workdir: Path) -> dict:
    """Run the dedup of `n_docs` synthetic documents in a fresh process; return its phase report and peak RSS."""
    workdir.mkdir(parents=True, exist_ok=True)
    inp = workdir / f"synth-{n_docs}.jsonl"
    if not inp.exists():
        with open(inp, "w", encoding="utf-8") as f:
            for d in synth_docs(n_docs, seed=2):
                f.write(json.dumps(d, ensure_ascii=False) + "\n")
    out = workdir / f"out-{n_docs}"
    subprocess.run(["rm", "-rf", str(out)], check=True)
    code = (
        "import json, sys, time, tracemalloc\n"
        "from jpcurate.dedup.local import run_dedup\n"
        "tracemalloc.start()\n"
        "t = time.perf_counter()\n"
        f"d = run_dedup([{str(inp)!r}], {str(out)!r}, progress=False)\n"
        "print(json.dumps({'seconds': time.perf_counter() - t, 'stats': d,\n"
        "  'max_rss': max(p.get('peak_rss_bytes', 0) for p in d['dedup']['phases'].values())}))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    r = json.loads(res.stdout.strip().splitlines()[-1])
    r["input_MB"] = round(inp.stat().st_size / 1e6, 1)
    r["docs"] = n_docs
    return r


def build_real(path: Path, seed: int = 0) -> None:
    """~24 MB of real Japanese text: the Aozora Bunko corpus of ../shared/data (data/aozora when absent) cut into
    pieces of 300-3,000 characters, plus the labelled near-duplicate set (web pages and their edited copies)."""
    shared = next((d / "shared" / "data" for d in (ROOT, *ROOT.parents) if (d / "shared" / "data").is_dir()), ROOT)
    aozora = shared / "aozora_corpus" / "aozora_pd_corpus.jsonl"
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for line in open(aozora if aozora.exists() else ROOT / "data" / "aozora" / "works.jsonl", encoding="utf-8"):
            rec = json.loads(line)
            t, i = rec["text"], 0
            while i < len(t):
                k = rng.randint(300, 3000)
                f.write(json.dumps({"id": f"{rec['id']}-{i}", "text": t[i : i + k]}, ensure_ascii=False) + "\n")
                i += k
        near = shared / "near_duplicates" / "documents.jsonl"
        if not near.exists():
            near = ROOT / "data" / "near_duplicates" / "documents.jsonl"
        f.write(near.read_text(encoding="utf-8"))


def bench_real_e2e(workdir: Path, repeats: int) -> list[dict]:
    """`jpcurate dedup` (whole process, 1 worker) against datasketch MinHash + MinHashLSH (`peers_dedup.py`, whole
    process) on the same real text, timed by wall clock including start-up, interleaved repeat by repeat."""
    workdir.mkdir(parents=True, exist_ok=True)
    inp = workdir / "real.jsonl"
    build_real(inp)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    ours, peer = "jpcurate dedup (exact + MinHash LSH, verified)", "datasketch MinHash + MinHashLSH"
    rows: dict[str, list[float]] = {ours: [], peer: []}
    cpu: dict[str, list[float]] = {ours: [], peer: []}
    last: dict = {}

    def timed(name: str, cmd: list[str], **kw) -> dict:
        c0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, check=True, **kw)
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        rows[name].append(time.perf_counter() - t0)  # wall clock of the whole process
        cpu[name].append(c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime)
        return json.loads(r.stdout.strip().splitlines()[-1])

    for k in range(repeats):
        out = workdir / f"real-out-{k}"
        subprocess.run(["rm", "-rf", str(out)], check=True)
        last["ours"] = timed(ours, [sys.executable, "-m", "jpcurate", "dedup", "--input", str(inp), "--output",
                                    str(out), "--quiet"], env=env)
        last["peer"] = timed(peer, [sys.executable, str(ROOT / "benchmarks" / "peers_dedup.py"), str(inp),
                                    str(workdir / "real-datasketch.jsonl")])
    mb = inp.stat().st_size / 1e6
    n_docs = sum(1 for _ in open(inp, encoding="utf-8"))
    peer_s, peer_cpu = statistics.median(rows[peer]), statistics.median(cpu[peer])
    result = []
    for name, secs in rows.items():
        med, med_cpu = statistics.median(secs), statistics.median(cpu[name])
        kept = last["ours"]["kept"] if name == ours else last["peer"]["kept"]
        result.append({"system": name, "docs": n_docs, "MB": round(mb, 1), "kept": kept,
                       "seconds": [round(x, 3) for x in secs], "cpu_seconds": [round(x, 3) for x in cpu[name]],
                       "MB_per_s": round(mb / med, 2), "vs_datasketch": round(peer_s / med, 2),
                       "cpu_MB_per_s": round(mb / med_cpu, 2), "cpu_vs_datasketch": round(peer_cpu / med_cpu, 2)})
    return result


def real_table(rows: list[dict]) -> str:
    lines = ["End to end on real Japanese text (whole process, 1 core, wall clock incl. start-up, median; ours and "
             "datasketch interleaved in one run; CPU time of each process beside it, as a busy machine stretches "
             "wall time):", "",
             "| system | docs | MB | kept | wall s (each repeat) | MB/s wall | x datasketch wall | MB/s CPU | "
             "x datasketch CPU |", "|---|---:|---:|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['system']} | {r['docs']:,} | {r['MB']} | {r['kept']:,} | "
                     f"{', '.join(f'{x:.2f}' for x in r['seconds'])} | {r['MB_per_s']} | {r['vs_datasketch']}x | "
                     f"{r['cpu_MB_per_s']} | {r['cpu_vs_datasketch']}x |")
    return "\n".join(lines)


def e2e_table(results: list[dict]) -> str:
    lines = ["| docs | input MB | total s | kept | exact removed | near removed | peak RSS MB | RSS B/doc |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        s = r["stats"]
        lines.append(f"| {r['docs']:,} | {r['input_MB']} | {r['seconds']:.1f} | {s['documents']['kept']:,} | "
                     f"{s['reasons'].get('exact_duplicate', 0):,} | {s['reasons'].get('near_duplicate', 0):,} | "
                     f"{r['max_rss'] / 1e6:.0f} | {r['max_rss'] / r['docs']:.0f} |")
    lines += ["", "Per phase: seconds, peak Python/numpy memory (tracemalloc) per document, peak RSS of the phase:", "",
              "| docs | phase | seconds | traced peak B/doc | peak RSS MB |", "|---:|---|---:|---:|---:|"]
    for r in results:
        for name, info in r["stats"]["dedup"]["phases"].items():
            peak = r["stats"]["dedup"]["peak_bytes_per_doc"].get(name, 0)
            rss = info.get("peak_rss_bytes", 0) / 1e6
            lines.append(f"| {r['docs']:,} | {name} | {info.get('seconds', 0):.2f} | {peak:.0f} | {rss:.0f} |")
    disk_cols = list(results[0]["stats"]["dedup"]["disk_bytes_per_doc"])
    lines += ["", "On-disk intermediates, bytes per document:", "", "| docs | " + " | ".join(disk_cols) + " |",
              "|---:|" + "---:|" * len(results[0]["stats"]["dedup"]["disk_bytes_per_doc"])]
    for r in results:
        lines.append(f"| {r['docs']:,} | " + " | ".join(f"{v:.0f}" for v in
                                                        r["stats"]["dedup"]["disk_bytes_per_doc"].values()) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sig-docs", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    ap.add_argument("--workdir", default="/tmp/jpcurate-bench-dedup")
    ap.add_argument("--machine", default=platform.node() or "local")
    ap.add_argument("--real-repeats", type=int, default=3, help="repeats of the real-text end-to-end rows (0: skip)")
    args = ap.parse_args()
    header = (f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, 1 process; "
              f"python {platform.python_version()}; char 5-grams, 128 permutations, threshold 0.8")
    sig = bench_signatures(args.sig_docs, args.repeats) if args.sig_docs else []
    md = [f"# Dedup benchmark ({date.today()})", "", header, ""]
    if sig:
        md += ["| signatures | docs | MB | seconds (median) | MB/s per core | x datasketch per-doc |",
               "|---|---:|---:|---:|---:|---:|"]
        md += [f"| {r['impl']} | {r['docs']:,} | {r['MB']} | {r['seconds']} | {r['MB_per_s']} | {r['vs_datasketch']} |"
               for r in sig]
        md.append("")
    real = bench_real_e2e(Path(args.workdir), args.real_repeats) if args.real_repeats else []
    if real:
        md += [real_table(real), ""]
    e2e = [bench_end_to_end(n, Path(args.workdir)) for n in args.sizes]
    if e2e:
        md.append(e2e_table(e2e))
    text = "\n".join(md)
    print(text)
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    stem = f"dedup-{date.today()}-{args.machine}" + ("" if args.sig_docs or not args.sizes else
                                                     f"-{'-'.join(map(str, args.sizes))}")
    (results / f"{stem}.md").write_text(text + "\n", encoding="utf-8")
    (results / f"{stem}.json").write_text(json.dumps({"signatures": sig, "real_end_to_end": real, "end_to_end": [
        {k: v for k, v in r.items()} for r in e2e]}, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
