"""The reference log-prob cache names what is wrong: an unreadable cache file, no pairs, a zero batch size."""

from __future__ import annotations

import pytest
import torch

from jpalign import INSTRUCTION_JA, cached_reference_logps, encode_pairs, pad_id, precompute_reference_logps


def _forward(batch):
    emb = torch.randn(1000, 8, generator=torch.Generator().manual_seed(1))
    return emb[batch["input_ids"]], emb


@pytest.fixture
def pairs(tokenizer):
    pairs, _ = encode_pairs(tokenizer, [{"prompt": "質問", "chosen": "はい。", "rejected": "いいえ。"}], INSTRUCTION_JA)
    return pairs


def test_unreadable_cache_is_named_and_not_a_weights_only_hint(tmp_path, pairs, tokenizer):
    cache = tmp_path / "ref.pt"
    cache.write_bytes(b"not a torch file")  # e.g. a disk error; our own writes are atomic
    with pytest.raises(ValueError, match="ref.pt: not a readable reference log-prob cache") as err:
        cached_reference_logps(cache, _forward, pairs, pad_token_id=pad_id(tokenizer), model_tag="m")
    assert "weights_only" not in str(err.value)


def test_no_pairs_or_zero_batch_is_a_clear_error(pairs, tokenizer):
    with pytest.raises(ValueError, match="no preference pairs"):
        precompute_reference_logps(_forward, [], pad_token_id=pad_id(tokenizer), model_tag="m")
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        precompute_reference_logps(_forward, pairs, pad_token_id=pad_id(tokenizer), model_tag="m", batch_size=0)
