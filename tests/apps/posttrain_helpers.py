"""Fixtures of the post-training app tests: a tiny tokenizer (instruction-ja chat template), a tiny jpmoe base
model and a tiny Hugging Face Llama sharing it, and crafted Japanese SFT and preference records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from jpalign import INSTRUCTION_JA

SFT_FACTS = [
    ("日本の首都はどこですか？", "日本の首都は東京です。"),
    ("富士山の高さは？", "富士山の高さは三七七六メートルです。"),
    ("一年は何日ですか？", "一年は三百六十五日です。"),
    ("猫は何と鳴きますか？", "猫はにゃあと鳴きます。"),
    ("空は何色ですか？", "晴れた空は青色です。"),
    ("水は何度で沸騰しますか？", "水は百度で沸騰します。"),
    ("一週間は何日ですか？", "一週間は七日です。"),
    ("日本で一番長い川は？", "日本で一番長い川は信濃川です。"),
]


def sft_records() -> list[dict]:
    recs = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]} for q, a in SFT_FACTS]
    recs += [{"instruction": "次の文を丁寧な言葉にしてください。", "input": f"{q}", "output": f"{a}ございます。"}
             for q, a in SFT_FACTS[:4]]
    return recs


def dpo_records() -> list[dict]:
    return [{"prompt": q, "chosen": a, "rejected": "わかりません。わかりません。わかりません。"} for q, a in SFT_FACTS]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return path


def build_bases(base: Path, data_dir: Path) -> tuple[Path, Path]:
    """(jpmoe base dir, HF Llama dir) under `base`: the debug MoE and a dense debug-size Llama, with the tiny
    tokenizer (instruction-ja chat template) next to their weights. Each test module's fixture calls it."""
    pytest.importorskip("sentencepiece")
    from transformers import LlamaConfig, LlamaForCausalLM

    from jpmoe.config import ModelConfig
    from jpmoe.hf.convert import copy_tokenizer, save_hf
    from jpmoe.model import Transformer
    from jpmoe.tokenizer import export_hf_tokenizer, train_sentencepiece

    texts = [json.loads(line)["text"] for line in (data_dir / "jglue/jsquad_paragraphs.jsonl").open()][:300]
    texts += [q + a for q, a in SFT_FACTS] * 3
    export_hf_tokenizer(train_sentencepiece(texts, base / "spm", vocab_size=2500), base / "tokenizer",
                        chat_template=INSTRUCTION_JA.jinja)
    torch.manual_seed(0)
    config = ModelConfig.preset("debug", vocab_size=2500, bos_token_id=1, eos_token_id=2, pad_token_id=3)
    save_hf(Transformer(config).state_dict(), config, base / "jpmoe", tokenizer_dir=base / "tokenizer")
    hf_config = LlamaConfig(vocab_size=2500, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                            bos_token_id=1, eos_token_id=2, pad_token_id=3, tie_word_embeddings=False)
    LlamaForCausalLM(hf_config).save_pretrained(base / "llama")
    copy_tokenizer(base / "tokenizer", base / "llama")
    return base / "jpmoe", base / "llama"


def sft_cmd(base: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return ["apps/sft.py", "--base", str(base), "--data", str(data), "--out_dir", str(out), "--seq_len", "160",
            "--micro_batch", "2", "--lr", "3e-3", "--eval_frac", "0", "--log_every", "1000", "--tensorboard",
            "false", "--sample_tokens", "4", *extra]
