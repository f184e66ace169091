"""SentencePiece tokenizer training for Japanese, and export as a Hugging Face fast tokenizer directory.

Settings that suit Japanese (the choices of llm-jp and rinna tokenizers): unigram model, byte fallback so no
character is ever <unk>, digits split one per token, no dummy-prefix space (Japanese has no word spaces),
identity normalisation so `decode(encode(text)) == text` exactly (NFKC would fold full-width forms), high
character coverage. Special tokens have fixed ids: <unk> 0, <s> 1, </s> 2, <pad> 3 (PAD is not EOS: a collator
that masks pads must not mask the real EOS), then the chat role markers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

UNK, BOS, EOS, PAD = "<unk>", "<s>", "</s>", "<pad>"
TURN_END = "<|end|>"  # the role-marker template closes every turn with it: a stop token of chat (served or exported)
CHAT_MARKERS = ("<|system|>", "<|user|>", "<|assistant|>", TURN_END)
SPECIAL_TOKENS = (UNK, BOS, EOS, PAD, *CHAT_MARKERS)

# A generic role-marker template; apps pass jpalign's template instead when one is wanted for SFT/DPO.
DEFAULT_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


def train_sentencepiece(texts: Iterable[str], out_dir: str | Path, *, vocab_size: int, model_type: str = "unigram",
                        character_coverage: float = 0.9995, seed_sentencepiece_size: int = 200_000,
                        max_sentence_length: int = 16384, num_threads: int = 2) -> Path:
    """Train a SentencePiece model on `texts` (one document per item) and return the `.model` path."""
    import sentencepiece as spm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [line for text in texts for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError("no training text for the tokenizer: every document was empty")
    prefix = out_dir / "spm"
    try:
        _train(spm, lines, prefix, vocab_size, model_type, character_coverage, seed_sentencepiece_size,
               max_sentence_length, num_threads)
    except RuntimeError as e:
        if "required_chars" in str(e):
            raise ValueError(f"vocab_size {vocab_size} is too small for the distinct characters this text needs at "
                             f"character_coverage={character_coverage} (Japanese needs thousands of kanji): raise "
                             f"vocab_size or lower character_coverage. SentencePiece said: {e}") from e
        raise
    return prefix.with_suffix(".model")


def _train(spm, lines, prefix, vocab_size, model_type, character_coverage, seed_sentencepiece_size,
           max_sentence_length, num_threads) -> None:
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_prefix=str(prefix), vocab_size=vocab_size, model_type=model_type,
        character_coverage=character_coverage, byte_fallback=True, split_digits=True, add_dummy_prefix=False,
        remove_extra_whitespaces=False, normalization_rule_name="identity", allow_whitespace_only_pieces=True,
        split_by_whitespace=True, max_sentence_length=max_sentence_length, max_sentencepiece_length=16,
        unk_id=0, bos_id=1, eos_id=2, pad_id=3, unk_piece=UNK, bos_piece=BOS, eos_piece=EOS, pad_piece=PAD,
        user_defined_symbols=list(CHAT_MARKERS), seed_sentencepiece_size=seed_sentencepiece_size,
        num_threads=num_threads, train_extremely_large_corpus=False, minloglevel=2,
        # at scale SentencePiece samples this many sentences (reservoir) instead of holding every one
        input_sentence_size=10_000_000, shuffle_input_sentence=True,
    )


def _unigram_vocab(spm_path: Path) -> tuple[list[tuple[str, float]], set[int]]:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(spm_path))
    vocab = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]
    specials = {i for i in range(sp.get_piece_size()) if sp.is_control(i) or sp.is_unknown(i)}
    return vocab, specials | {sp.piece_to_id(m) for m in CHAT_MARKERS}


def build_fast_tokenizer(spm_path: str | Path):
    """A `tokenizers.Tokenizer` that encodes exactly as the SentencePiece model (unigram, byte fallback)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    vocab, specials = _unigram_vocab(Path(spm_path))
    tok = Tokenizer(models.Unigram(vocab, unk_id=0, byte_fallback=True))
    # spm with add_dummy_prefix=False and identity rules only maps " " to "▁".
    tok.normalizer = normalizers.Replace(" ", "\u2581")
    # split_by_whitespace: pieces never cross a "▁" boundary; split_digits: every digit alone.
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex("\u2581[^\u2581]*|[^\u2581]+"), behavior="isolated"),
        pre_tokenizers.Digits(individual_digits=True),
    ])
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()])
    tok.add_special_tokens([AddedToken(vocab[i][0], special=True, normalized=False) for i in sorted(specials)])
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, 1)])
    return tok


def export_hf_tokenizer(spm_path: str | Path, out_dir: str | Path, *, chat_template: str = DEFAULT_CHAT_TEMPLATE,
                        model_max_length: int = 1 << 30) -> Path:
    """Write a directory that `transformers.AutoTokenizer.from_pretrained(out_dir)` loads offline."""
    from transformers import PreTrainedTokenizerFast

    out_dir = Path(out_dir)
    hf = PreTrainedTokenizerFast(
        tokenizer_object=build_fast_tokenizer(spm_path), bos_token=BOS, eos_token=EOS, unk_token=UNK,
        pad_token=PAD, additional_special_tokens=list(CHAT_MARKERS), model_max_length=model_max_length,
        padding_side="right", clean_up_tokenization_spaces=False,
    )
    hf.chat_template = chat_template
    save_portable(hf, out_dir)
    (out_dir / "spm.model").write_bytes(Path(spm_path).read_bytes())
    return out_dir


def save_portable(tokenizer, out_dir: str | Path) -> None:
    """`tokenizer.save_pretrained(out_dir)`, with tokenizer_config.json in the spelling transformers 4.x reads too
    (vLLM may be pinned to it): transformers 5 writes the class as `TokenizersBackend`, which 4.x cannot import,
    and the extra special tokens as `extra_special_tokens` (a list), which 4.x expects as a dict. Both versions
    load the rewritten file to the same tokenizer: class PreTrainedTokenizerFast (an alias in 5), the markers as
    `additional_special_tokens`."""
    tokenizer.save_pretrained(str(out_dir))
    path = Path(out_dir) / "tokenizer_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    if isinstance(config.get("extra_special_tokens"), list):  # a dict (named extra tokens) is a spelling 4.x knows
        config["additional_special_tokens"] = config.pop("extra_special_tokens")
    path.write_text(json.dumps(config, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def tokenizer_fingerprint(tokenizer_dir: str | Path) -> str:
    """A short hash of tokenizer.json: shards and checkpoints record it so a mismatch is caught."""
    return hashlib.sha256((Path(tokenizer_dir) / "tokenizer.json").read_bytes()).hexdigest()[:16]


def chars_per_token(tokenizer, texts: Iterable[str]) -> float:
    """Characters per token over `texts` (higher is a more efficient tokenizer); no special tokens counted."""
    chars = tokens = 0
    for text in texts:
        chars += len(text)
        tokens += len(tokenizer.encode(text, add_special_tokens=False))
    if not tokens:
        raise ValueError("chars_per_token needs at least one non-empty text")
    return chars / tokens


def write_report(path: str | Path, report: dict) -> None:
    Path(path).write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
