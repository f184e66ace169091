"""`jpcurate filter --preset ja-web --input PATH... --output DIR`: run a named preset."""

from __future__ import annotations

import argparse

from jpcurate.cli.common import add_run_options, execute


def add_parser(sub: argparse._SubParsersAction) -> None:
    from jpcurate.presets import PRESETS

    p = sub.add_parser("filter", help="filter files with a preset", description=__doc__)
    p.add_argument("--preset", default="ja-web", choices=sorted(PRESETS), help="rule set (default ja-web)")
    p.add_argument("--mecab", action="store_true", help="use the MeCab-based rules (needs the mecab extra)")
    add_run_options(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from jpcurate.presets import build_preset

    return execute(build_preset(args.preset, mecab=args.mecab), args)
