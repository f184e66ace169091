"""Subcommands of the `jpcurate` command line; each module exposes `add_parser(subparsers)`."""
