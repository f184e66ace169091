"""The `jpcurate` command line."""

from __future__ import annotations

import argparse

from jpcurate import __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jpcurate", description="Japanese pretraining-text curation")
    parser.add_argument("--version", action="version", version=f"jpcurate {__version__}")
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
