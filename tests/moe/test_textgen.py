"""jpmoe.textgen: harness-style choice log-likelihoods equal a direct computation; batched text generation keeps
prompt order, cuts over-long prompts from the left (flagged) and reports stop vs length."""

import torch

from jpmoe import ModelConfig, Transformer
from jpmoe.generate import SamplingParams, generate
from jpmoe.textgen import choice_logprobs, generate_texts, stop_token_ids


class CharTok:
    """Token id i <-> chr(0x3041 + i); id 2 is EOS, 7 an end-of-turn marker."""

    eos_token_id, pad_token_id = 2, 0

    def get_vocab(self):
        return {"</s>": 2, "<|end|>": 7}

    def decode(self, ids, skip_special_tokens=False):
        return "".join(chr(0x3041 + i) for i in ids)


def _model(max_seq_len=64):
    torch.manual_seed(0)
    return Transformer(ModelConfig.preset("debug-dense", vocab_size=40, max_seq_len=max_seq_len)).eval()


def test_choice_logprobs_match_a_direct_sum():
    model = _model()
    ctx, choices = [5, 6, 7, 8], [[9], [10, 11], [12, 13, 14]]
    got = choice_logprobs(model, ctx, choices)
    for c, lp in zip(choices, got):
        ids = torch.tensor([ctx + c])
        with torch.no_grad():
            logp = model(ids).logits.float().log_softmax(-1)[0]
        want = sum(float(logp[len(ctx) - 1 + j, t]) for j, t in enumerate(c))
        assert abs(lp - want) < 1e-4


def test_generate_texts_order_truncation_and_finish():
    model, tok = _model(max_seq_len=32), CharTok()
    assert stop_token_ids(tok) == (2, 7)
    prompts = [[5] * 3, [6] * 40, [7, 8]]  # the second is longer than max_seq_len - max_new
    params = SamplingParams(max_new_tokens=8, stop_token_ids=(39,))  # a stop id greedy decoding never picks here
    outs = generate_texts(model, tok, prompts, params, batch_size=2)
    assert [o.truncated for o in outs] == [False, True, False]
    direct = generate(model, [[5] * 3], SamplingParams(max_new_tokens=8, stop_token_ids=(39,)))[0]
    assert outs[0].token_ids == direct and outs[0].text == tok.decode(direct)
    assert all(o.finish == ("stop" if o.token_ids[-1] == 39 else "length") for o in outs)
    eos = generate_texts(model, tok, prompts[:1], SamplingParams(max_new_tokens=8,
                                                                 stop_token_ids=(direct[0],)), batch_size=1)[0]
    assert eos.finish == "stop" and eos.token_ids == [direct[0]] and eos.text == ""
