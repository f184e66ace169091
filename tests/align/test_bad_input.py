"""Bad records found by adversarial review: each is a named, counted rejection (or a clear error), never a crash
mid-dataset and never an example kept with nothing to learn."""

from __future__ import annotations

import json

import pytest

from jpalign import INSTRUCTION_JA, LLAMA2_JA, DataError, encode_chat, encode_dataset, encode_pair, encode_pairs

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
