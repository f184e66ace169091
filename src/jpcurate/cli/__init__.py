"""The `jpcurate` command line: `jpcurate {filter,run,report,train-lm} --help`.

Each subcommand lives in its own module exposing `add_parser(subparsers)`, which adds the subparser and sets
`func=<callable(args) -> int>`. Registering a new subcommand is one line in `COMMANDS` below. Engines
(`--engine`) are registered the same way in `jpcurate.cli.common.ENGINES`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from concurrent.futures.process import BrokenProcessPool

from jpcurate import __version__
from jpcurate.engines.workers import without_pandas

COMMANDS = [
    "jpcurate.cli.filter",
    "jpcurate.cli.run",
    "jpcurate.cli.report",
    "jpcurate.cli.train_lm",
    "jpcurate.cli.dedup",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jpcurate", description="Japanese pretraining-text curation")
    parser.add_argument("--version", action="version", version=f"jpcurate {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).add_parser(sub)
    return parser


def console() -> int:
    """The `jpcurate` command and `python -m jpcurate`: `main` in a process of its own. numpy is not imported yet
    here (`jpcurate/__init__` resolves its names lazily), so its bundled OpenBLAS can still be held to one thread:
    jpcurate's arithmetic is element-wise and its parallelism is one process per core, and the per-core thread pool
    OpenBLAS starts otherwise costs ~7% of a `jpcurate filter` run's CPU. Workers inherit the setting."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    return main(own_process=True)


def main(argv: list[str] | None = None, *, own_process: bool = False) -> int:
    """Run one command. `own_process`: this process exists for the command (the console script), so pyarrow may be
    kept from loading pandas (`without_pandas`); a caller's process is left as it is."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    if own_process and getattr(args, "engine", "local") == "local":
        without_pandas()  # pyarrow would import it for nothing (0.2-0.4 s per process)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:  # Ctrl-C: finished shards/phases are kept, a rerun of the same command resumes
        print(f"jpcurate {args.command}: interrupted; run the same command again to resume (finished work is kept)",
              file=sys.stderr)
        return 130
    except (FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError,
            BrokenProcessPool) as e:
        parser.exit(2, f"jpcurate {args.command}: error: {e}\n")  # a missing input, an output path we cannot use


if __name__ == "__main__":
    raise SystemExit(console())
