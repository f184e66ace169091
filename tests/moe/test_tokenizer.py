"""jpmoe.tokenizer: SentencePiece training for Japanese and the Hugging Face fast-tokenizer export."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("sentencepiece")
transformers = pytest.importorskip("transformers")

from jpmoe.tokenizer import (  # noqa: E402
    BOS,
    CHAT_MARKERS,
    EOS,
    PAD,
    TURN_END,
    UNK,
    chars_per_token,
    export_hf_tokenizer,
    tokenizer_fingerprint,
    train_sentencepiece,
)

HELD_OUT = [
    "吾輩は猫である。名前はまだ無い。",
    "東京スカイツリーの高さは634メートルで、2012年に開業した。",
    "𠮷野家で牛丼を食べた😀　全角スペースと  半角スペース2つ\n改行も残る。",
    "ｶﾀｶﾅ（半角）とＡＢＣ（全角）はNFKCで変わるが、ここでは変わらない。",
    "Mixed 日本語 and English text, with punctuation!?",
]


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory, data_dir):
    texts = [json.loads(line)["text"] for line in (data_dir / "jglue/jsquad_paragraphs.jsonl").open()][:400]
    out = tmp_path_factory.mktemp("tok")
    spm_path = train_sentencepiece(texts, out / "spm", vocab_size=3000)
    export_hf_tokenizer(spm_path, out)
    return out


@pytest.fixture(scope="module")
def hf_tok(tok_dir):
    return transformers.AutoTokenizer.from_pretrained(str(tok_dir), local_files_only=True)


@pytest.mark.parametrize("text", HELD_OUT)
def test_round_trip_is_exact_on_japanese(hf_tok, text):
    ids = hf_tok.encode(text, add_special_tokens=False)
    assert hf_tok.decode(ids) == text
    assert hf_tok.unk_token_id not in ids  # byte fallback: rare characters become bytes, never <unk>


@pytest.mark.parametrize("text", HELD_OUT)
def test_fast_tokenizer_matches_sentencepiece(tok_dir, hf_tok, text):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(tok_dir / "spm.model"))
    assert hf_tok.encode(text, add_special_tokens=False) == sp.encode(text)


def test_autotokenizer_special_tokens(hf_tok, tok_dir):
    assert (hf_tok.unk_token, hf_tok.bos_token, hf_tok.eos_token, hf_tok.pad_token) == (UNK, BOS, EOS, PAD)
    assert (hf_tok.unk_token_id, hf_tok.bos_token_id, hf_tok.eos_token_id, hf_tok.pad_token_id) == (0, 1, 2, 3)
    assert hf_tok.pad_token_id != hf_tok.eos_token_id
    for marker in CHAT_MARKERS:  # each role marker is one token, never split
        assert len(hf_tok.encode(marker, add_special_tokens=False)) == 1
    ids = hf_tok.encode("こんにちは")
    assert ids[0] == hf_tok.bos_token_id and ids.count(hf_tok.bos_token_id) == 1
    assert len(tokenizer_fingerprint(tok_dir)) == 16


def test_digits_are_split(hf_tok):
    pieces = hf_tok.convert_ids_to_tokens(hf_tok.encode("2024年12345", add_special_tokens=False))
    digits = [p.lstrip("\u2581") for p in pieces if p.lstrip("\u2581").isdigit()]
    assert digits == list("2024") + list("12345")


def test_chat_template_renders_markers_once(hf_tok):
    msgs = [{"role": "user", "content": "日本の首都は？"}, {"role": "assistant", "content": "東京です。"}]
    text = hf_tok.apply_chat_template(msgs, tokenize=False)
    assert text == "<s><|user|>\n日本の首都は？<|end|>\n<|assistant|>\n東京です。<|end|>\n"
    ids = hf_tok.apply_chat_template(msgs[:1], tokenize=True, add_generation_prompt=True, return_dict=True)["input_ids"]
    assert ids.count(hf_tok.bos_token_id) == 1  # no double BOS
    assert hf_tok.decode(ids[-2:]) == "<|assistant|>\n"


def test_chars_per_token_known_value():
    class Fixed:
        def encode(self, text, add_special_tokens=False):
            return [0] * 4

    assert chars_per_token(Fixed(), ["あいうえおか", "きく"]) == 8 / 8


def test_empty_training_text_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no training text"):
        train_sentencepiece(["", "  \n"], tmp_path, vocab_size=100)


def test_vocab_too_small_for_kanji_is_a_clear_error(tmp_path, data_dir):
    texts = [json.loads(line)["text"] for line in (data_dir / "jglue/jsquad_paragraphs.jsonl").open()][:100]
    with pytest.raises(ValueError, match="vocab_size 300 is too small"):
        train_sentencepiece(texts, tmp_path, vocab_size=300)


def test_export_lists_the_turn_end_as_eos(tok_dir, hf_tok, tmp_path):
    """The role-marker template closes turns with <|end|>; generation_config.json listed only </s>, so transformers'
    generate and vLLM ran past the end of an answer into the next turn where our server stopped."""
    from jpmoe import ModelConfig, Transformer
    from jpmoe.hf import save_hf
    from jpmoe.serve.host import stop_ids_of

    config = ModelConfig.preset("debug", vocab_size=len(hf_tok), max_seq_len=64)
    save_hf(Transformer(config).state_dict(), config, tmp_path / "hf", tokenizer_dir=tok_dir)
    end = hf_tok.convert_tokens_to_ids(TURN_END)
    gen = transformers.GenerationConfig.from_pretrained(str(tmp_path / "hf"))
    assert gen.eos_token_id == [hf_tok.eos_token_id, end]
    assert set(stop_ids_of(hf_tok, config, tmp_path / "hf")) == {hf_tok.eos_token_id, end}
    plain = tmp_path / "plain"  # a template that ends turns with </s> adds nothing
    hf_tok.save_pretrained(str(plain))
    (plain / "chat_template.jinja").write_text("{% for m in messages %}{{ m['content'] + eos_token }}{% endfor %}")
    save_hf(Transformer(config).state_dict(), config, tmp_path / "hf2", tokenizer_dir=plain)
    assert json.loads((tmp_path / "hf2/generation_config.json").read_text())["eos_token_id"] == hf_tok.eos_token_id


def test_tokenizer_config_is_readable_by_transformers_4(tok_dir, hf_tok):
    """transformers 5 wrote the class as `TokenizersBackend` and the markers as a list under `extra_special_tokens`:
    transformers 4.x (which vLLM may be pinned to) raised "Tokenizer class TokenizersBackend does not exist" on
    every export. Checked by hand with transformers 4.57.1: the rewritten file loads there to the same ids."""
    config = json.loads((tok_dir / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast" and "extra_special_tokens" not in config
    assert config["additional_special_tokens"] == list(CHAT_MARKERS)
    assert [hf_tok.convert_tokens_to_ids(m) for m in CHAT_MARKERS] == [4, 5, 6, 7]
    assert hf_tok("<|end|>吾輩")["input_ids"][:2] == [hf_tok.bos_token_id, 7]
