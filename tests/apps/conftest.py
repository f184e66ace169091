"""Shared fixture for the app tests: a tiny tokenizer, token shards of two sources and a two-stage mixture,
built once per session from the bundled JSQuAD paragraphs with the library calls the apps use."""

from __future__ import annotations

import json

import pytest
from app_helpers import mixture_toml


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, data_dir):
    """(tokenizer dir, mixture.toml) ready for apps/pretrain.py."""
    pytest.importorskip("sentencepiece")
    from transformers import AutoTokenizer

    from jpmoe.data import write_shards
    from jpmoe.tokenizer import export_hf_tokenizer, tokenizer_fingerprint, train_sentencepiece

    base = tmp_path_factory.mktemp("tiny_run")
    texts = [json.loads(line)["text"] for line in (data_dir / "jglue/jsquad_paragraphs.jsonl").open()][:300]
    export_hf_tokenizer(train_sentencepiece(texts, base / "spm", vocab_size=2500), base / "tokenizer")
    tok = AutoTokenizer.from_pretrained(str(base / "tokenizer"))
    fp = tokenizer_fingerprint(base / "tokenizer")
    for name, part in (("first", texts[:150]), ("second", texts[150:])):
        ids = tok(part, add_special_tokens=False)["input_ids"]
        write_shards(ids, base / "shards" / name, vocab_size=len(tok), eos_id=tok.eos_token_id,
                     bos_id=tok.bos_token_id, tokenizer=fp)
    return base / "tokenizer", mixture_toml(base / "mixture.toml")


@pytest.fixture(autouse=True)
def one_torch_thread():
    """In-process app runs on one thread: a shared 2-core machine makes spinning OpenMP threads crawl."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
