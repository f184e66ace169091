import gzip
import json

import pytest
from curate_helpers import write_jsonl

from jpcurate.document import Document, Malformed
from jpcurate.io.readers import documents_from_records, read_documents
from jpcurate.io.writers import ShardWriter, remove_parts


def test_jsonl_reader_quarantines_every_kind_of_bad_record(tmp_path):
    p = tmp_path / "in.jsonl"
    lines = [
        json.dumps({"id": "ok", "text": "本文", "url": "http://x.jp", "n": 3}, ensure_ascii=False).encode(),
        b'{"id": "bad json", "text": ',
        b'{"id": "utf8", "text": "\xff\xfe"}',
        b'{"id": "no text"}',
        b'{"id": "num", "text": 42}',
        b'["not", "an", "object"]',
        b"   ",
        json.dumps({"id": "empty", "text": ""}).encode(),
    ]
    p.write_bytes(b"\n".join(lines) + b"\n")
    items = list(read_documents(p))
    assert len(items) == 7  # the blank line is not a record
    reasons = [i.reason for i in items if isinstance(i, Malformed)]
    assert reasons[0].startswith("malformed JSON")
    assert reasons[1].startswith("invalid UTF-8")
    assert reasons[2] == "missing text field 'text'"
    assert reasons[3] == "text field 'text' is int, not a string"
    assert reasons[4] == "record is a list, not an object"
    good = [i for i in items if isinstance(i, Document)]
    assert [d.id for d in good] == ["ok", "empty"]
    assert good[0].meta == {"id": "ok", "url": "http://x.jp", "n": 3}


def test_configurable_fields_and_fallback_id(tmp_path):
    p = write_jsonl(tmp_path / "c.jsonl", [{"content": "テキスト", "meta": {"a": 1}}])
    (d,) = read_documents(p, text_field="content", id_field="doc_id")
    assert d.text == "テキスト" and d.id == "c.jsonl:1"
    rec = d.to_record()
    assert rec["content"] == "テキスト" and rec["meta"] == {"a": 1} and "jpcurate" in rec


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".jsonl.zst", ".parquet"])
def test_formats_roundtrip_through_the_writer(tmp_path, suffix):
    records = [{"id": str(i), "text": f"文書{i}", "score": i / 3} for i in range(25)]
    fmt = suffix.lstrip(".")
    with ShardWriter(tmp_path, prefix="p", fmt=fmt, max_bytes=1 << 30) as w:
        for r in records:
            w.write(r)
    (path,) = w.paths
    assert path.name == f"p-00000{suffix}"
    back = [d.to_record() for d in read_documents(path)]
    for r, b in zip(records, back):
        assert {k: b[k] for k in r} == r


def test_parquet_reader_rows_become_documents(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": ["a", "b"], "text": ["一", None]}), tmp_path / "x.parquet")
    a, b = read_documents(tmp_path / "x.parquet")
    assert isinstance(a, Document) and isinstance(b, Malformed) and "NoneType" in b.reason


def test_shard_size_limit_splits_parts_and_leaves_no_temporaries(tmp_path):
    with ShardWriter(tmp_path, prefix="s", max_bytes=200) as w:
        for i in range(20):
            w.write({"id": i, "text": "あ" * 20})
    assert len(w.paths) > 3
    assert all(p.stat().st_size <= 200 + 100 for p in w.paths)
    assert not list(tmp_path.glob(".*"))
    remove_parts(tmp_path, "s")
    assert not list(tmp_path.iterdir())


def test_gzip_output_is_byte_deterministic(tmp_path):
    outs = []
    for k in range(2):
        with ShardWriter(tmp_path / str(k), prefix="g", fmt="jsonl.gz") as w:
            w.write({"id": 1, "text": "同じ"})
        outs.append(w.paths[0].read_bytes())
    assert outs[0] == outs[1]
    assert json.loads(gzip.decompress(outs[0]))["text"] == "同じ"


def test_writer_error_leaves_no_partial_part(tmp_path):
    with pytest.raises(RuntimeError):
        with ShardWriter(tmp_path, prefix="e") as w:
            w.write({"id": 1, "text": "x"})
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_documents_from_records_matches_reader_numbering():
    items = documents_from_records([{"text": "a"}, {"x": 1}], source="batch", start=10)
    assert items[0].id == "batch:11" and isinstance(items[1], Malformed) and items[1].position == 12


def test_lone_surrogates_are_written_as_escapes(tmp_path):
    with ShardWriter(tmp_path, prefix="u") as w:
        w.write({"id": 1, "text": "a\ud800b"})
    line = w.paths[0].read_bytes()
    assert b"\\ud800" in line and json.loads(line)["text"] == "a\ud800b"
