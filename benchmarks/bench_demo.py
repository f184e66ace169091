"""`make demo` from a fresh clone: wall time per stage and in all, against the 10-minute budget on 2 CPU cores.

    python benchmarks/bench_demo.py                       # clone HEAD, run the demo with this checkout's .venv
    python benchmarks/bench_demo.py --venv fresh          # also time `make` creating .venv (pip install)
    python benchmarks/bench_demo.py --demo_args "--stop pretrain"

Clones the repository's HEAD (committed work only) into a temporary directory and runs `apps/demo.py` there from
scratch, then reads every stage's record (runs/demo/stages/<stage>.json). Prints a markdown table, writes it to
benchmarks/results/demo-<date>-<host>.md, and exits 1 when the demo (without .venv creation) took longer than
--budget_s. The .venv creation is timed on its own (`--venv fresh`) because it depends on the network and pip cache.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = {"raw": 10, "curate": 30, "tokenizer": 18, "shards": 15, "pretrain": 180, "sft": 90, "dpo": 90,
            "chat": 18, "eval": 90, "ablate": 90}  # the split of the 600 s budget the issue suggests


def cpu_s() -> float:
    """User + system CPU seconds of finished child processes: unlike wall time, barely moved by other jobs."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd: list[str], cwd: Path, env: dict, log: Path) -> tuple[float, int]:
    print(f"$ {shlex.join(cmd)}  (log: {log})", flush=True)
    t0 = time.perf_counter()
    with log.open("w") as f:
        code = subprocess.run(cmd, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT).returncode
    return time.perf_counter() - t0, code


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--venv", choices=["reuse", "fresh"], default="reuse")
    p.add_argument("--demo_args", default="", help="extra apps/demo.py flags")
    p.add_argument("--budget_s", type=float, default=600.0)
    p.add_argument("--keep", action="store_true", help="keep the clone (its path is printed)")
    p.add_argument("--results", default="", help="table file (default: benchmarks/results/demo-DATE-HOST.md)")
    args = p.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench-demo-"))
    clone = work / "repo"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    venv_s = None
    if args.venv == "fresh":
        venv_s, code = timed(["make", ".venv/.installed"], clone, env, work / "venv.log")
        if code:
            print(f"creating .venv failed (exit {code}); see {work / 'venv.log'}")
            return 2
        python = str(clone / ".venv/bin/python")
    else:  # this checkout's interpreter, with the clone's sources first on the path
        python = sys.executable
        env["PYTHONPATH"] = str(clone / "src")
    cpu0 = cpu_s()
    demo_s, code = timed([python, "apps/demo.py", *shlex.split(args.demo_args)], clone, env, work / "demo.log")
    records = {}
    for f in sorted((clone / "runs/demo/stages").glob("*.json")):
        records[f.stem] = json.loads(f.read_text())
    order = list(BUDGET_S)
    rows = ["| stage | wall time (s) | suggested share (s) | summary |", "|---|---:|---:|---|"]
    for name in order + sorted(set(records) - set(order)):
        rec = records.get(name)
        if rec is None:
            rows.append(f"| {name} | not run | {BUDGET_S.get(name, '')} | |")
            continue
        wall = f"{rec['wall_s']:.1f}" if rec.get("status") == "done" else f"failed ({rec.get('status')})"
        rows.append(f"| {name} | {wall} | {BUDGET_S.get(name, '')} | {rec.get('summary', '').replace('|', '/')} |")
    demo_cpu = cpu_s() - cpu0
    load = os.getloadavg()[0]
    missing = [n for n in order if records.get(n, {}).get("status") != "done"]
    verdict = ("FAILED" if code else f"PARTIAL ({', '.join(missing)} not run), so not a verdict on" if missing
               else "within" if demo_s <= args.budget_s else "OVER")
    head = [f"# make demo from a fresh clone, {time.strftime('%Y-%m-%d %H:%M')}",
            "",
            f"Machine: {platform.node()}, {os.cpu_count()} CPUs, load average {load:.1f} at the end "
            "(other jobs sharing the machine inflate every number).",
            f"Demo (apps/demo.py {args.demo_args}): **{demo_s:.0f} s** wall, {demo_cpu:.0f} s CPU (user + system, "
            f"all processes), exit {code}: {verdict} the "
            f"{args.budget_s:.0f} s budget. .venv creation: "
            + (f"{venv_s:.0f} s (not counted in the budget)." if venv_s is not None else "not measured (reused)."),
            ""]
    table = "\n".join(head + rows) + "\n"
    print(table)
    out = Path(args.results or ROOT / "benchmarks/results" / f"demo-{time.strftime('%Y%m%d')}-{platform.node()}.md")
    out.write_text(table)
    print(f"written: {out}; logs: {work}")
    if not args.keep and code == 0:
        subprocess.run(["rm", "-rf", str(clone)], check=False)
    return 0 if verdict == "within" else 1


if __name__ == "__main__":
    raise SystemExit(main())
