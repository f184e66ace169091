"""Options shared by the subcommands that run a pipeline over files, and the engine table.

`ENGINES` maps an `--engine` name to `"module:function"`; the function is `(pipeline, inputs, RunOptions) -> Stats`
(see `jpcurate.engines.local.run_local`). Adding an engine is one line here.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path

from jpcurate.engines.local import RunOptions
from jpcurate.io.readers import JSONL_SUFFIXES, PARQUET_SUFFIXES, input_format, repeated_inputs

ENGINES: dict[str, str] = {
    "local": "jpcurate.engines.local:run_local",
    "ray": "jpcurate.engines.ray:run_ray",
}


def get_engine(name: str):
    if name not in ENGINES:
        raise SystemExit(f"unknown engine {name!r}; available: {sorted(ENGINES)}")
    module, func = ENGINES[name].split(":")
    return getattr(importlib.import_module(module), func)


def add_run_options(p: argparse.ArgumentParser, *, need_input: bool = True) -> None:
    p.add_argument("--input", nargs="+", required=need_input, metavar="PATH",
                   help="input files (.jsonl, .jsonl.gz, .jsonl.zst, .parquet) or directories of them")
    p.add_argument("--output", required=True, metavar="DIR", help="output directory (kept/, rejected/, quarantine/)")
    p.add_argument("--text-field", default="text", help="name of the text field (default: text)")
    p.add_argument("--id-field", default="id", help="name of the id field (default: id; else source:line)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--format", default="jsonl", choices=["jsonl", "jsonl.gz", "jsonl.zst", "parquet"],
                   help="output format of kept/ and rejected/ (quarantine is always jsonl)")
    p.add_argument("--max-shard-mb", type=float, default=256.0, help="size limit of one output part, MB")
    p.add_argument("--no-rejected", action="store_true", help="count rejected records but do not write them")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--plots", action="store_true", help="draw report.md's PNG plots (needs matplotlib)")
    p.add_argument("--engine", default="local", choices=sorted(ENGINES), help="execution engine (default local)")
    p.add_argument("--address", default=None, help="Ray cluster address for --engine ray (auto, host:6379)")


def expand_inputs(paths: list[str], output: str | None = None) -> list[str]:
    """The input files named, or found (sorted, recursively) under the directories named. Files under `output`
    are left out, so `--input d --output d/out` does not read its own output back on a rerun. A file named twice
    (`a.jsonl a.jsonl`, or a file and its directory) is read once, with one line on stderr saying so."""
    own = Path(output).resolve() if output else None
    out: list[str] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            out += sorted(str(f) for f in path.rglob("*") if f.is_file()
                          and f.name.lower().endswith(JSONL_SUFFIXES + PARQUET_SUFFIXES)
                          and not (own and f.resolve().is_relative_to(own)))
        elif not path.exists():
            raise SystemExit(f"input {p} does not exist")
        else:
            try:
                input_format(p)
            except ValueError as e:
                raise SystemExit(str(e)) from None
            out.append(p)
    if not out:
        raise SystemExit(f"no input files found in {paths}")
    repeated = repeated_inputs(out)
    if repeated:
        print(f"jpcurate: input {repeated[0]} given more than once" + (f" (and {len(repeated) - 1} more)"
              if len(repeated) > 1 else "") + ": each file is read once", file=sys.stderr)
        seen: set[Path] = set()
        out = [p for p in out if not (Path(p).resolve() in seen or seen.add(Path(p).resolve()))]
    return out


def options_from_args(args: argparse.Namespace) -> RunOptions:
    if int(args.max_shard_mb * 1e6) < 1:
        raise SystemExit(f"--max-shard-mb must be positive, got {args.max_shard_mb}")
    return RunOptions(output=args.output, text_field=args.text_field, id_field=args.id_field, workers=args.workers,
                      out_format=args.format, max_shard_bytes=int(args.max_shard_mb * 1e6),
                      write_rejected=not args.no_rejected, progress=not args.quiet, plots=args.plots)


def execute(pipeline, args: argparse.Namespace) -> int:
    """Run `pipeline` with the chosen engine and print the summary line; exit code 0 when the identity holds."""
    if any(getattr(s, "corpus_level", False) for s in pipeline):
        raise SystemExit("dedup steps run through `jpcurate run --config` (commands/run.py)")
    if getattr(args, "address", None):
        os.environ["RAY_ADDRESS"] = args.address
    stats = get_engine(args.engine)(pipeline, expand_inputs(args.input, args.output), options_from_args(args))
    d = stats.to_dict()["documents"]
    print(json.dumps({"output": args.output, **d}, ensure_ascii=False))
    return 0 if d["identity_holds"] else 1
