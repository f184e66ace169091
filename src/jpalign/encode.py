"""Tokenise conversations into input ids and labels (supervised: assistant tokens and their EOS), pad batches.

The tokenizer is anything with `encode(text, add_special_tokens=False)` and `bos_token_id` / `eos_token_id` /
`pad_token_id` attributes (a transformers tokenizer works). Labels are aligned with input ids (labels[t] =
input_ids[t] where supervised, else -100); use `shift_labels` before a loss on logits.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

from jpalign.chunking import IGNORE_INDEX
from jpalign.templates import ChatTemplate, DataError, Segment


@dataclass
class Encoded:
    """One tokenised example; `prompt_length` tokens precede the last response (the truncation split point)."""

    input_ids: list[int]
    labels: list[int]
    prompt_length: int
    truncated: tuple[str, ...] = field(default=(), compare=False)  # "prompt" and/or "response" were cut

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass
class DropReport:
    """Counts of examples kept and dropped by reason (reasons are DataError.reason keys), and of kept examples
    whose prompt or response was truncated."""

    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    truncated: Counter = field(default_factory=Counter)

    def __str__(self) -> str:
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(self.dropped.items())) or "none"
        cut = ", ".join(f"{k}={v}" for k, v in sorted(self.truncated.items()))
        kept = f"kept {self.kept} (truncated: {cut})" if cut else f"kept {self.kept}"
        return f"{kept}, dropped {sum(self.dropped.values())} ({reasons})"


def special_ids(tokenizer) -> tuple[int | None, int]:
    """(bos id or None, eos id); a tokenizer without EOS cannot teach the model to stop, so it is an error."""
    eos = getattr(tokenizer, "eos_token_id", None)
    if eos is None:
        raise ValueError("the tokenizer has no eos_token_id: the model could never learn to stop")
    return getattr(tokenizer, "bos_token_id", None), eos


def pad_id(tokenizer) -> int:
    """The padding id: pad_token_id, else eos (safe here: labels are built before padding, see `collate`)."""
    pad = getattr(tokenizer, "pad_token_id", None)
    return pad if pad is not None else special_ids(tokenizer)[1]


def encode_segments(tokenizer, segments: list[Segment]) -> Encoded:
    """Encode each text piece without special tokens, insert BOS/EOS by id, label the supervised pieces."""
    bos, eos = special_ids(tokenizer)
    reserved = {bos, eos, getattr(tokenizer, "pad_token_id", None)} - {None}
    ids: list[int] = []
    labels: list[int] = []
    prompt_length = None
    for seg in segments:
        if seg.special is not None:
            piece = [bos] if seg.special == "bos" else [eos]
            if piece == [None]:
                continue  # a tokenizer without BOS: the template's BOS is dropped, never duplicated
        else:
            _check_unicode(seg.text)
            piece = list(tokenizer.encode(seg.text, add_special_tokens=False))
            if reserved.intersection(piece):
                raise DataError("special_token_in_content", f"text {seg.text[:40]!r} encodes to a BOS/EOS/pad id")
        if seg.response and prompt_length is None:
            prompt_length = len(ids)
        ids += piece
        labels += piece if seg.train else [IGNORE_INDEX] * len(piece)
    return Encoded(ids, labels, len(ids) if prompt_length is None else prompt_length)


def _check_unicode(text: str) -> None:
    """A lone surrogate (JSON allows escaped ones) cannot be encoded as UTF-8; tokenizers raise TypeError on it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise DataError("invalid_unicode", f"text {text[:40]!r} has {err.reason} at character {err.start}") from None


def truncate(example: Encoded, *, max_length: int | None, max_prompt_length: int | None = None,
             bos_id: int | None = None) -> Encoded:
    """Keep the end of the prompt (after a leading BOS) and the start of the response.

    The prompt is cut from the left to `max_prompt_length`, then the response from the right to fit `max_length`
    (a cut response loses its EOS: it was not finished). Raises DataError("prompt_too_long") when no response
    token would remain. The result's `truncated` names the parts that were cut.
    """
    if (max_length is not None and max_length < 2) or (max_prompt_length is not None and max_prompt_length < 1):
        raise ValueError(f"max_length must be >= 2 and max_prompt_length >= 1 (a prompt and a response token), got "
                         f"{max_length} and {max_prompt_length}")  # a setting error: not a per-example drop
    p = example.prompt_length
    ids, labels = example.input_ids, example.labels
    cut = list(example.truncated)
    if max_prompt_length is not None and p > max_prompt_length:
        head = 1 if bos_id is not None and ids[:1] == [bos_id] else 0
        keep = max_prompt_length - head
        if keep < 1:
            raise DataError("prompt_too_long", f"max_prompt_length={max_prompt_length} leaves no prompt token")
        ids = ids[:head] + ids[p - keep :]
        labels = labels[:head] + labels[p - keep :]
        p = max_prompt_length
        cut.append("prompt")
    if max_length is not None and len(ids) > max_length:
        if p >= max_length:
            raise DataError("prompt_too_long", f"prompt of {p} tokens leaves no room in max_length={max_length}")
        ids, labels = ids[:max_length], labels[:max_length]
        cut.append("response")
    return Encoded(ids, labels, p, tuple(dict.fromkeys(cut)))


def encode_chat(tokenizer, messages: list[dict], template: ChatTemplate, *, max_length: int | None = None,
                max_prompt_length: int | None = None, add_generation_prompt: bool = False) -> Encoded:
    """Render `messages` with `template`, tokenise, label assistant tokens + EOS, truncate. Raises DataError.

    With add_generation_prompt=True the conversation must end with a user turn and the result (no labels) is
    the exact id prefix the model saw in training, ready for generation.
    """
    segments = template.render(messages, add_generation_prompt=add_generation_prompt)
    example = encode_segments(tokenizer, segments)
    return truncate(example, max_length=max_length, max_prompt_length=max_prompt_length,
                    bos_id=special_ids(tokenizer)[0])


def encode_dataset(tokenizer, conversations: Iterable[list[dict]], template: ChatTemplate,
                   **kwargs) -> tuple[list[Encoded], DropReport]:
    """`encode_chat` over a dataset: bad examples are dropped and counted by reason, never silently mislabelled."""
    out, report = [], DropReport()
    for messages in conversations:
        try:
            out.append(encode_chat(tokenizer, messages, template, **kwargs))
            report.truncated.update(out[-1].truncated)
        except DataError as err:
            report.dropped[err.reason] += 1
    report.kept = len(out)
    return out, report


def collate(examples: list[Encoded], pad_token_id: int, *, pad_to: int | None = None) -> dict[str, torch.Tensor]:
    """Right-pad into input_ids, labels, attention_mask (B, T) and position_ids.

    Labels come from the examples, never from `input_ids != pad`, so a real EOS stays supervised even when
    pad == eos; padded positions get label -100 and attention 0.
    """
    if not examples:
        raise ValueError("no examples to collate (were they all dropped? see the DropReport)")
    width = max(pad_to or 0, max(len(e) for e in examples))
    ids = torch.full((len(examples), width), pad_token_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, e in enumerate(examples):
        ids[i, : len(e)] = torch.tensor(e.input_ids)
        labels[i, : len(e)] = torch.tensor(e.labels)
        mask[i, : len(e)] = 1
    position_ids = (mask.cumsum(1) - 1).clamp(min=0)
    return {"input_ids": ids, "labels": labels, "attention_mask": mask, "position_ids": position_ids}
