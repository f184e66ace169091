"""jpmoe.data.documents: JSONL (plain, gz, zst) and Parquet parts, directories, hidden temporaries skipped."""

from __future__ import annotations

import gzip
import json
from collections import Counter

import pytest

from jpmoe.data.documents import document_files, iter_texts


def test_every_format_and_directory_order(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    zstd = pytest.importorskip("zstandard")
    d = tmp_path / "kept"
    d.mkdir()
    rec = lambda t: json.dumps({"id": t, "text": t}, ensure_ascii=False) + "\n"
    (d / "a-00000.jsonl").write_text(rec("一") + "\n" + rec("二"), encoding="utf-8")
    with gzip.open(d / "b-00000.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write(rec("三"))
    (d / "c-00000.jsonl.zst").write_bytes(zstd.ZstdCompressor().compress(rec("四").encode()))
    pq.write_table(pa.table({"text": ["五", None, "六"]}), d / "d-00000.parquet")
    (d / ".e-00000.jsonl.tmp").write_text("{broken")
    (d / "notes.txt").write_text("ignored")
    assert [p.name for p in document_files([d])] == ["a-00000.jsonl", "b-00000.jsonl.gz", "c-00000.jsonl.zst",
                                                     "d-00000.parquet"]
    rejected = Counter()
    assert list(iter_texts([d], rejected=rejected)) == ["一", "二", "三", "四", "五", "六"]
    assert rejected == {"null_text": 1}
    with pytest.raises(ValueError, match=r"d-00000.parquet: row 1 'text': null text"):
        list(iter_texts([d]))


def test_bad_paths_and_records(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        list(iter_texts([tmp_path / "missing.jsonl"]))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no"):
        document_files([tmp_path / "empty"])
    (tmp_path / "x.csv").write_text("a,b")
    with pytest.raises(ValueError, match="unsupported document file"):
        document_files([tmp_path / "x.csv"])
    (tmp_path / "r.jsonl").write_text('{"text": "ok"}\n{"body": "no text"}\n')
    with pytest.raises(KeyError, match=r"r.jsonl:2: no 'text' in keys \['body'\]: missing text field"):
        list(iter_texts([tmp_path / "r.jsonl"]))


def test_malformed_records_are_counted_or_named(tmp_path):
    """Every kind of unusable line is counted under its reason with a counter, an error naming file:line
    without one; bytes that are not UTF-8 reject their record only, not the rest of the file."""
    f = tmp_path / "m.jsonl"
    f.write_bytes(b'{"text": "a"}\n{not json\n[1, 2]\n{"body": 1}\n{"text": "b\xff"}\n{"text": null}\n'
                  b'{"text": 5}\n{"text": "\\ud800"}\n{"text": "c"}\n')
    rejected = Counter()
    texts = list(iter_texts([f], rejected=rejected))
    assert texts == ["a", "c"]
    assert rejected == {"malformed_json": 1, "not_an_object": 1, "missing_text_field": 1, "invalid_unicode": 2,
                        "null_text": 1, "non_string_text": 1}
    with pytest.raises(ValueError, match=r"m.jsonl:2: .*malformed json"):
        list(iter_texts([f]))
    for n, (line, reason) in enumerate([(b'[1, 2]', "a JSON list: not an object"), (b'{"text": 5}', "non string text"),
                                        (b'{"text": "b\xff"}', "invalid unicode")], 1):
        f.write_bytes(b'{"text": "a"}\n' * n + line + b"\n")
        with pytest.raises(ValueError, match=rf"m.jsonl:{n + 1}: .*{reason}"):
            list(iter_texts([f]))


def test_truncated_or_corrupt_files_are_errors_naming_them(tmp_path):
    """A cut-off .gz, a .zst that is not zstd and a .parquet that is not Parquet stop with a ValueError naming the
    file, not gzip's bare EOFError / zstd's ZstdError after yielding part of the file."""
    pytest.importorskip("zstandard")
    pytest.importorskip("pyarrow")
    data = gzip.compress("".join(json.dumps({"text": f"文書{i}" * 40}) + "\n" for i in range(500)).encode())
    (tmp_path / "cut.jsonl.gz").write_bytes(data[: len(data) // 2])
    (tmp_path / "bad.jsonl.zst").write_bytes(b"not zstd at all")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not parquet")
    for name, match in (("cut.jsonl.gz", r"cut.jsonl.gz: unreadable after line \d+ \(EOFError"),
                        ("bad.jsonl.zst", r"bad.jsonl.zst: unreadable after line 0"),
                        ("bad.parquet", "bad.parquet: unreadable Parquet file")):
        with pytest.raises(ValueError, match=match):
            list(iter_texts([tmp_path / name], rejected=Counter()))
