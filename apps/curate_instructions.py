"""Curate instruction data (Alpaca, `messages`, chatbot-arena question/answer|chosen/rejected JSONL) for SFT/DPO.

    python apps/curate_instructions.py --input raw/hachi_alpaca.jsonl raw/arena_ja.jsonl --out_dir runs/instr
    python apps/sft.py --base runs/demo/pretrain/hf --data runs/instr/sft.jsonl --out_dir runs/instr-sft --max_steps 50

Writes OUT_DIR/sft.jsonl (`messages` records with meta.qa = open|closed; closed questions get the
"答えだけを書き、それ以外には何も含めないでください。" instruction), OUT_DIR/pairs.jsonl (`prompt`/`chosen`/
`rejected` for the arena records that had both), OUT_DIR/rejected.jsonl (every dropped record with its reason
and the original record) and OUT_DIR/stats.json (counts per reason, open/closed). The rules are in
jpcurate.instructions. argparse, not jpmoe.train.parse_args: this app needs only jpcurate, never torch.
Outputs are written whole and renamed into place; a rerun gives the same bytes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from jpcurate.instructions import CurateOptions, curate, read_records


@dataclass
class Args:
    input: list[str] = field(default_factory=list)  # JSONL files or directories of *.jsonl
    out_dir: str = "runs/instructions"
    max_chars: int = 4000  # question + answer(s) characters
    dedup_threshold: float = 0.8  # MinHash Jaccard on the questions
    closed_max_chars: int = 30  # longest answer still called closed QA
    add_closed_instruction: bool = True
    nfkc: bool = False


def parse(argv: list[str] | None = None) -> Args:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--input", nargs="+", required=True)
    p.add_argument("--out_dir", default=Args.out_dir)
    p.add_argument("--max_chars", type=int, default=Args.max_chars)
    p.add_argument("--dedup_threshold", type=float, default=Args.dedup_threshold)
    p.add_argument("--closed_max_chars", type=int, default=Args.closed_max_chars)
    p.add_argument("--no_closed_instruction", dest="add_closed_instruction", action="store_false")
    p.add_argument("--nfkc", action="store_true")
    return Args(**vars(p.parse_args(argv)))


def write_jsonl(path: Path, records: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def main(args: Args) -> dict:
    missing = [p for p in args.input if not Path(p).exists()]
    if not args.input or missing:
        raise FileNotFoundError(f"--input: no such file or directory: {', '.join(missing) or '(none given)'}")
    options = CurateOptions(**{f.name: getattr(args, f.name) for f in dataclasses.fields(CurateOptions)
                               if hasattr(args, f.name)})
    result = curate(read_records(args.input), options)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "sft.jsonl", result.sft)
    write_jsonl(out / "pairs.jsonl", result.pairs)
    write_jsonl(out / "rejected.jsonl", result.rejected)
    stats = {"inputs": list(args.input), **result.stats}
    (out / "stats.json.tmp").write_text(json.dumps(stats, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    (out / "stats.json.tmp").replace(out / "stats.json")
    reasons = ", ".join(f"{k} {v}" for k, v in stats["rejected_by_reason"].items()) or "none"
    print(f"instructions: {stats['read']} read, {stats['kept']} kept ({stats['open']} open, {stats['closed']} closed),"
          f" {stats['pairs']} pairs; rejected: {reasons} -> {out}", file=sys.stderr)
    return stats


if __name__ == "__main__":
    main(parse())
