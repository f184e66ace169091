"""Preference pairs (prompt, chosen, rejected): the prompt is encoded once and shared by both responses.

`encode_pair` renders the prompt with the template's generation prompt (the exact prefix used at inference),
encodes it once, encodes each response as content + EOS, and truncates both against the same prompt.
`collate_pairs` builds TRL's layout: rows [0, B) prompt + chosen, rows [B, 2B) prompt + rejected.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

from jpalign.chunking import IGNORE_INDEX
from jpalign.encode import DropReport, Encoded, collate, encode_segments, special_ids, truncate
from jpalign.templates import ChatTemplate, DataError, Segment


@dataclass
class EncodedPair:
    prompt_ids: list[int]
    chosen_ids: list[int]  # response tokens, EOS included unless truncated
    rejected_ids: list[int]
    truncated: tuple[str, ...] = field(default=(), compare=False)  # "prompt" and/or "response" were cut

    def rows(self) -> tuple[Encoded, Encoded]:
        """(prompt + chosen, prompt + rejected), labels on the responses only."""
        p = len(self.prompt_ids)
        return tuple(
            Encoded(self.prompt_ids + r, [IGNORE_INDEX] * p + r, p) for r in (self.chosen_ids, self.rejected_ids)
        )


def _response(tokenizer, text: object, name: str) -> list[int]:
    if not isinstance(text, str):
        raise DataError("non_string_content", f"{name} is {type(text).__name__}, not str")
    if not text.strip():
        raise DataError("empty_response", f"{name} is empty")
    segments = [Segment(text, train=True, response=True), Segment(special="eos", train=True, response=True)]
    return encode_segments(tokenizer, segments).input_ids


def encode_pair(tokenizer, prompt_messages: list[dict], chosen: str, rejected: str, template: ChatTemplate, *,
                max_length: int | None = None, max_prompt_length: int | None = None) -> EncodedPair:
    """Encode one preference pair; raises DataError (identical_responses, empty_response, prompt_too_long, ...)."""
    if isinstance(chosen, str) and isinstance(rejected, str) and chosen.strip() == rejected.strip():
        raise DataError("identical_responses", "chosen and rejected are the same text: no preference to learn")
    prompt = encode_segments(tokenizer, template.render(prompt_messages, add_generation_prompt=True))
    responses = [_response(tokenizer, chosen, "chosen"), _response(tokenizer, rejected, "rejected")]
    bos = special_ids(tokenizer)[0]
    cut = []
    for r in responses:  # same prompt truncation for both (it depends on the prompt only)
        e = Encoded(prompt.input_ids + r, [IGNORE_INDEX] * len(prompt) + r, len(prompt))
        cut.append(truncate(e, max_length=max_length, max_prompt_length=max_prompt_length, bos_id=bos))
    p = cut[0].prompt_length
    if cut[0].input_ids[p:] == cut[1].input_ids[p:]:
        raise DataError("identical_responses", f"chosen and rejected are the same tokens after truncation to "
                        f"max_length={max_length}: no preference to learn")
    parts = tuple(dict.fromkeys(cut[0].truncated + cut[1].truncated))
    return EncodedPair(cut[0].input_ids[:p], cut[0].input_ids[p:], cut[1].input_ids[p:], parts)


def encode_pairs(tokenizer, records: Iterable[dict], template: ChatTemplate,
                 **kwargs) -> tuple[list[EncodedPair], DropReport]:
    """encode_pair over records {"prompt": str or messages, "chosen": str, "rejected": str}; drops counted."""
    out, report = [], DropReport()
    for rec in records:
        try:
            prompt = rec["prompt"]
            messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
            out.append(encode_pair(tokenizer, messages, rec["chosen"], rec["rejected"], template, **kwargs))
            report.truncated.update(out[-1].truncated)
        except DataError as err:
            report.dropped[err.reason] += 1
        except (KeyError, TypeError):
            report.dropped["malformed_record"] += 1
    report.kept = len(out)
    return out, report


def collate_pairs(pairs: list[EncodedPair], pad_token_id: int) -> dict[str, torch.Tensor]:
    """(2B, T) input_ids, labels, attention_mask, position_ids, chosen rows first; nll_labels (B, T) for ORPO.

    nll_labels are the chosen rows' ids over prompt + response (padding -100): ORPO's prompt + response NLL.
    """
    rows = [r for pair in pairs for r in pair.rows()]
    batch = collate(rows[0::2] + rows[1::2], pad_token_id)
    b = len(pairs)
    batch["nll_labels"] = batch["input_ids"][:b].masked_fill(batch["attention_mask"][:b] == 0, IGNORE_INDEX)
    return batch


def collate_pairs_shared_prompt(pairs: list[EncodedPair], pad_token_id: int) -> dict[str, torch.Tensor]:
    """One row per pair, [prompt | chosen | rejected | pad]: the model runs the prompt once for both responses.

    Returns input_ids and position_ids (B, L) (the rejected response continues the prompt's positions, as if the
    chosen one were absent), an additive `attention_mask` (B, 1, L, L) in which each response sees the prompt and
    itself only, and `score_index`, `labels` (2B, S): `hidden.flatten(0, 1)[score_index]` gives, for every label,
    the hidden state that predicts it (already shifted), chosen rows first, ready for the fused losses.
    """
    if not pairs:
        raise ValueError("no examples to collate (were they all dropped? see the DropReport)")
    width = max(len(p.prompt_ids) + len(p.chosen_ids) + len(p.rejected_ids) for p in pairs)
    n_score = max(max(len(p.chosen_ids), len(p.rejected_ids)) for p in pairs)
    b = len(pairs)
    ids = torch.full((b, width), pad_token_id, dtype=torch.long)
    pos = torch.zeros((b, width), dtype=torch.long)
    segment = torch.full((b, width), -1, dtype=torch.long)  # 0 prompt, 1 chosen, 2 rejected
    score_index = torch.zeros((2 * b, n_score), dtype=torch.long)
    labels = torch.full((2 * b, n_score), IGNORE_INDEX, dtype=torch.long)
    for i, pair in enumerate(pairs):
        p, c, r = len(pair.prompt_ids), len(pair.chosen_ids), len(pair.rejected_ids)
        ids[i, : p + c + r] = torch.tensor(pair.prompt_ids + pair.chosen_ids + pair.rejected_ids)
        pos[i, : p + c + r] = torch.cat([torch.arange(p + c), torch.arange(p, p + r)])
        segment[i, :p], segment[i, p : p + c], segment[i, p + c : p + c + r] = 0, 1, 2
        # response token j is predicted by the prompt's last token (j = 0) or by response token j - 1
        for row, start, resp in ((i, p, pair.chosen_ids), (b + i, p + c, pair.rejected_ids)):
            n = len(resp)
            score_index[row, :n] = i * width + torch.cat([torch.tensor([p - 1]), start + torch.arange(n - 1)])
            labels[row, :n] = torch.tensor(resp)
    return {"input_ids": ids, "position_ids": pos, "attention_mask": _shared_prompt_mask(segment),
            "score_index": score_index, "labels": labels}


def _shared_prompt_mask(segment: torch.Tensor) -> torch.Tensor:
    """Additive (B, 1, L, L): causal, a response attends the prompt and its own tokens, padding only itself."""
    t = segment.shape[1]
    q, k = segment.unsqueeze(-1), segment.unsqueeze(-2)  # (B, L, 1), (B, 1, L)
    causal = torch.ones(t, t, dtype=torch.bool).tril()
    allowed = causal & (q >= 0) & ((k == 0) | (k == q))
    allowed |= torch.eye(t, dtype=torch.bool) & (q < 0)
    mask = torch.zeros(allowed.shape, dtype=torch.float32)
    return mask.masked_fill_(~allowed, torch.finfo(torch.float32).min).unsqueeze(1)
