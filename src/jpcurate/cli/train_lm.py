"""`jpcurate train-lm --input PATH... --output model.npz`: train the character n-gram naturalness model.

Use the model in a pipeline with `NaturalnessFilter(model_path="model.npz")` (TOML: `type = "NaturalnessFilter"`,
`model_path = "model.npz"`). The shipped default is rebuilt with `python -m jpcurate.lm.build_default`."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-lm", help="train the character Kneser-Ney naturalness model", description=__doc__)
    p.add_argument("--input", nargs="+", required=True, metavar="PATH", help="clean reference text (JSONL/Parquet)")
    p.add_argument("--output", required=True, help="model file to write (.npz)")
    p.add_argument("--text-field", default="text")
    p.add_argument("--order", type=int, default=5, help="n-gram order (default 5)")
    p.add_argument("--prune-from", type=int, default=0,
                   help="drop n-grams seen once at orders >= this (0: keep all); 4 gives a smaller model")
    p.add_argument("--heldout", type=float, default=0.1, help="share of documents held out for the percentiles")
    p.add_argument("--max-docs", type=int, default=0, help="use at most this many documents (0: all)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from jpcurate.cli.common import expand_inputs
    from jpcurate.lm.train import train_from_files

    model = train_from_files(expand_inputs(args.input), text_field=args.text_field, order=args.order,
                             prune_from=args.prune_from, heldout=args.heldout, max_docs=args.max_docs, seed=args.seed)
    model.save(args.output)
    print(model.summary())
    return 0
