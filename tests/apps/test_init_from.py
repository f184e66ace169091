"""apps/pretrain.py --init-from: continued pretraining starts from a Hugging Face Llama's weights exactly, extends
the vocabulary with mean-initialised rows when asked, and refuses a tokenizer that does not extend the checkpoint's."""

from __future__ import annotations

import json

import pytest
import torch
from app_helpers import load_app

from jpmoe.hf.convert import copy_tokenizer, load_hf
from jpmoe.train import parse_args, read_metrics

pretrain = load_app("pretrain")


def make_llama(path, tokenizer_dir, vocab: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64, bos_token_id=1,
                         eos_token_id=2, pad_token_id=3, tie_word_embeddings=False)
    LlamaForCausalLM(config).save_pretrained(path)
    copy_tokenizer(tokenizer_dir, path)
    return path


def run(tiny_run, llama, out, *extra: str):
    tok, mix = tiny_run
    argv = ["--init-from", str(llama), "--tokenizer", str(tok), "--mixture", str(mix), "--out_dir", str(out),
            "--seq_len", "32", "--micro_batch", "4", "--ckpt_every", "2", "--warmup_steps", "1", "--log_every",
            "1000", "--sample_every", "0", "--tensorboard", "false", *extra]
    pretrain.main(parse_args(pretrain.Args, argv))
    return read_metrics(out / "metrics.jsonl")


def test_starts_from_the_checkpoint_weights(tiny_run, tmp_path):
    llama = make_llama(tmp_path / "llama", tiny_run[0], 2500)
    run(tiny_run, llama, tmp_path / "frozen", "--max_steps", "2", "--lr", "0")  # lr 0: the weights stay as loaded
    _, base = load_hf(llama)
    _, frozen = load_hf(tmp_path / "frozen" / "hf")
    assert base.keys() == frozen.keys() and all(torch.equal(base[k], frozen[k]) for k in base)
    metrics = run(tiny_run, llama, tmp_path / "trained", "--max_steps", "6", "--lr", "1e-2")
    assert metrics[-1]["loss"] < metrics[0]["loss"]
    assert json.loads((tmp_path / "trained" / "hf" / "config.json").read_text())["num_hidden_layers"] == 2


def test_extend_vocab_adds_mean_rows(tiny_run, tmp_path):
    llama = make_llama(tmp_path / "llama", tiny_run[0], 2400)  # its tokenizer's first 2400 ids, 100 new ones
    with pytest.raises(ValueError, match="--extend_vocab"):
        run(tiny_run, llama, tmp_path / "no", "--max_steps", "1")
    run(tiny_run, llama, tmp_path / "ext", "--max_steps", "1", "--lr", "0", "--extend_vocab", "true")
    _, base = load_hf(llama)
    _, ext = load_hf(tmp_path / "ext" / "hf")
    for key in ("tok_embeddings.weight", "lm_head.weight"):
        assert ext[key].shape == (2500, 64)
        torch.testing.assert_close(ext[key][:2400], base[key], rtol=0, atol=0)
        torch.testing.assert_close(ext[key][2400:], base[key].mean(0).expand(100, -1), rtol=0, atol=1e-7)


def test_a_tokenizer_that_does_not_extend_the_checkpoints_is_refused(tiny_run, tmp_path, data_dir):
    from jpmoe.tokenizer import export_hf_tokenizer, train_sentencepiece

    other = tmp_path / "other_tok"
    texts = [json.loads(line)["text"] for line in (data_dir / "jglue/jsquad_paragraphs.jsonl").open()][300:600]
    export_hf_tokenizer(train_sentencepiece(texts, tmp_path / "spm", vocab_size=2500), other)
    llama = make_llama(tmp_path / "llama", other, 2500)
    with pytest.raises(ValueError, match="does not extend"):
        run(tiny_run, llama, tmp_path / "out", "--max_steps", "1")
    assert not (tmp_path / "out" / "checkpoints").exists()
