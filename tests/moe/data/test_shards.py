"""jpmoe.data.shards: EOS between documents, the document index, dtype by vocabulary, reads across shards."""

from __future__ import annotations

import json

import numpy as np
import pytest

from jpmoe.data import TokenSource, token_dtype, write_shards

DOCS = [[5, 6, 7], [8], [], [9, 10], [11, 12, 13, 14]]
STREAM = [1, 5, 6, 7, 2, 1, 8, 2, 1, 9, 10, 2, 1, 11, 12, 13, 14, 2]


def test_documents_are_framed_and_indexed(tmp_path):
    meta = write_shards(DOCS, tmp_path, vocab_size=100, eos_id=2, bos_id=1)
    src = TokenSource(tmp_path)
    assert src.read(0, len(src)).tolist() == STREAM
    assert src.doc_starts().tolist() == [0, 5, 8, 12]
    assert (meta["num_docs"], meta["num_tokens"], meta["empty_docs"]) == (4, 18, 1)
    # every document boundary is preceded by EOS
    starts = src.doc_starts()
    assert all(STREAM[s - 1] == 2 for s in starts[1:])


def test_without_bos_only_eos_separates(tmp_path):
    write_shards([[5, 6], [7]], tmp_path, vocab_size=100, eos_id=2)
    assert TokenSource(tmp_path).read(0, 5).tolist() == [5, 6, 2, 7, 2]


@pytest.mark.parametrize(("vocab", "dtype"), [(100, np.uint16), (65536, np.uint16), (65537, np.uint32)])
def test_dtype_by_vocabulary(tmp_path, vocab, dtype):
    assert token_dtype(vocab) == dtype
    write_shards([[vocab - 1, 0]], tmp_path, vocab_size=vocab, eos_id=0)
    src = TokenSource(tmp_path)
    assert src.shards[0].dtype == dtype
    assert src.read(0, 3).tolist() == [vocab - 1, 0, 0]  # the largest id survives the narrow dtype


def test_many_shards_read_as_one_stream_and_wrap(tmp_path):
    meta = write_shards(DOCS, tmp_path, vocab_size=100, eos_id=2, bos_id=1, shard_tokens=4)
    assert [s["docs"] for s in meta["shards"]] == [1, 2, 1]  # a document never straddles two shards
    src = TokenSource(tmp_path)
    assert src.read(0, len(src)).tolist() == STREAM
    assert src.doc_starts().tolist() == [0, 5, 8, 12]
    assert src.read(15, 6).tolist() == STREAM[15:] + STREAM[:3]  # wraps into the next epoch


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="out of range"):
        write_shards([[1, 200]], tmp_path / "a", vocab_size=100, eos_id=2)
    with pytest.raises(ValueError, match="no non-empty documents"):
        write_shards([[], []], tmp_path / "b", vocab_size=100, eos_id=2)
    with pytest.raises(FileNotFoundError, match="not a token-shard directory"):
        TokenSource(tmp_path / "nowhere")
    write_shards([[5, 6]], tmp_path / "c", vocab_size=100, eos_id=2)
    meta = json.loads((tmp_path / "c/meta.json").read_text())
    meta["shards"][0]["tokens"] = 7
    (tmp_path / "c/meta.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="meta.json says 7"):
        TokenSource(tmp_path / "c")


def test_damaged_shards_are_errors_naming_the_file(tmp_path):
    """A truncated or empty .bin, an unreadable meta.json and token ids >= vocab_size are ValueErrors naming the
    file, not numpy's 'cannot mmap an empty file', a KeyError or an embedding IndexError mid-run."""
    write_shards([[5, 6, 7]], tmp_path, vocab_size=100, eos_id=2)
    meta = json.loads((tmp_path / "meta.json").read_text())
    bin_ = tmp_path / meta["shards"][0]["file"]
    good = bin_.read_bytes()
    for damaged, match in ((good[:-1], "7 bytes, meta.json says 4 uint16"), (b"", "0 bytes")):
        bin_.write_bytes(damaged)
        with pytest.raises(ValueError, match=f"tokens-00000.bin: {match}"):
            TokenSource(tmp_path)
    bin_.write_bytes(good)
    for broken in ("{bad", json.dumps({k: v for k, v in meta.items() if k != "dtype"})):
        (tmp_path / "meta.json").write_text(broken)
        with pytest.raises(ValueError, match="meta.json: not a valid token-shard meta.json"):
            TokenSource(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({**meta, "vocab_size": 6}))
    src = TokenSource(tmp_path)
    assert src.read(0, 1).tolist() == [5]
    with pytest.raises(ValueError, match="token id 7 at stream offsets \\[0, 4\\) is >= vocab_size 6"):
        src.read(0, 4)
