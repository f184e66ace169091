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


def test_a_killed_reference_pass_resumes_where_it_stopped(tmp_path, tokenizer, capsys):
    """A pass killed after 3 batches leaves `<cache>.partial`; the rerun scores only the remaining pairs, shows
    progress, and its cache equals an uninterrupted pass bit for bit."""
    records = [{"prompt": f"質問{i}", "chosen": "はい。" * (1 + i % 3), "rejected": "いいえ。"} for i in range(10)]
    pairs, _ = encode_pairs(tokenizer, records, INSTRUCTION_JA)
    seen = []

    def counting(batch, fail_after=None):
        seen.append(batch["input_ids"].shape[0] // 2)
        if fail_after is not None and len(seen) > fail_after:
            raise KeyboardInterrupt  # the kill
        return _forward(batch)

    kw = dict(pad_token_id=pad_id(tokenizer), model_tag="m", batch_size=3, save_every_s=0, progress_every_s=1e-9)
    whole = precompute_reference_logps(counting, pairs, **kw)
    cache = tmp_path / "ref.pt"
    seen.clear()
    with pytest.raises(KeyboardInterrupt):
        cached_reference_logps(cache, lambda b: counting(b, fail_after=3), pairs, **kw)
    assert not cache.exists() and (tmp_path / "ref.pt.partial").exists()
    seen.clear()
    capsys.readouterr()
    ref = cached_reference_logps(cache, counting, pairs, **kw)
    assert seen == [1]  # pairs 9..9 only: 3 batches of 3 were kept
    assert "reference log-probs: 10/10 pairs" in capsys.readouterr().err
    for k in ("chosen_sum", "rejected_sum", "chosen_count", "rejected_count"):
        assert torch.equal(getattr(ref, k), getattr(whole, k)), k
    assert not (tmp_path / "ref.pt.partial").exists()
    other = encode_pairs(tokenizer, records[:9], INSTRUCTION_JA)[0]  # a partial file of other pairs is not used
    seen.clear()
    with pytest.raises(KeyboardInterrupt):
        cached_reference_logps(tmp_path / "b.pt", lambda b: counting(b, fail_after=2), other, **kw)
    assert (tmp_path / "b.pt.partial").exists()
    seen.clear()
    cached_reference_logps(tmp_path / "b.pt", counting, pairs, **kw)
    assert sum(seen) == 10


class _Payload:
    """Unpickled with plain pickle (torch.load(weights_only=False)), this writes `marker`."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('ran')",)


def test_a_planted_payload_in_the_cache_or_its_partial_file_never_runs(tmp_path, pairs, tokenizer):
    """The cache is refused naming the file; the partial file (only ever a speed-up) is recomputed over."""
    marker, cache = tmp_path / "ran", tmp_path / "ref.pt"
    torch.save(_Payload(marker), cache)
    kw = dict(pad_token_id=pad_id(tokenizer), model_tag="m")
    with pytest.raises(ValueError, match="ref.pt: refused to load it.*nothing from it was run"):
        cached_reference_logps(cache, _forward, pairs, **kw)
    cache.unlink()
    torch.save(_Payload(marker), tmp_path / "ref.pt.partial")
    ref = cached_reference_logps(cache, _forward, pairs, **kw)
    assert ref.chosen_sum.shape == (1,) and not (tmp_path / "ref.pt.partial").exists()
    assert not marker.exists()


def test_a_cache_file_with_other_contents_is_named(tmp_path, pairs, tokenizer):
    cache = tmp_path / "ref.pt"
    torch.save({"chosen_sum": torch.zeros(1)}, cache)
    with pytest.raises(ValueError, match="ref.pt: not a reference log-prob cache"):
        cached_reference_logps(cache, _forward, pairs, pad_token_id=pad_id(tokenizer), model_tag="m")
