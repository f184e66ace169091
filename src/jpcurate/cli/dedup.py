"""`jpcurate dedup --input PATH... --output DIR [--threshold 0.8 --ngram 5 --num-perm 128]`."""

from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dedup", help="exact, repeated-line and MinHash near-duplicate removal", description=__doc__)
    p.add_argument("--input", nargs="+", required=True, metavar="PATH", help="input files or directories")
    p.add_argument("--output", required=True, metavar="DIR",
                   help="output: kept/, removed/, quarantine/, clusters.parquet, stats.json")
    p.add_argument("--threshold", type=float, default=0.8, help="Jaccard threshold (default 0.8)")
    p.add_argument("--ngram", type=int, default=5, help="shingle size (default 5)")
    p.add_argument("--num-perm", type=int, default=128, help="MinHash permutations (default 128)")
    p.add_argument("--unit", choices=["char", "word"], default="char", help="char (Japanese) or word n-grams")
    p.add_argument("--bands", type=int, default=0, help="LSH bands (default: chosen from the threshold)")
    p.add_argument("--rows", type=int, default=0, help="LSH rows per band (with --bands)")
    p.add_argument("--no-verify", action="store_true", help="skip the exact Jaccard check of candidate pairs")
    p.add_argument("--exact-only", action="store_true", help="exact (normalised-text) deduplication only")
    p.add_argument("--line-min-docs", type=int, default=0,
                   help="remove lines that occur in at least this many documents (default 0: off)")
    p.add_argument("--partitions", type=int, default=16, help="band-bucket partitions on disk (memory bound)")
    p.add_argument("--split-mb", type=float, default=64.0, help="split JSONL files into tasks of this many MB")
    p.add_argument("--text-field", default="text")
    p.add_argument("--id-field", default="id")
    p.add_argument("--workers", type=int, default=1, help="worker processes (local engine)")
    p.add_argument("--format", default="jsonl", choices=["jsonl", "jsonl.gz", "jsonl.zst", "parquet"])
    p.add_argument("--engine", default="local", choices=["local", "ray"])
    p.add_argument("--address", default=None, help="Ray cluster address (auto, host:6379, ray://host:10001)")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--plots", action="store_true", help="draw report.md's PNG plots (needs matplotlib)")
    p.set_defaults(func=main)


def config_from_args(args: argparse.Namespace):
    from jpcurate.dedup.stages import DedupConfig

    return DedupConfig(threshold=args.threshold, ngram=args.ngram, num_perm=args.num_perm, unit=args.unit,
                       bands=args.bands, rows=args.rows, verify=not args.no_verify, near=not args.exact_only,
                       line_min_docs=args.line_min_docs, partitions=args.partitions,
                       split_bytes=int(args.split_mb * (1 << 20)))


def main(args: argparse.Namespace) -> int:
    from jpcurate.cli.common import expand_inputs

    inputs = expand_inputs(args.input, args.output)
    try:
        config = config_from_args(args)
    except ValueError as e:  # an out-of-range option: the message names it
        raise SystemExit(f"jpcurate dedup: {e}") from None
    kw = dict(text_field=args.text_field, id_field=args.id_field, out_format=args.format, progress=not args.quiet,
              plots=args.plots)
    if args.engine == "ray":
        from jpcurate.engines.ray import run_dedup_ray

        stats = run_dedup_ray(inputs, args.output, config, address=args.address, **kw)
    else:
        from jpcurate.dedup.local import run_dedup

        stats = run_dedup(inputs, args.output, config, workers=args.workers, **kw)
    d = stats["documents"]
    print(json.dumps({"output": args.output, **d, "removed": stats["reasons"]}, ensure_ascii=False))
    return 0 if d["identity_holds"] else 1
