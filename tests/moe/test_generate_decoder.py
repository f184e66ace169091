"""jpmoe.decoder: rows that join a running batch, leave it early or are cancelled get exactly the tokens they get
alone (continuous batching changes nothing but speed); the static cache is never outgrown; bad rows are named."""

import pytest
import torch
from hf_cases import DENSE, MOE

from jpmoe import Transformer
from jpmoe.decoder import Decoder, Row
from jpmoe.generate import SamplingParams, generate

PROMPTS = [[5, 6, 7, 8, 9, 10, 11], [3, 4], [50, 60, 70, 1, 2], [9] * 12]


@pytest.mark.parametrize("cfg", [MOE, DENSE], ids=["mixtral", "llama"])
def test_rows_joining_and_leaving_get_their_solo_tokens(cfg):
    torch.manual_seed(0)
    model = Transformer(cfg).eval()
    lengths = [20, 6, 14, 9]  # row 1 leaves early: the last row moves into its slot while others run
    solo = [generate(model, [p], SamplingParams(max_new_tokens=n))[0] for p, n in zip(PROMPTS, lengths)]
    dec = Decoder(model, max_batch=4)
    rows = [Row(p, SamplingParams(max_new_tokens=n)) for p, n in zip(PROMPTS, lengths)]
    dec.add(rows[:1])
    for _ in range(3):
        dec.step()
    dec.add(rows[1:3])  # join a batch that is 3 tokens ahead
    dec.step()
    dec.add(rows[3:])
    while dec.rows:
        dec.step()
    assert [r.tokens for r in rows] == solo
    assert [r.finish for r in rows] == ["length"] * 4 and dec.free_slots == 4


def test_cancelled_row_frees_its_slot_and_others_continue():
    torch.manual_seed(0)
    model = Transformer(DENSE).eval()
    solo = generate(model, [PROMPTS[2]], SamplingParams(max_new_tokens=10))[0]
    dec = Decoder(model, max_batch=2)
    a, b = Row(PROMPTS[0], SamplingParams(max_new_tokens=10)), Row(PROMPTS[2], SamplingParams(max_new_tokens=10))
    dec.add([a, b])
    dec.step()
    dec.finish(a, "cancelled")
    assert dec.free_slots == 1 and a.finish == "cancelled" and len(a.tokens) == 2
    c = Row(PROMPTS[1], SamplingParams(max_new_tokens=3))
    dec.add([c])
    while dec.rows:
        dec.step()
    assert b.tokens == solo and c.tokens == generate(model, [PROMPTS[1]], SamplingParams(max_new_tokens=3))[0]


def test_seeded_rows_sample_the_same_alone_or_batched():
    torch.manual_seed(0)
    model = Transformer(MOE).eval()
    params = SamplingParams(max_new_tokens=8, temperature=1.0, top_p=0.9)

    def run(prompts):
        dec = Decoder(model, max_batch=len(prompts))
        rows = [Row(p, params, torch.Generator().manual_seed(i)) for i, p in enumerate(prompts)]
        dec.add(rows)
        while dec.rows:
            dec.step()
        return [r.tokens for r in rows]

    assert run(PROMPTS[:1]) == run(PROMPTS)[:1]


def test_bad_rows_are_named():
    torch.manual_seed(0)
    dec = Decoder(Transformer(MOE).eval(), max_batch=1)
    with pytest.raises(ValueError, match="at least one token"):
        dec.add([Row([], SamplingParams())])
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 97\)"):
        dec.add([Row([97], SamplingParams())])
    with pytest.raises(ValueError, match="exceeds max_seq_len 64"):
        dec.add([Row([1] * 60, SamplingParams(max_new_tokens=8))])
    with pytest.raises(ValueError, match="do not fit: 1 free slots"):
        dec.add([Row([1], SamplingParams()), Row([2], SamplingParams())])
    assert dec.rows == [] and dec.free_slots == 1


def test_bf16_model_decodes_like_its_fp32_twin_for_the_first_tokens():
    """The non-fp32 paths (rotary and norms in fp32, rounded once): a bf16 copy follows fp32 greedy decoding."""
    torch.manual_seed(0)
    model = Transformer(DENSE).eval()
    want = generate(model, PROMPTS[:2], SamplingParams(max_new_tokens=3))
    got = generate(model.to(torch.bfloat16), PROMPTS[:2], SamplingParams(max_new_tokens=3))
    assert [g[:2] for g in got] == [w[:2] for w in want]
