"""Debate transcripts (one JSON object per match) to SFT conversations and DPO pairs.

    python apps/debate_to_sft.py --input data/debate --out_dir runs/debate
    python apps/debate_to_sft.py --input matches.jsonl --out_dir runs/debate --templates all --seed 3
    python apps/sft.py --base runs/demo/pretrain/hf --data runs/debate/sft.jsonl \
        --out_dir runs/debate-sft --max_steps 50 --lr 1e-4

Writes OUT_DIR/sft.jsonl (`messages` records: single-turn QA per non-empty speech and two-turn
constructive -> rebuttal conversations), OUT_DIR/dpo.jsonl (`prompt`/`chosen`/`rejected`: a side's own speech
against the opposite side's) and OUT_DIR/stats.json (records read, valid, written, dropped by reason, the first
error messages). --input takes a .json file (one match or a list), a .jsonl file or a directory of them; several
inputs are comma-separated. The formatting lives in jpalign.debate; flags follow jpmoe.train.parse_args
(defaults < --config TOML < --flags). Each output file is written whole and renamed into place, so a killed
run leaves the previous files or none, and a rerun writes the same bytes.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from jpalign.debate import convert, write_jsonl
from jpmoe.train import parse_args


@dataclass
class Args:
    config: str = ""
    input: list[str] = field(default_factory=list)  # .json / .jsonl files or directories of them
    out_dir: str = "runs/debate"
    seed: int = 0  # picks one question template per speech (with --templates one)
    templates: str = "one"  # one | all: one record per template
    multi: bool = True  # also write the two-turn constructive -> rebuttal conversations
    pairs: bool = True  # write dpo.jsonl pairs


def main(args: Args) -> dict:
    if not args.input or "" in args.input:
        raise ValueError("--input: name at least one .json/.jsonl file or directory (no empty entries)")
    missing = [p for p in args.input if not Path(p).exists()]
    if missing:
        raise FileNotFoundError(f"--input: no such file or directory: {', '.join(missing)}")
    result = convert(args.input, seed=args.seed, templates=args.templates, multi=args.multi, pairs=args.pairs)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "sft.jsonl", result.sft)
    write_jsonl(out / "dpo.jsonl", result.dpo)
    stats = {"inputs": list(args.input), **result.stats}
    tmp = out / "stats.json.tmp"
    tmp.write_text(json.dumps(stats, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    tmp.replace(out / "stats.json")
    dropped = ", ".join(f"{k} {v}" for k, v in stats["dropped"].items()) or "none"
    print(f"debate: {stats['records_read']} matches read, {stats['records_valid']} valid, dropped: {dropped}; "
          f"wrote {stats['sft_written']} SFT records ({stats['single_turn']} single-turn, {stats['multi_turn']} "
          f"two-turn) and {stats['dpo_written']} pairs to {out}", file=sys.stderr)
    for err in stats["errors"][:5]:
        print(f"  dropped {err}", file=sys.stderr)
    return stats


if __name__ == "__main__":
    main(parse_args(Args))
