"""`python -m jpcurate.cli` (the same as `python -m jpcurate` and the `jpcurate` command)."""

from jpcurate.cli import console

if __name__ == "__main__":
    raise SystemExit(console())
