"""The fast paths of the end-to-end run (orjson reading and writing, the cached NFKC table) give what the slow
paths gave: the same records, the same quarantine reasons, the same normalised text."""

import json
import subprocess
import sys
import unicodedata

import pytest

from jpcurate.document import Document
from jpcurate.io.readers import parse_line
from jpcurate.io.writers import encode_line
from jpcurate.text import nfkc as nfkc_module


def _parse(line: bytes):
    return parse_line(line, source="s", position=1, text_field="text", id_field="id")


@pytest.mark.parametrize("line", [
    b'{"id": 1, "text": "\\u65e5\\u672c", "n": 123456789012345678901234567890}\n',  # beyond 64 bits: exact
    b'{"id": 2, "text": "x", "v": NaN, "w": Infinity}\n',  # json's extensions still read
    b'\xef\xbb\xbf{"id": 3, "text": "bom"}\n',
    b'{"id": 4, "text": "\\ud800 lone"}\n',
    b'{"id": 5, "text": "a", "meta": {"big": [1, -98765432109876543210]}, "f": 1e300}\n',
])
def test_records_equal_the_json_module(line):
    doc = _parse(line)
    assert isinstance(doc, Document)
    rec = json.loads(line.decode("utf-8").lstrip("\ufeff"))
    assert doc.text == rec["text"]
    want = {k: v for k, v in rec.items() if k != "text"}
    assert json.dumps(doc.meta, sort_keys=True) == json.dumps(want, sort_keys=True)  # NaN compares as text
    assert [type(v) for v in doc.meta.values()] == [type(v) for v in want.values()]


@pytest.mark.parametrize("line, reason", [
    (b'{"text": 5}\n', "text field 'text' is int, not a string"),
    (b'[1, 2]\n', "record is a list, not an object"),
    (b'{"text": "a"\n', "malformed JSON"),
    (b'\xff{"text": "a"}\n', "invalid UTF-8 at byte 0"),
])
def test_malformed_reasons_unchanged(line, reason):
    item = _parse(line)
    assert not isinstance(item, Document)
    assert item.reason.startswith(reason)
    assert item.raw.startswith(line[:3].decode("utf-8", "replace"))


def test_encode_line_round_trips_and_falls_back():
    rec = {"id": "x", "text": "日本語\n改行", "n": 2**70, "jpcurate": {"values": {"a": 0.25}}}
    out = encode_line(rec)
    assert out.endswith(b"\n") and json.loads(out) == rec  # the 70-bit integer took the json path, exact
    assert json.loads(encode_line({"text": "\ud800"})) == {"text": "\ud800"}  # lone surrogate: \\u-escaped
    assert "日本語".encode() in encode_line({"text": "日本語"})  # UTF-8, not \\u-escaped


def test_nfkc_table_from_cache_equals_built(tmp_path, monkeypatch):
    text = "ＡＢＣ１２３　ｶﾀｶﾅ①㈱ﾊﾞ日本語。"
    code = ("import sys, unicodedata; from jpcurate.text.nfkc import nfkc; t = sys.argv[1]; "
            "assert nfkc(t) == unicodedata.normalize('NFKC', t); print(nfkc(t))")
    env = {"JPCURATE_CACHE_DIR": str(tmp_path), "PYTHONPATH": ":".join(sys.path)}
    first = subprocess.run([sys.executable, "-c", code, text], env=env, capture_output=True, text=True, check=True)
    cache = list(tmp_path.glob("nfkc-*.npz"))
    assert len(cache) == 1  # built and saved
    second = subprocess.run([sys.executable, "-c", code, text], env=env, capture_output=True, text=True, check=True)
    assert first.stdout == second.stdout == unicodedata.normalize("NFKC", text) + "\n"
    cache[0].write_bytes(b"damaged")  # a damaged cache is rebuilt, not fatal
    third = subprocess.run([sys.executable, "-c", code, text], env=env, capture_output=True, text=True, check=True)
    assert third.stdout == first.stdout
    monkeypatch.setenv("JPCURATE_CACHE_DIR", str(tmp_path))
    assert nfkc_module.cache_path().parent == tmp_path
