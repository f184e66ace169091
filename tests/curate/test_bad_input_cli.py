"""Bad input end to end through `jpcurate filter`: every record is kept, rejected or quarantined, none lost."""

import json

import pyarrow.parquet as pq
from curate_helpers import PROSE, read_jsonl_dir, write_jsonl

from jpcurate.cli import main


def _filter(inp, out, *extra):
    assert main(["filter", "--input", str(inp), "--output", str(out), "--quiet", *extra]) == 0
    return json.loads((out / "stats.json").read_text())


def test_an_integer_past_pythons_digit_limit_is_quarantined_and_the_file_goes_on(tmp_path, capsys):
    # json.loads raises a plain ValueError (not JSONDecodeError) for a > 4300-digit integer
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "text": PROSE}, '{"id": "big", "text": "x", "n": '
                                              + "1" * 5000 + "}", {"id": "b", "text": PROSE}])
    s = _filter(inp, tmp_path / "o")
    assert s["documents"] == {"input": 3, "kept": 2, "rejected": 0, "quarantined": 1, "identity_holds": True}
    assert [r["id"] for r in read_jsonl_dir(tmp_path / "o" / "kept")] == ["a", "b"]
    (q,) = read_jsonl_dir(tmp_path / "o" / "quarantine")
    assert q["position"] == 2 and q["reason"].startswith("malformed JSON: Exceeds the limit")


def test_parquet_output_keeps_every_field_whatever_the_first_record_holds(tmp_path):
    inp = write_jsonl(tmp_path / "in.jsonl", [
        {"id": "a", "text": PROSE, "score": 1},
        {"id": "b", "text": PROSE, "score": "high", "url": "https://example.jp/b"},  # url only here
        json.dumps({"id": "c", "text": PROSE, "score": None, "extra": {}, "title": "\ud800"}),  # {}, lone surrogate
    ])
    s = _filter(inp, tmp_path / "o", "--format", "parquet")
    assert s["documents"]["kept"] == 3
    (part,) = (tmp_path / "o" / "kept").glob("*.parquet")
    rows = pq.read_table(part).to_pylist()
    assert [r["url"] for r in rows] == [None, "https://example.jp/b", None]
    assert [r["score"] for r in rows] == ["1", '"high"', None]  # a type that varies: JSON text
    assert rows[2]["extra"] == "{}" and rows[2]["title"] == '"\\ud800"'
    assert rows[0]["jpcurate"]["values"]["lang"] == "ja"
