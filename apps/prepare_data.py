"""Tokenise curated documents into token shards (numpy memmap + document index) for apps/pretrain.py.

    python apps/prepare_data.py --input runs/demo/curated/kept --tokenizer runs/demo/tokenizer \
        --out_dir runs/demo/shards/aozora
    python apps/prepare_data.py --config apps/configs/prepare_ja_web.toml

Each document becomes `<s> tokens </s>` (EOS between documents); ids are uint16 when the vocabulary fits in
16 bits, else uint32. A record that is not JSON, has no text, or whose text is null, not a string or not valid
Unicode is skipped and counted (printed at the end). One run per source; the mixture TOML then names the source
directories. meta.json is written last, so a killed run leaves a directory that pretraining refuses (rerun the
same command).
"""

from __future__ import annotations

import itertools
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from transformers import AutoTokenizer

from jpmoe.data import write_shards
from jpmoe.data.documents import iter_texts, rejection_summary
from jpmoe.tokenizer import tokenizer_fingerprint
from jpmoe.train import parse_args


@dataclass
class Args:
    config: str = ""
    input: list[str] = field(default_factory=list)  # curated JSONL/Parquet files or directories
    tokenizer: str = "runs/tokenizer"  # HF tokenizer directory
    out_dir: str = "runs/shards"
    text_key: str = "text"
    batch_docs: int = 256  # documents per tokenizer call
    shard_tokens: int = 1 << 28  # tokens per shard file
    max_docs: int = 0  # 0: all


def tokenised(texts, tokenizer, batch: int, every: int = 100_000):
    """Token ids of each text, tokenised `batch` at a time; a progress line every `every` documents."""
    it, done, t0 = iter(texts), 0, time.perf_counter()
    while chunk := list(itertools.islice(it, batch)):
        yield from tokenizer(chunk, add_special_tokens=False)["input_ids"]
        done += len(chunk)
        if done // every != (done - len(chunk)) // every:
            print(f"  {done:,} documents ({done / (time.perf_counter() - t0):,.0f}/s)", file=sys.stderr, flush=True)


def main(args: Args) -> Path:
    if not args.input:
        raise ValueError("--input: name at least one curated JSONL/Parquet file or directory")
    if "" in args.input:  # "a,b," parses to [a, b, ""], and Path("") is the working directory
        raise ValueError(f"--input: an empty path (a stray comma?) in {args.input}")
    if not Path(args.tokenizer).is_dir():  # else transformers reads the path as a Hub repo id
        raise FileNotFoundError(f"--tokenizer {args.tokenizer}: no such directory (apps/train_tokenizer.py makes one)")
    if args.batch_docs < 1 or args.max_docs < 0:
        raise ValueError(f"--batch_docs must be >= 1 and --max_docs >= 0, got {args.batch_docs} and {args.max_docs}")
    tok = AutoTokenizer.from_pretrained(args.tokenizer)
    rejected: Counter = Counter()
    texts = itertools.islice(iter_texts(args.input, key=args.text_key, rejected=rejected), args.max_docs or None)
    try:
        meta = write_shards(tokenised(texts, tok, args.batch_docs), args.out_dir, vocab_size=len(tok),
                            eos_id=tok.eos_token_id, bos_id=tok.bos_token_id, shard_tokens=args.shard_tokens,
                            tokenizer=tokenizer_fingerprint(args.tokenizer))
    except ValueError as e:  # e.g. nothing to write: say what was rejected (a wrong --text_key rejects everything)
        raise ValueError(f"{e}; {rejection_summary(rejected)}") if rejected else e from None
    print(f"shards: {args.out_dir}: {meta['num_docs']} documents, {meta['num_tokens']} tokens "
          f"({meta['dtype']}, {len(meta['shards'])} shard(s), {meta['empty_docs']} empty skipped)", flush=True)
    if rejected:
        print(rejection_summary(rejected), flush=True)
    return Path(args.out_dir)


if __name__ == "__main__":
    main(parse_args(Args))
