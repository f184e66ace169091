"""jpalign with a tiny random transformers LlamaForCausalLM: model-agnostic losses, packing, reference cache."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from jpalign import (
    INSTRUCTION_JA,
    ReferenceLogps,
    cached_reference_logps,
    collate,
    collate_packed,
    collate_pairs,
    collate_pairs_shared_prompt,
    document_attention_mask,
    dpo_loss,
    encode_chat,
    encode_pair,
    fused_dpo_loss,
    fused_sft_loss,
    instruction_messages,
    pack_examples,
    pad_id,
    sequence_logps,
    sft_loss,
    shift_labels,
)
from jpalign.encode import Encoded

transformers = pytest.importorskip("transformers")
VOCAB = 600


def _llama(seed=0):
    cfg = transformers.LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                                   attn_implementation="sdpa")
    torch.manual_seed(seed)
    return transformers.LlamaForCausalLM(cfg).eval()


@pytest.fixture(scope="module")
def llama():
    return _llama()


def _hidden(model, batch, **kw):
    out = model.model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], **kw)
    return out.last_hidden_state


def test_sft_loss_matches_transformers_loss(llama, tokenizer):
    msgs = [instruction_messages("日本の首都は？", "東京です。"), instruction_messages("挨拶して。", "こんにちは。")]
    batch = collate([encode_chat(tokenizer, m, INSTRUCTION_JA) for m in msgs], pad_id(tokenizer))
    out = llama(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
    labels = shift_labels(batch["labels"])
    torch.testing.assert_close(sft_loss(out.logits, labels), out.loss)
    hidden = _hidden(llama, batch, attention_mask=batch["attention_mask"])
    fused = fused_sft_loss(hidden, llama.lm_head.weight, labels, chunk_size=7)
    torch.testing.assert_close(fused, out.loss, rtol=1e-5, atol=1e-6)
    g_fused = torch.autograd.grad(fused, llama.lm_head.weight)[0]
    g_hf = torch.autograd.grad(llama(**{k: batch[k] for k in ("input_ids", "attention_mask", "labels")}).loss,
                               llama.lm_head.weight)[0]
    torch.testing.assert_close(g_fused, g_hf, rtol=1e-5, atol=1e-6)


def _pairs(tokenizer):
    data = [("富士山の高さは？", "3776メートルです。", "わかりません。"),
            ("一番大きい湖は？", "琵琶湖です。", "海です。たぶん。")]
    return [encode_pair(tokenizer, [{"role": "user", "content": p}], c, r, INSTRUCTION_JA) for p, c, r in data]


def test_dpo_with_precomputed_reference_cache(llama, tokenizer, tmp_path):
    pairs = _pairs(tokenizer)
    ref_model = _llama(seed=1)

    def forward(batch):  # any model: here hidden states and the lm_head weight of a transformers Llama
        return _hidden(ref_model, batch, attention_mask=batch["attention_mask"]), ref_model.lm_head.weight

    path = tmp_path / "ref.pt"
    ref = cached_reference_logps(path, forward, pairs, pad_token_id=pad_id(tokenizer), model_tag="ref-seed1",
                                 batch_size=1)
    again = cached_reference_logps(path, lambda b: 1 / 0, pairs, pad_token_id=pad_id(tokenizer), model_tag="ref-seed1")
    torch.testing.assert_close(again.chosen_sum, ref.chosen_sum)  # loaded, not recomputed
    with pytest.raises(ValueError, match="other pairs or another model"):
        ReferenceLogps.load(path, expected_fingerprint="0" * 64)

    batch = collate_pairs(pairs, pad_id(tokenizer))
    labels = shift_labels(batch["labels"])
    with torch.no_grad():
        ref_logits = ref_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    ref_direct = sequence_logps(ref_logits, labels)
    torch.testing.assert_close(torch.cat([ref.chosen_sum, ref.rejected_sum]), ref_direct, rtol=1e-5, atol=1e-5)

    rc, rr = ref.for_batch([0, 1], average=False)
    hidden = _hidden(llama, batch, attention_mask=batch["attention_mask"])
    out = fused_dpo_loss(hidden, llama.lm_head.weight, labels, ref_chosen_logps=rc, ref_rejected_logps=rr)
    policy = sequence_logps(llama.lm_head(hidden), labels)
    losses, _, _ = dpo_loss(policy[:2], policy[2:], rc, rr)
    torch.testing.assert_close(out.loss, losses.mean(), rtol=1e-5, atol=1e-6)
    same = fused_dpo_loss(hidden, llama.lm_head.weight, labels, ref_chosen_logps=policy[:2].detach(),
                          ref_rejected_logps=policy[2:].detach())
    torch.testing.assert_close(same.loss, torch.log(torch.tensor(2.0)))  # policy = reference: log 2


def _packed_losses(model, examples, max_length):
    rows, report = pack_examples(examples, max_length)
    batch = collate_packed(rows, 0)
    logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"],
                   attention_mask=document_attention_mask(batch["segment_ids"])).logits
    per_token = sft_loss(logits, shift_labels(batch["labels"], batch["position_ids"]), reduction="none")
    out = {}
    for r, row in enumerate(rows):
        for j, e in enumerate(row.examples):
            out[id(e)] = per_token[r][batch["segment_ids"][r] == j].sum()
    return out, batch, report


_EXAMPLE = st.lists(st.tuples(st.integers(4, VOCAB - 1), st.booleans()), min_size=2, max_size=12)


@settings(max_examples=12, deadline=None)
@given(specs=st.lists(_EXAMPLE, min_size=1, max_size=5))
def test_property_packing_changes_no_examples_loss(llama, specs):
    examples = [Encoded([t for t, _ in s], [t if sup else -100 for t, sup in s], 0) for s in specs]
    packed, batch, report = _packed_losses(llama, examples, max_length=24)
    assert report.kept == len(examples) and not report.dropped
    assert int((batch["labels"] != -100).sum()) == sum(sum(t != -100 for t in e.labels) for e in examples)
    starts = batch["position_ids"] == 0
    assert int((starts & (batch["segment_ids"] >= 0)).sum()) == len(examples)  # positions reset per example
    for e in examples:
        alone = llama(input_ids=torch.tensor([e.input_ids])).logits
        expected = sft_loss(alone, shift_labels(torch.tensor([e.labels])), reduction="sum")
        torch.testing.assert_close(packed[id(e)], expected, rtol=1e-4, atol=1e-4)


def test_packing_drops_and_cu_seqlens():
    examples = [Encoded([5] * n, [5] * n, 0) for n in (3, 9, 4, 30)]
    rows, report = pack_examples(examples, 10)
    assert report.dropped == {"longer_than_pack": 1} and sorted(len(r) for r in rows) == [7, 9]
    batch = collate_packed(rows, 0)
    cu = batch["cu_seqlens"].tolist()
    assert cu[0] == 0 and cu[-1] == batch["input_ids"].numel() and all(a < b for a, b in zip(cu, cu[1:]))
    mask = document_attention_mask(batch["segment_ids"])
    assert mask.shape == (2, 1, 9, 9) and torch.isfinite(mask).all()
    with pytest.raises(ValueError, match="strategy"):
        pack_examples(examples, 10, strategy="random")


def test_shared_prompt_layout_equals_two_rows_per_pair(llama, tokenizer):
    pairs = _pairs(tokenizer)
    ref = torch.tensor([-30.0, -31.0])
    batch = collate_pairs(pairs, pad_id(tokenizer))
    hidden = _hidden(llama, batch, attention_mask=batch["attention_mask"])
    two_rows = fused_dpo_loss(hidden, llama.lm_head.weight, shift_labels(batch["labels"]),
                              ref_chosen_logps=ref, ref_rejected_logps=ref + 1)
    shared = collate_pairs_shared_prompt(pairs, pad_id(tokenizer))
    assert shared["input_ids"].shape[0] == len(pairs)  # one row per pair: the prompt runs once
    h = _hidden(llama, shared, attention_mask=shared["attention_mask"])
    h_sel = h.flatten(0, 1)[shared["score_index"]]  # (2B, S, H): the state predicting each label
    one_row = fused_dpo_loss(h_sel, llama.lm_head.weight, shared["labels"], ref_chosen_logps=ref,
                             ref_rejected_logps=ref + 1)
    torch.testing.assert_close(one_row.chosen_logps, two_rows.chosen_logps, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(one_row.rejected_logps, two_rows.rejected_logps, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(one_row.loss, two_rows.loss, rtol=1e-5, atol=1e-6)
