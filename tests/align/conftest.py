"""Offline test tokenizers for jpalign: a byte-level BPE trained in memory on bundled Japanese text (no download)."""

from __future__ import annotations

import json

import pytest

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]


def _corpus(data_dir) -> list[str]:
    lines = []
    for row in map(json.loads, (data_dir / "elyza_tasks_100" / "test.jsonl").read_text("utf-8").splitlines()[:60]):
        lines += [row["input"], row["output"]]
    lines += ["### 指示:\n", "### 入力:\n", "### 応答:\n", "[INST] <<SYS>>\n", "\n<</SYS>>\n\n", " [/INST] "]
    return lines


def _build(data_dir, *, pad: str | None, bos_post_processor: bool = False):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_corpus(data_dir), trainer)
    if bos_post_processor:  # like Llama tokenizers: add_special_tokens=True prepends BOS
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token=pad)


@pytest.fixture(scope="session")
def tokenizer(data_dir):
    """Distinct pad (<pad> = 0), BOS <s> = 1, EOS </s> = 2."""
    return _build(data_dir, pad="<pad>")


@pytest.fixture(scope="session")
def tokenizer_pad_is_eos(data_dir):
    """pad_token = eos_token, the setting that hides EOS from naive collators."""
    return _build(data_dir, pad="</s>")


@pytest.fixture(scope="session")
def tokenizer_adds_bos(data_dir):
    """A tokenizer whose post-processor prepends BOS (the double-BOS hazard)."""
    return _build(data_dir, pad="<pad>", bos_post_processor=True)
