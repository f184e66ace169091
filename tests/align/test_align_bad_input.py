"""Bad records found by adversarial review: each is a named, counted rejection (or a clear error), never a crash
mid-dataset and never an example kept with nothing to learn."""

from __future__ import annotations

import json

import pytest

from jpalign import (
    INSTRUCTION_JA,
    LLAMA2_JA,
    DataError,
    collate,
    collate_packed,
    collate_pairs,
    collate_pairs_shared_prompt,
    encode_chat,
    encode_dataset,
    encode_pair,
    encode_pairs,
    instruction_messages,
)

SYSTEM = {"role": "system", "content": "あなたは親切なアシスタントです。"}


@pytest.mark.parametrize("template", [LLAMA2_JA, INSTRUCTION_JA], ids=lambda t: t.name)
def test_system_message_alone_is_no_response(tokenizer, template):
    with pytest.raises(DataError) as err:
        encode_chat(tokenizer, [SYSTEM], template)
    assert err.value.reason == "no_response"
    kept, report = encode_dataset(tokenizer, [[SYSTEM]], template)
    assert kept == [] and report.dropped == {"no_response": 1}


def test_lone_surrogate_is_counted_not_a_crash(tokenizer):
    bad = json.loads('"\\ud800壊れた文字"')  # JSON allows escaped lone surrogates; UTF-8 cannot encode them
    good = [{"role": "user", "content": "質問"}, {"role": "assistant", "content": "答え"}]
    kept, report = encode_dataset(tokenizer, [good, [{"role": "user", "content": bad}, good[1]], good], LLAMA2_JA)
    assert len(kept) == 2 and report.dropped == {"invalid_unicode": 1}
    records = [{"prompt": "質問", "chosen": bad, "rejected": "答え"}, {"prompt": bad, "chosen": "a", "rejected": "b"}]
    pairs, report = encode_pairs(tokenizer, records, INSTRUCTION_JA)
    assert pairs == [] and report.dropped == {"invalid_unicode": 2}


def test_pair_identical_after_truncation_is_dropped(tokenizer):
    prompt = [{"role": "user", "content": "質問"}]
    chosen, rejected = "同じ始まりの長い応答です。それからA", "同じ始まりの長い応答です。それからB"
    n = len(encode_pair(tokenizer, prompt, chosen, rejected, INSTRUCTION_JA).prompt_ids)
    with pytest.raises(DataError, match="identical_responses"):  # both cut to the same 5 tokens: no preference
        encode_pair(tokenizer, prompt, chosen, rejected, INSTRUCTION_JA, max_length=n + 5)
    pairs, report = encode_pairs(tokenizer, [{"prompt": "質問", "chosen": chosen, "rejected": rejected}],
                                 INSTRUCTION_JA, max_length=n + 5)
    assert pairs == [] and report.dropped == {"identical_responses": 1}


def test_truncation_is_counted_and_reported(tokenizer):
    long_prompt = instruction_messages("とても長い指示です。" * 20, "短い応答。")
    long_answer = instruction_messages("短い指示。", "とても長い応答です。" * 40)
    fits = instruction_messages("短い指示。", "短い応答。")
    kept, report = encode_dataset(tokenizer, [long_prompt, long_answer, fits], INSTRUCTION_JA, max_length=200,
                                  max_prompt_length=150)
    assert len(kept) == 3 and report.dropped == {}
    assert [e.truncated for e in kept] == [("prompt",), ("response",), ()]
    assert report.truncated == {"prompt": 1, "response": 1}
    assert str(report) == "kept 3 (truncated: prompt=1, response=1), dropped 0 (none)"
    records = [{"prompt": "とても長い質問です。" * 20, "chosen": "はい。", "rejected": "いいえ。"},
               {"prompt": "質問", "chosen": "とても長い応答です。" * 40, "rejected": "いいえ。"},
               {"prompt": "質問", "chosen": "はい。", "rejected": "いいえ。"}]
    pairs, report = encode_pairs(tokenizer, records, INSTRUCTION_JA, max_length=200, max_prompt_length=150)
    assert [p.truncated for p in pairs] == [("prompt",), ("response",), ()]
    assert report.kept == 3 and report.truncated == {"prompt": 1, "response": 1}


@pytest.mark.parametrize("fn", [collate, collate_packed, collate_pairs, collate_pairs_shared_prompt],
                         ids=lambda f: f.__name__)
def test_collating_nothing_is_a_clear_error(fn):
    with pytest.raises(ValueError, match="no examples to collate"):  # e.g. every record was dropped
        fn([], 0)


def test_a_column_shaped_reference_is_an_error_not_a_b_by_b_broadcast():
    import torch

    from jpalign import dpo_loss, fused_dpo_loss, orpo_odds_ratio_loss, simpo_loss

    b = 3
    pc, pr = torch.randn(b), torch.randn(b)
    with pytest.raises(ValueError, match=r"\(3, 1\)"):  # (B,) - (B, 1) would silently give a (B, B) loss
        dpo_loss(pc, pr, torch.randn(b, 1), torch.randn(b, 1))
    hidden, weight = torch.randn(2 * b, 5, 8), torch.randn(20, 8)
    labels = torch.randint(0, 20, (2 * b, 5))
    with pytest.raises(ValueError, match=r"\(3, 1\)"):
        fused_dpo_loss(hidden, weight, labels, ref_chosen_logps=torch.zeros(b, 1), ref_rejected_logps=torch.zeros(b, 1))
    with pytest.raises(ValueError, match=r"\(3, 1\)"):
        simpo_loss(pc, pr.unsqueeze(-1))
    with pytest.raises(ValueError, match=r"\(3, 1\)"):
        orpo_odds_ratio_loss(-pc.abs(), -pr.abs().unsqueeze(-1))
    losses, _, _ = dpo_loss(pc, pr, torch.zeros(1), torch.zeros(()))  # one reference value for all pairs: fine
    assert losses.shape == (b,)


@pytest.mark.parametrize("num_items", [0, -3])
def test_num_items_must_be_positive(num_items):
    """A zero or negative token count would turn the mean into inf/NaN (or flip its sign) without a word."""
    import torch

    from jpalign import fused_sft_loss, sft_loss

    hidden, weight, labels = torch.randn(4, 8), torch.randn(16, 8), torch.randint(0, 16, (4,))
    with pytest.raises(ValueError, match="num_items must be > 0"):
        sft_loss(hidden @ weight.t(), labels, num_items=num_items)
    with pytest.raises(ValueError, match="num_items must be > 0"):
        fused_sft_loss(hidden, weight, labels, num_items=num_items)


@pytest.mark.parametrize("limits", [dict(max_length=0), dict(max_length=1), dict(max_prompt_length=0)])
def test_impossible_length_limits_are_a_setting_error_not_every_example_dropped(tokenizer, limits):
    """max_length 0 used to drop every example as prompt_too_long: counted, but the run learned nothing."""
    conv = [{"role": "user", "content": "こんにちは"}, {"role": "assistant", "content": "はい。"}]
    with pytest.raises(ValueError, match="max_length must be >= 2"):
        encode_dataset(tokenizer, [conv], LLAMA2_JA, **limits)
