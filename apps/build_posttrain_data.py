"""Rebuild the bundled post-training set data/posttrain/{sft,dpo}.jsonl (+ stats.json) from the bundled sources.

    python apps/build_posttrain_data.py                      # rewrites data/posttrain/ in place
    python apps/build_posttrain_data.py --out_dir runs/posttrain-check && diff -r runs/posttrain-check data/posttrain

Deterministic (no model, no randomness beyond --seed for the debate templates): the same sources give the same
bytes, which tests/apps/test_posttrain_data.py checks against the committed files. Only Aozora Bunko, UD Japanese
GSD and the example debates are read (jpalign.posttrain_data.SOURCES); the evaluation sets never are. The
records and pairs are described in jpalign.posttrain_data and data/posttrain/SOURCE.md. Flags follow
jpmoe.train.parse_args (defaults < --config TOML < --flags).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from jpalign.debate import write_jsonl
from jpalign.posttrain_data import build
from jpmoe.train import parse_args

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Args:
    config: str = ""
    data_dir: str = str(ROOT / "data")  # where aozora/, ud_japanese_gsd/ and debate/ are
    out_dir: str = str(ROOT / "data" / "posttrain")
    seed: int = 0


def main(args: Args) -> dict:
    sft, dpo, stats = build(args.data_dir, seed=args.seed)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "sft.jsonl", sft)
    write_jsonl(out / "dpo.jsonl", dpo)
    tmp = out / "stats.json.tmp"
    tmp.write_text(json.dumps({"seed": args.seed, **stats}, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    tmp.replace(out / "stats.json")
    print(f"posttrain data: {stats['sft']} SFT records, {stats['dpo']} pairs -> {out}", file=sys.stderr)
    return stats


if __name__ == "__main__":
    main(parse_args(Args))
