"""`jpcurate run --config pipeline.toml`: run a custom list of steps (see docs/jpcurate.md for the format)."""

from __future__ import annotations

import argparse

from jpcurate.commands.common import add_run_options, execute


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a pipeline from a TOML config", description=__doc__)
    p.add_argument("--config", required=True, help="pipeline TOML: name, [[steps]] tables, optional [io]")
    add_run_options(p, need_input=False)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from jpcurate.config import load_config

    try:
        pipeline, io = load_config(args.config)
    except ValueError as e:  # bad TOML, an unknown step or argument: the message names it
        raise SystemExit(f"{args.config}: {e}") from None
    if args.input is None:
        if "input" not in io:
            raise SystemExit("no --input given and the config has no [io] input list")
        args.input = list(io["input"])
    for key in ("text_field", "id_field"):
        if key in io and getattr(args, key) == ("text" if key == "text_field" else "id"):
            setattr(args, key, io[key])
    return execute(pipeline, args)
