"""`python -m jpcurate.cli` (the same as `python -m jpcurate` and the `jpcurate` command)."""

from jpcurate.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
