"""`jpcurate report DIR`: print the readable report of a finished run (from DIR/stats.json)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from jpcurate.plots import write_plots
from jpcurate.report import existing_plots, render_report, write_report


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="print the report of a run directory", description=__doc__)
    p.add_argument("dir", help="output directory of a filter/run command")
    p.add_argument("--json", action="store_true", help="print stats.json instead of the markdown report")
    p.add_argument("--plots", action="store_true",
                   help="draw the PNG plots into DIR/plots/ and rewrite DIR/report.md with them (needs matplotlib)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    path = Path(args.dir) / "stats.json"
    if not path.exists():
        raise SystemExit(f"{path} not found: is {args.dir} a finished jpcurate run?")
    stats = json.loads(path.read_text(encoding="utf-8"))
    if args.plots:
        if write_plots(stats, args.dir) is None:
            raise SystemExit('jpcurate report --plots needs matplotlib: pip install "jpcurate[plots]"')
        write_report(args.dir, stats)
    print(json.dumps(stats, ensure_ascii=False, indent=1) if args.json else
          render_report(stats, existing_plots(args.dir)))
    return 0 if stats["documents"]["identity_holds"] else 1
