"""Small helpers shared by the jpcurate tests (no fixtures with data paths here: use `data_dir`)."""

from __future__ import annotations

import json
from pathlib import Path

from jpcurate.document import Document


def doc(text: str, **meta) -> Document:
    return Document(id=meta.pop("id", "t"), text=text, meta=meta)


def write_jsonl(path: Path, records: list) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n")
    return path


def read_jsonl_dir(d: Path) -> list[dict]:
    out = []
    for p in sorted(d.glob("*.jsonl")):
        out += [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines()]
    return out


def tree_bytes(root: Path, subdirs=("kept", "rejected", "quarantine")) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for s in subdirs for p in sorted((root / s).glob("*"))}


PROSE = ("吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。何でも薄暗いじめじめした所で"
         "ニャーニャー泣いていた事だけは記憶している。吾輩はここで始めて人間というものを見た。しかもあとで聞くと"
         "それは書生という人間中で一番獰悪な種族であったそうだ。この書生というのは時々我々を捕えて煮て食うという話である。")
