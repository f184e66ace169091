"""Token shards: flat numpy memmaps of token ids with a document-boundary index.

A source directory holds `tokens-NNNNN.bin` (uint16 when the vocabulary fits in 16 bits, else uint32),
`docs-NNNNN.npy` (int64 start offset of every document inside that shard) and `meta.json`. Every document is
written as `[BOS] tokens... EOS`, so EOS sits between documents and a model learns where one ends.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

META = "meta.json"


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 holds ids < 65536; anything larger needs uint32."""
    if vocab_size <= 0:
        raise ValueError(f"vocab_size must be positive, got {vocab_size}")
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.uint32)


class _ShardWriter:
    def __init__(self, out_dir: Path, dtype: np.dtype) -> None:
        self.out_dir, self.dtype = out_dir, dtype
        self.shards: list[dict] = []
        self.buf: list[np.ndarray] = []
        self.starts: list[int] = []
        self.size = 0

    def add(self, ids: np.ndarray) -> None:
        self.starts.append(self.size)
        self.buf.append(ids)
        self.size += len(ids)

    def flush(self) -> None:
        if not self.buf:
            return
        n = len(self.shards)
        name, index = f"tokens-{n:05d}.bin", f"docs-{n:05d}.npy"
        np.concatenate(self.buf).astype(self.dtype).tofile(self.out_dir / name)
        np.save(self.out_dir / index, np.asarray(self.starts, dtype=np.int64))
        self.shards.append({"file": name, "index": index, "tokens": self.size, "docs": len(self.starts)})
        self.buf, self.starts, self.size = [], [], 0


def write_shards(docs: Iterable[list[int]], out_dir: str | Path, *, vocab_size: int, eos_id: int,
                 bos_id: int | None = None, shard_tokens: int = 1 << 28, tokenizer: str = "") -> dict:
    """Write tokenised documents as shards; returns the metadata (also written to `meta.json`).

    `docs` yields token ids without special tokens. Empty documents are skipped and counted.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in [*out_dir.glob("tokens-*.bin"), *out_dir.glob("docs-*.npy"), out_dir / META]:
        old.unlink(missing_ok=True)
    dtype = token_dtype(vocab_size)
    writer = _ShardWriter(out_dir, dtype)
    empty = 0
    for ids in docs:
        if not len(ids):
            empty += 1
            continue
        arr = np.asarray(ids, dtype=np.int64)
        if arr.min() < 0 or arr.max() >= vocab_size:
            raise ValueError(f"token id {int(arr.max())} out of range for vocab_size {vocab_size}")
        parts = ([np.array([bos_id])] if bos_id is not None else []) + [arr, np.array([eos_id])]
        writer.add(np.concatenate(parts))
        if writer.size >= shard_tokens:
            writer.flush()
    writer.flush()
    if not writer.shards:
        raise ValueError(f"no non-empty documents to write to {out_dir}")
    meta = {"dtype": dtype.name, "vocab_size": vocab_size, "eos_id": eos_id, "bos_id": bos_id,
            "tokenizer": tokenizer, "num_tokens": sum(s["tokens"] for s in writer.shards),
            "num_docs": sum(s["docs"] for s in writer.shards), "empty_docs": empty, "shards": writer.shards}
    (out_dir / META).write_text(json.dumps(meta, indent=2) + "\n")
    return meta


class TokenSource:
    """Read-only view of a source directory as one token stream (memmapped, nothing loaded up front)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        meta_path = self.path / META
        if not meta_path.is_file():
            raise FileNotFoundError(f"{self.path} is not a token-shard directory (no {META}); run apps/prepare_data.py")
        try:
            self.meta = json.loads(meta_path.read_text())
            dtype, infos, _ = np.dtype(self.meta["dtype"]), self.meta["shards"], int(self.meta["vocab_size"])
            files = [(self.path / info["file"], info["tokens"]) for info in infos]
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{meta_path}: not a valid token-shard meta.json ({type(e).__name__}: {e})") from e
        self.shards = []
        for file, tokens in files:
            size = file.stat().st_size if file.is_file() else None
            if size is None or size != tokens * dtype.itemsize:  # also a truncated file np.memmap cannot map
                raise ValueError(f"{file}: {'missing' if size is None else f'{size} bytes'}, meta.json says {tokens} "
                                 f"{dtype.name} tokens ({tokens * dtype.itemsize} bytes)")
            self.shards.append(np.memmap(file, dtype=dtype, mode="r"))
        self.offsets = np.cumsum([0] + [len(s) for s in self.shards])
        if not len(self):
            raise ValueError(f"{meta_path}: the source holds no tokens")

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def vocab_size(self) -> int:
        return int(self.meta["vocab_size"])

    def doc_starts(self) -> np.ndarray:
        """Start offset of every document in the whole stream."""
        return np.concatenate([np.load(self.path / s["index"]) + off
                               for s, off in zip(self.meta["shards"], self.offsets[:-1])])

    def read(self, start: int, length: int) -> np.ndarray:
        """`length` tokens from stream offset `start`, wrapping at the end (a new epoch) and across shards."""
        out = np.empty(length, dtype=np.int64)
        done, pos = 0, start % len(self)
        while done < length:
            k = int(np.searchsorted(self.offsets, pos, side="right") - 1)
            local = pos - int(self.offsets[k])
            take = min(length - done, len(self.shards[k]) - local)
            out[done:done + take] = self.shards[k][local:local + take]
            done += take
            pos = (pos + take) % len(self)
        if out.max() >= self.vocab_size:  # else an embedding lookup fails mid-run (a device assert on CUDA)
            raise ValueError(f"{self.path}: token id {int(out.max())} at stream offsets [{start}, {start + length}) "
                             f"is >= vocab_size {self.vocab_size} (meta.json); the shards are damaged or mislabelled")
        return out
