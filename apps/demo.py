"""`make demo`: the pipeline on the bundled sample data.

Grows into curate -> tokenizer -> pretrain -> export -> generate as the pieces land.
"""

from __future__ import annotations

import json
from pathlib import Path

from jpcurate import script_ratios

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    works = [json.loads(line) for line in (ROOT / "data/aozora/works.jsonl").open(encoding="utf-8")]
    for work in works[:5]:
        r = script_ratios(work["text"])
        print(f"{work['title']:<12} hiragana {r['hiragana']:.2f} kanji {r['kanji']:.2f} katakana {r['katakana']:.2f}")


if __name__ == "__main__":
    main()
