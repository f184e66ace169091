"""jpmoe.data.documents: JSONL (plain, gz, zst) and Parquet parts, directories, hidden temporaries skipped."""

from __future__ import annotations

import gzip
import json

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
    assert list(iter_texts([d])) == ["一", "二", "三", "四", "五", "六"]


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
    with pytest.raises(KeyError, match=r"r.jsonl:2: record has no 'text' field"):
        list(iter_texts([tmp_path / "r.jsonl"]))
