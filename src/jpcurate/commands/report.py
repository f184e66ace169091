"""`jpcurate report DIR`: print the readable report of a finished run (from DIR/stats.json)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="print the report of a run directory", description=__doc__)
    p.add_argument("dir", help="output directory of a filter/run command")
    p.add_argument("--json", action="store_true", help="print stats.json instead of the markdown report")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from jpcurate.report import render_report

    path = Path(args.dir) / "stats.json"
    if not path.exists():
        raise SystemExit(f"{path} not found: is {args.dir} a finished jpcurate run?")
    stats = json.loads(path.read_text(encoding="utf-8"))
    print(json.dumps(stats, ensure_ascii=False, indent=1) if args.json else render_report(stats))
    return 0 if stats["documents"]["identity_holds"] else 1
