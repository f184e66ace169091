"""`jpcurate run --config pipeline.toml`: run a custom list of steps (see docs/jpcurate.md for the format)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from jpcurate.cli.common import add_run_options, execute, expand_inputs
from jpcurate.config import load_config
from jpcurate.pipeline import Pipeline


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a pipeline from a TOML config", description=__doc__)
    p.add_argument("--config", required=True, help="pipeline TOML: name, [[steps]] tables, optional [io]")
    add_run_options(p, need_input=False)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
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
    if any(getattr(s, "corpus_level", False) for s in pipeline):  # dedup steps: filter, then deduplicate
        return execute_with_dedup(pipeline, args)
    return execute(pipeline, args)


def execute_with_dedup(pipeline, args: argparse.Namespace) -> int:
    """`jpcurate run` for a pipeline holding dedup steps: filter, then deduplicate the kept records."""
    from jpcurate.dedup.stages import DedupConfig  # here, not at the top: the CLI's start-up stays light
    from jpcurate.steps.dedup import split_pipeline

    doc_steps, corpus = split_pipeline(pipeline)
    inputs = expand_inputs(args.input, args.output)
    out = Path(args.output)
    if doc_steps:
        filt = argparse.Namespace(**{**vars(args), "output": str(out / "filtered")})
        rc = execute(Pipeline(doc_steps, name=getattr(pipeline, "name", "custom")), filt)
        if rc:
            return rc
        inputs = sorted(str(p) for p in (out / "filtered" / "kept").glob("*") if p.is_file())
    opts: dict = {"near": False}
    for step in corpus:
        o = step.options()
        opts.update({k: v for k, v in o.items() if k != "near"})
        opts["near"] = opts["near"] or o.get("near", False)
    cfg = DedupConfig(**opts)
    kw = dict(text_field=args.text_field, id_field=args.id_field, out_format=args.format,
              max_shard_bytes=int(args.max_shard_mb * 1e6), progress=not args.quiet,
              plots=args.plots)  # as for the filtered parts
    if args.engine == "ray":
        from jpcurate.engines.ray import run_dedup_ray  # start-up: the CLI imports every command module

        stats = run_dedup_ray(inputs, out, cfg, address=getattr(args, "address", None), **kw)
    else:
        from jpcurate.dedup.local import run_dedup  # start-up, as above

        stats = run_dedup(inputs, out, cfg, workers=args.workers, **kw)
    print(json.dumps({"output": str(out), **stats["documents"], "removed": stats["reasons"]}, ensure_ascii=False))
    return 0 if stats["documents"]["identity_holds"] else 1
