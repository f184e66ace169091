"""`python -m jpcurate COMMAND ...`: the same as the `jpcurate` console script."""

from jpcurate.cli import console

if __name__ == "__main__":
    raise SystemExit(console())
