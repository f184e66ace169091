"""Bad records found by adversarial review: each is a named, counted rejection (or a clear error), never a crash
mid-dataset and never an example kept with nothing to learn."""

from __future__ import annotations

import pytest

from jpalign import INSTRUCTION_JA, LLAMA2_JA, DataError, encode_chat, encode_dataset

SYSTEM = {"role": "system", "content": "あなたは親切なアシスタントです。"}


@pytest.mark.parametrize("template", [LLAMA2_JA, INSTRUCTION_JA], ids=lambda t: t.name)
def test_system_message_alone_is_no_response(tokenizer, template):
    with pytest.raises(DataError) as err:
        encode_chat(tokenizer, [SYSTEM], template)
    assert err.value.reason == "no_response"
    kept, report = encode_dataset(tokenizer, [[SYSTEM]], template)
    assert kept == [] and report.dropped == {"no_response": 1}
