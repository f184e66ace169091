"""Generation: greedy equals transformers' generate (also batched, different lengths), sampling filters equal
transformers' logits processors, stop tokens/strings, errors."""

import pytest
import torch
from hf_cases import DENSE, MOE, ours_and_hf

from jpmoe import Transformer
from jpmoe.generate import SamplingParams, apply_repetition_penalty, filter_top_k_top_p, generate, left_pad

pytest.importorskip("transformers")

PROMPTS = [[5, 6, 7, 8, 9, 10, 11], [3, 4], [50, 60, 70, 1, 2]]


@pytest.mark.parametrize("cfg", [MOE, DENSE], ids=["mixtral", "llama"])
def test_greedy_equals_transformers_generate(cfg, tmp_path):
    ours, hf, _ = ours_and_hf(cfg, tmp_path)
    got = generate(ours, PROMPTS, SamplingParams(max_new_tokens=16))
    ids, mask = left_pad(PROMPTS, 0, "cpu")
    batched = hf.generate(ids, attention_mask=mask.long(), max_new_tokens=16, do_sample=False, pad_token_id=0)
    assert got == batched[:, ids.shape[1]:].tolist()
    for p, row in zip(PROMPTS, got):  # one prompt at a time, no padding at all
        alone = hf.generate(torch.tensor([p]), max_new_tokens=16, do_sample=False, pad_token_id=0)
        assert row == alone[0, len(p):].tolist()


def test_stop_tokens_and_stop_strings():
    torch.manual_seed(0)
    model = Transformer(MOE).eval()
    full = generate(model, PROMPTS[:1], SamplingParams(max_new_tokens=12))[0]
    stop = full[4]
    cut = full[: full.index(stop) + 1]
    assert generate(model, PROMPTS[:1], SamplingParams(max_new_tokens=12, stop_token_ids=(stop,)))[0] == cut

    def decode(ids):
        return "".join(f"<{i}>" for i in ids)

    target = f"<{full[5]}><{full[6]}>"
    got = generate(model, PROMPTS[:1], SamplingParams(max_new_tokens=12, stop_strings=(target,)), decode=decode)[0]
    assert target in decode(got) and target not in decode(got[:-1])


def test_sampling_is_seeded_and_top_k_1_is_greedy():
    torch.manual_seed(0)
    model = Transformer(MOE).eval()
    greedy = generate(model, PROMPTS, SamplingParams(max_new_tokens=8))
    k1 = generate(model, PROMPTS, SamplingParams(max_new_tokens=8, temperature=1.5, top_k=1),
                  generator=torch.Generator().manual_seed(0))
    assert k1 == greedy
    params = SamplingParams(max_new_tokens=8, temperature=1.0, top_p=0.9, repetition_penalty=1.3)
    a = generate(model, PROMPTS, params, generator=torch.Generator().manual_seed(7))
    b = generate(model, PROMPTS, params, generator=torch.Generator().manual_seed(7))
    assert a == b and a != greedy


def test_filters_equal_transformers_processors():
    from transformers.generation.logits_process import (
        RepetitionPenaltyLogitsProcessor,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 50, generator=g) * 3
    ids = torch.randint(0, 50, (3, 7), generator=g)
    seen = torch.zeros(3, 50, dtype=torch.bool).scatter_(1, ids, True)
    want = RepetitionPenaltyLogitsProcessor(1.7)(ids, logits.clone())
    torch.testing.assert_close(apply_repetition_penalty(logits, seen, 1.7), want)
    assert torch.equal(filter_top_k_top_p(logits, top_k=5), TopKLogitsWarper(5)(ids, logits.clone()))
    for p in (0.3, 0.8, 0.95):
        want = TopPLogitsWarper(p)(ids, logits.clone()).isinf()
        assert torch.equal(filter_top_k_top_p(logits, top_p=p).isinf(), want)


def test_bad_generation_inputs():
    torch.manual_seed(0)
    model = Transformer(MOE).eval()
    with pytest.raises(ValueError, match="at least one token"):
        generate(model, [[1, 2], []])
    with pytest.raises(ValueError, match="exceeds max_seq_len 64"):
        generate(model, [[1] * 60], SamplingParams(max_new_tokens=8))
    with pytest.raises(ValueError, match="decode"):
        generate(model, [[1]], SamplingParams(stop_strings=("x",)))
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 97\)"):
        generate(model, [[1, 97]])


@pytest.mark.parametrize(("kw", "named"), [
    ({"temperature": float("nan")}, "temperature"), ({"temperature": float("inf")}, "temperature"),
    ({"temperature": -1.0}, "temperature"), ({"repetition_penalty": float("nan")}, "repetition_penalty"),
    ({"repetition_penalty": float("inf")}, "repetition_penalty"), ({"repetition_penalty": 0.0}, "repetition_penalty"),
    ({"top_p": float("nan")}, "top_p"), ({"top_p": 0.0}, "top_p"), ({"top_k": -1}, "top_k"),
    ({"top_k": 1.5}, "top_k must be an int"), ({"max_new_tokens": 2.5}, "max_new_tokens must be an int"),
    ({"max_new_tokens": 0}, "max_new_tokens"), ({"stop_strings": "END"}, "stop_strings must be a sequence"),
    ({"stop_strings": ("",)}, "non-empty"), ({"stop_token_ids": 2}, "stop_token_ids must be a sequence"),
])
def test_bad_sampling_params_are_named(kw, named):
    """NaN temperature crashed inside torch.multinomial, NaN repetition_penalty silently generated token 1 forever,
    a str stop_strings stopped at any of its characters, a float max_new_tokens crashed in torch.zeros."""
    with pytest.raises(ValueError, match=named):
        SamplingParams(**kw)


def test_stop_ids_given_as_a_list_work():
    assert SamplingParams(stop_token_ids=[2, 3], stop_strings=["a"]).stop_token_ids == (2, 3)


def test_forward_path_for_sharded_models_equals_the_decoder():
    """FSDP2 models (DTensor shards) generate through the model's forward; it gives the Decoder's tokens."""
    from jpmoe.generate import generate_sharded

    torch.manual_seed(0)
    model = Transformer(MOE).eval()
    prompts = [[5, 6, 7, 8], [9, 10]]
    params = SamplingParams(max_new_tokens=12, stop_token_ids=(3,))
    assert generate_sharded(model, prompts, params, decode=None, pad_id=0, generator=None) == \
        generate(model, prompts, params)
