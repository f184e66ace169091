"""apps/debate_to_sft.py: files written, stats exact, a rerun writes the same bytes, bad arguments are clear errors."""

from __future__ import annotations

import json

import pytest
from app_helpers import load_app

app = load_app("debate_to_sft")


def test_debate_app_writes_sft_dpo_and_stats(tmp_path, data_dir):
    bad = tmp_path / "in" / "bad.jsonl"
    bad.parent.mkdir()
    bad.write_text('{"議題": "x"}\nnot json\n', encoding="utf-8")
    out = tmp_path / "out"
    args = app.Args(input=[str(data_dir / "debate"), str(bad)], out_dir=str(out))
    stats = app.main(args)
    on_disk = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert on_disk == stats
    assert stats["records_read"] == 8 and stats["records_valid"] == 6
    assert stats["dropped"] == {"broken_json": 1, "missing_keys": 1}
    sft = [json.loads(x) for x in (out / "sft.jsonl").read_text(encoding="utf-8").splitlines()]
    dpo = [json.loads(x) for x in (out / "dpo.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(sft) == stats["sft_written"] == stats["single_turn"] + stats["multi_turn"]
    assert len(dpo) == stats["dpo_written"]
    for r in sft:
        roles = [m["role"] for m in r["messages"]]
        assert roles in (["user", "assistant"], ["user", "assistant"] * 2)
        assert all(isinstance(m["content"], str) and m["content"].strip() for m in r["messages"])
    assert all(set(p) == {"prompt", "chosen", "rejected", "meta"} and p["chosen"] != p["rejected"] for p in dpo)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    app.main(args)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_debate_app_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="--input"):
        app.main(app.Args(input=[], out_dir=str(tmp_path)))
    with pytest.raises(FileNotFoundError, match="nowhere.json"):
        app.main(app.Args(input=[str(tmp_path / "nowhere.json")], out_dir=str(tmp_path)))
    with pytest.raises(ValueError, match="templates"):
        app.main(app.Args(input=[str(tmp_path)], out_dir=str(tmp_path / "o"), templates="some"))
