"""Chat templates, labels, truncation, padding and preference pairs on an offline Japanese BPE tokenizer."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from jpalign.encode import collate, encode_chat, encode_dataset, pad_id
from jpalign.pairs import collate_pairs, encode_pair, encode_pairs
from jpalign.templates import INSTRUCTION_JA, INSTRUCTION_PREAMBLE, LLAMA2_JA, DataError, instruction_messages

MULTI = [
    {"role": "system", "content": "あなたは親切なアシスタントです。"},
    {"role": "user", "content": "日本の首都はどこですか？"},
    {"role": "assistant", "content": "東京です。"},
    {"role": "user", "content": "人口は？"},
    {"role": "assistant", "content": "約1400万人です。"},
]


def _supervised(e):
    return [t for t in e.labels if t != -100]


@pytest.mark.parametrize("template", [LLAMA2_JA, INSTRUCTION_JA])
def test_labels_are_assistant_tokens_plus_eos(tokenizer, template):
    e = encode_chat(tokenizer, MULTI, template)
    eos = tokenizer.eos_token_id
    expected = []
    for m in MULTI:
        if m["role"] == "assistant":
            expected += tokenizer.encode(m["content"], add_special_tokens=False) + [eos]
    assert _supervised(e) == expected
    assert tokenizer.decode(_supervised(e)) == "東京です。</s>約1400万人です。</s>"
    assert e.input_ids[-1] == eos and e.labels[-1] == eos
    assert e.input_ids[0] == tokenizer.bos_token_id and e.input_ids[1] != tokenizer.bos_token_id


def test_rendered_text_and_jinja_agree(tokenizer):
    for template in (LLAMA2_JA, INSTRUCTION_JA):
        tokenizer.chat_template = template.jinja
        for msgs, gen in [(MULTI, False), (MULTI[:4], True), (MULTI[1:], False)]:
            ours = template.text(msgs, bos="<s>", eos="</s>", add_generation_prompt=gen)
            assert ours == tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)
    text = INSTRUCTION_JA.text(instruction_messages("要約せよ。", "短い。", input="長い文章"), bos="<s>", eos="</s>")
    assert text == f"<s>{INSTRUCTION_PREAMBLE}\n\n### 指示:\n要約せよ。\n\n### 入力:\n長い文章\n\n### 応答:\n短い。</s>"
    llama = LLAMA2_JA.text(MULTI, bos="<s>", eos="</s>")
    head = "<s>[INST] <<SYS>>\nあなたは親切なアシスタントです。\n<</SYS>>\n\n日本の首都はどこですか？ [/INST] "
    assert llama.startswith(head + "東京です。</s>")
    assert llama.endswith("<s>[INST] 人口は？ [/INST] 約1400万人です。</s>")


def test_generation_prompt_is_the_training_prefix(tokenizer):
    full = encode_chat(tokenizer, MULTI, INSTRUCTION_JA)
    prompt = encode_chat(tokenizer, MULTI[:4], INSTRUCTION_JA, add_generation_prompt=True)
    assert full.input_ids[: len(prompt)] == prompt.input_ids and len(prompt) == full.prompt_length
    assert not _supervised(prompt) == []  # the earlier assistant turn stays labelled in the prompt


def test_no_double_bos_with_a_bos_adding_tokenizer(tokenizer_adds_bos):
    tok = tokenizer_adds_bos
    text = INSTRUCTION_JA.text(MULTI, bos="<s>", eos="</s>")
    naive = tok(text)["input_ids"]  # render to text, tokenize with special tokens: the known hazard
    assert naive[:2] == [tok.bos_token_id, tok.bos_token_id]
    ours = encode_chat(tok, MULTI, INSTRUCTION_JA).input_ids
    assert ours[0] == tok.bos_token_id and ours[1] != tok.bos_token_id and ours.count(tok.bos_token_id) == 1


def test_pad_equal_to_eos_keeps_the_real_eos(tokenizer_pad_is_eos):
    tok = tokenizer_pad_is_eos
    assert pad_id(tok) == tok.eos_token_id
    short = encode_chat(tok, instruction_messages("一言で。", "はい。"), INSTRUCTION_JA)
    long = encode_chat(tok, MULTI, INSTRUCTION_JA)
    batch = collate([short, long], pad_id(tok))
    row = batch["labels"][0]
    assert row[len(short) - 1] == tok.eos_token_id  # the real EOS is supervised
    assert (row[len(short):] == -100).all() and (batch["attention_mask"][0, len(short):] == 0).all()
    assert (batch["input_ids"][0, len(short):] == tok.eos_token_id).all()
    naive = batch["input_ids"].masked_fill(batch["input_ids"] == tok.pad_token_id, -100)  # the known hazard
    assert naive[0, len(short) - 1] == -100  # a collator masking pads would have hidden the EOS


def test_truncation_keeps_prompt_end_and_response_start(tokenizer):
    msgs = instruction_messages("とても長い指示です。" * 20, "最初の部分が残る応答です。" * 10)
    full = encode_chat(tokenizer, msgs, INSTRUCTION_JA)
    cut = encode_chat(tokenizer, msgs, INSTRUCTION_JA, max_length=60, max_prompt_length=30)
    assert len(cut) == 60 and cut.prompt_length == 30
    assert cut.input_ids[0] == tokenizer.bos_token_id
    assert cut.input_ids[1:30] == full.input_ids[full.prompt_length - 29 : full.prompt_length]  # prompt end
    assert cut.input_ids[30:] == full.input_ids[full.prompt_length : full.prompt_length + 30]  # response start
    assert tokenizer.eos_token_id not in cut.input_ids  # an unfinished response teaches no EOS
    with pytest.raises(DataError, match="prompt_too_long"):
        encode_chat(tokenizer, msgs, INSTRUCTION_JA, max_length=60)


@pytest.mark.parametrize(
    ("messages", "reason"),
    [
        ([{"role": "user", "content": "質問"}, {"role": "assistant", "content": "  "}], "empty_response"),
        ([{"role": "user", "content": 3}, {"role": "assistant", "content": "答え"}], "non_string_content"),
        ([{"role": "user", "content": "質問"}, {"role": "bot", "content": "答え"}], "unknown_role"),
        ([{"role": "user", "content": "質問"}, {"role": "input", "content": "文脈"},
          {"role": "assistant", "content": "答え"}], "unknown_role"),  # llama2-ja has no input section
        ([{"role": "assistant", "content": "答え"}], "bad_turn_order"),
        ([{"role": "user", "content": "質問"}], "no_response"),
        ([{"role": "user", "content": "質問</s>"}, {"role": "assistant", "content": "答え"}],
         "special_token_in_content"),
        ("文字列", "bad_turn_order"),
    ],
)
def test_bad_conversations_raise_a_named_reason(tokenizer, messages, reason):
    with pytest.raises(DataError) as err:
        encode_chat(tokenizer, messages, LLAMA2_JA)
    assert err.value.reason == reason


def test_dataset_counts_drops(tokenizer):
    good = instruction_messages("挨拶して。", "こんにちは。")
    data = [good, [{"role": "user", "content": "x"}, {"role": "assistant", "content": ""}], good,
            [{"role": "narrator", "content": "x"}], instruction_messages("長い" * 200, "はい")]
    kept, report = encode_dataset(tokenizer, data, INSTRUCTION_JA, max_length=200)
    assert len(kept) == 2 and report.kept == 2
    assert report.dropped == {"empty_response": 1, "unknown_role": 1, "prompt_too_long": 1}
    assert "dropped 3" in str(report)


def test_preference_pair_shares_one_prompt_encoding(tokenizer):
    prompt = [{"role": "user", "content": "富士山の高さは？"}]
    pair = encode_pair(tokenizer, prompt, "3776メートルです。", "わかりません。", INSTRUCTION_JA)
    assert pair.prompt_ids == encode_chat(tokenizer, prompt, INSTRUCTION_JA, add_generation_prompt=True).input_ids
    full = encode_chat(tokenizer, prompt + [{"role": "assistant", "content": "3776メートルです。"}], INSTRUCTION_JA)
    assert pair.prompt_ids + pair.chosen_ids == full.input_ids
    batch = collate_pairs([pair, pair], pad_id(tokenizer))
    assert batch["input_ids"].shape[0] == 4
    assert torch.equal(batch["input_ids"][0], batch["input_ids"][1])  # chosen rows first
    n = len(pair.prompt_ids)
    assert (batch["labels"][:, :n] == -100).all()
    assert _count(batch["labels"][2]) == len(pair.rejected_ids)
    end = n + len(pair.chosen_ids)
    assert torch.equal(batch["nll_labels"][0, :end], batch["input_ids"][0, :end])


def _count(row):
    return int((row != -100).sum())


def test_bad_pairs_are_counted(tokenizer):
    records = [
        {"prompt": "質問です。", "chosen": "良い答え。", "rejected": "悪い答え。"},
        {"prompt": "質問です。", "chosen": "同じ答え。", "rejected": "同じ答え。"},
        {"prompt": "質問です。", "chosen": "", "rejected": "悪い答え。"},
        {"prompt": "質問です。", "chosen": None, "rejected": "悪い答え。"},
        {"prompt": "長い質問" * 100, "chosen": "良い。", "rejected": "悪い。"},
        {"chosen": "a", "rejected": "b"},
    ]
    pairs, report = encode_pairs(tokenizer, records, INSTRUCTION_JA, max_length=200)
    assert len(pairs) == 1
    assert report.dropped == {"identical_responses": 1, "empty_response": 1, "non_string_content": 1,
                              "prompt_too_long": 1, "malformed_record": 1}


_JA = st.text(alphabet="あいうえおかきくけこ東京大阪日本語。、？！ abc123\n", min_size=1, max_size=12)


@settings(max_examples=40, deadline=None)
@given(turns=st.lists(st.tuples(_JA, _JA.filter(lambda s: s.strip())), min_size=1, max_size=3),
       llama=st.booleans())
def test_property_supervised_tokens_are_assistant_tokens_plus_eos(tokenizer, turns, llama):
    template = LLAMA2_JA if llama else INSTRUCTION_JA
    msgs = [m for u, a in turns for m in ({"role": "user", "content": u}, {"role": "assistant", "content": a})]
    e = encode_chat(tokenizer, msgs, template)
    n_assistant = sum(len(tokenizer.encode(a, add_special_tokens=False)) for _, a in turns)
    assert len(_supervised(e)) == n_assistant + len(turns)  # one EOS per assistant turn
    assert e.input_ids.count(tokenizer.eos_token_id) == len(turns) == _supervised(e).count(tokenizer.eos_token_id)
    assert all(t == i for t, i in zip(e.labels, e.input_ids) if t != -100)
