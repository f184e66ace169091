"""Train a SentencePiece unigram tokenizer on curated documents and export it as a Hugging Face tokenizer.

    python apps/train_tokenizer.py --input runs/demo/curated/kept --out_dir runs/demo/tokenizer --vocab_size 4000
    python apps/train_tokenizer.py --config apps/configs/tokenizer_32k.toml

Writes <out_dir>/ (tokenizer.json, tokenizer_config.json with the chat template, spm.model) and
the chat template (jpalign's, so SFT, DPO and evaluation render prompts the same way), and
<out_dir>/report.json with characters per token on held-out Japanese (the last `held_out_docs` documents,
never trained on) and English text. A record that is not JSON, has no text, or whose text is null, not a string
or not valid Unicode is skipped and counted (`rejected_docs` in the report).
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from transformers import AutoTokenizer

from jpalign import CHAT_TEMPLATES
from jpmoe.data.documents import iter_texts, rejection_summary
from jpmoe.tokenizer import (
    DEFAULT_CHAT_TEMPLATE,
    chars_per_token,
    export_hf_tokenizer,
    train_sentencepiece,
    write_report,
)
from jpmoe.train import parse_args


@dataclass
class Args:
    config: str = ""
    input: list[str] = field(default_factory=list)  # curated JSONL/Parquet files or directories
    out_dir: str = "runs/tokenizer"
    vocab_size: int = 32000
    model_type: str = "unigram"  # or "bpe"
    character_coverage: float = 0.9995
    max_docs: int = 0  # 0: all documents
    held_out_docs: int = 20  # the last N documents are kept out of training, for the report
    held_out_en: list[str] = field(default_factory=list)  # English JSONL for the report (evaluation only)
    text_key: str = "text"
    chat_template: str = "instruction-ja"  # a jpalign template (the one SFT/DPO train with), or "roles"


def check_args(args: Args) -> None:
    if not args.input:
        raise ValueError("--input: name at least one curated JSONL/Parquet file or directory")
    if "" in args.input + args.held_out_en:  # "a,b," parses to [a, b, ""], and Path("") is the working directory
        raise ValueError(f"--input/--held_out_en: an empty path (a stray comma?) in {args.input + args.held_out_en}")
    for name in ("vocab_size", "held_out_docs"):  # the report needs held-out text: 0 would fail after training
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.max_docs < 0:
        raise ValueError(f"--max_docs must be >= 0 (0: all), got {args.max_docs}")
    if args.chat_template != "roles" and args.chat_template not in CHAT_TEMPLATES:
        raise ValueError(f"--chat_template {args.chat_template!r}: choose 'roles' or one of {sorted(CHAT_TEMPLATES)}")


def main(args: Args) -> Path:
    check_args(args)
    rejected: Counter = Counter()
    en = list(iter_texts(args.held_out_en, key=args.text_key, rejected=rejected))  # a bad path fails early
    docs = list(itertools.islice(iter_texts(args.input, key=args.text_key, rejected=rejected), args.max_docs or None))
    if len(docs) <= args.held_out_docs:
        seen = f" ({rejection_summary(rejected)})" if rejected else ""
        raise ValueError(f"{len(docs)} documents{seen}: need more than held_out_docs={args.held_out_docs}")
    train, held_ja = docs[: len(docs) - args.held_out_docs], docs[len(docs) - args.held_out_docs:]
    template = DEFAULT_CHAT_TEMPLATE if args.chat_template == "roles" else CHAT_TEMPLATES[args.chat_template].jinja
    out = Path(args.out_dir)
    spm_path = train_sentencepiece(train, out / "spm", vocab_size=args.vocab_size, model_type=args.model_type,
                                   character_coverage=args.character_coverage)
    export_hf_tokenizer(spm_path, out, chat_template=template)
    tok = AutoTokenizer.from_pretrained(str(out))
    report = {"vocab_size": len(tok), "train_docs": len(train), "train_chars": sum(map(len, train)),
              "chars_per_token": {"ja_held_out": round(chars_per_token(tok, held_ja), 4)}}
    if en:
        report["chars_per_token"]["en_held_out"] = round(chars_per_token(tok, en), 4)
    if rejected:
        report["rejected_docs"] = dict(sorted(rejected.items()))
        print(rejection_summary(rejected), flush=True)
    write_report(out / "report.json", report)
    print(f"tokenizer: {out} (vocab {len(tok)}); chars/token {report['chars_per_token']}", flush=True)
    return out


if __name__ == "__main__":
    main(parse_args(Args))
