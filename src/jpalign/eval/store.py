"""Append-only JSONL of evaluation records, so a killed run resumes where it stopped.

Each record is one `write` of one full line with O_APPEND, flushed and fsynced; a line cut short by a kill is
dropped (and reported) when the file is read back, so that item is simply redone. `key(record)` identifies an item;
a rerun skips every key already present.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

KEY_FIELDS = ("kind", "model", "suite", "task", "id", "turn", "judge")


def key(record: dict) -> tuple:
    return tuple(record.get(f) for f in KEY_FIELDS)


class RecordStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.records: list[dict] = []
        self.dropped = 0  # partial lines left by a kill
        if self.path.exists():
            good = []
            with self.path.open(encoding="utf-8") as f:
                for line in f:
                    try:
                        rec = json.loads(line)
                        if not line.endswith("\n") or not isinstance(rec, dict):
                            raise ValueError
                    except ValueError:
                        self.dropped += 1
                        continue
                    good.append(rec)
            self.records = good
            if self.dropped:  # rewrite without the broken tail so new lines do not follow a half line
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in good), encoding="utf-8")
                os.replace(tmp, self.path)
        self.by_key = {key(r): r for r in self.records}

    def __contains__(self, k: tuple) -> bool:
        return k in self.by_key

    def get(self, k: tuple) -> dict | None:
        return self.by_key.get(k)

    def add(self, record: dict) -> None:
        k = key(record)
        if k in self.by_key:
            return
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        self.records.append(record)
        self.by_key[k] = record
