"""python -m jpmoe.hf from-hf HF_DIR OUT | to-hf CKPT OUT [--tokenizer DIR] [--fused] [--dtype bf16]
[--max-shard-gb 5]"""

from __future__ import annotations

import argparse
import sys

import torch

from jpmoe.hf.convert import convert_from_hf, convert_to_hf

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jpmoe.hf", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("from-hf", help="HF Llama/Mixtral directory -> jpmoe checkpoint directory")
    a.add_argument("hf_dir")
    a.add_argument("out")
    b = sub.add_parser("to-hf", help="jpmoe checkpoint directory (safetensors, or a training checkpoint's "
                       "step-N directory) -> HF directory (sharded safetensors + index)")
    b.add_argument("ckpt")
    b.add_argument("out")
    b.add_argument("--tokenizer", default=None, help="directory whose tokenizer files are copied into OUT")
    b.add_argument("--fused", action="store_true", help="write transformers 5.x fused expert tensors")
    b.add_argument("--dtype", choices=sorted(DTYPES), default=None, help="cast weights (default: keep)")
    b.add_argument("--max-shard-gb", type=float, default=5.0)
    args = p.parse_args(argv)
    try:
        if args.command == "from-hf":
            out = convert_from_hf(args.hf_dir, args.out)
        else:
            out = convert_to_hf(args.ckpt, args.out, tokenizer_dir=args.tokenizer, fused=args.fused,
                                dtype=DTYPES.get(args.dtype), max_shard_bytes=int(args.max_shard_gb * 2**30))
    except (ValueError, KeyError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
