"""Packing several tokenised examples into fixed-length rows without cross-example attention.

Each packed row carries position ids that restart at 0 for every example and segment ids (the example's index
within the row, -1 on padding). Give the model either the block-diagonal causal `document_attention_mask`
(eager/SDPA attention) or `cu_seqlens` (varlen FlashAttention); shift labels with
`shift_labels(labels, position_ids)` so no example predicts the next one's first token.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from jpalign.chunking import IGNORE_INDEX
from jpalign.encode import DropReport, Encoded


@dataclass
class PackedRow:
    examples: list[Encoded] = field(default_factory=list)

    def __len__(self) -> int:
        return sum(len(e) for e in self.examples)


def pack_examples(examples: list[Encoded], max_length: int, *, strategy: str = "bfd") -> tuple[list[PackedRow],
                                                                                                 DropReport]:
    """Group examples into rows of at most `max_length` tokens; an example longer than that is dropped, counted.

    strategy "bfd": best-fit decreasing (longest first, each into the fullest row it fits; few padded tokens);
    "sequential": in order, a new row when the next example does not fit (keeps the data order).
    """
    if strategy not in ("bfd", "sequential"):
        raise ValueError(f"strategy must be 'bfd' or 'sequential', got {strategy!r}")
    report = DropReport()
    fitting = []
    for e in examples:
        if len(e) > max_length:
            report.dropped["longer_than_pack"] += 1
        elif len(e) == 0:
            report.dropped["empty"] += 1
        else:
            fitting.append(e)
    rows: list[PackedRow] = []
    if strategy == "sequential":
        for e in fitting:
            if not rows or len(rows[-1]) + len(e) > max_length:
                rows.append(PackedRow())
            rows[-1].examples.append(e)
    else:
        for e in sorted(fitting, key=len, reverse=True):
            best = min((r for r in rows if len(r) + len(e) <= max_length), key=lambda r: max_length - len(r),
                       default=None)
            if best is None:
                best = PackedRow()
                rows.append(best)
            best.examples.append(e)
    report.kept = len(fitting)
    return rows, report


def collate_packed(rows: list[PackedRow], pad_token_id: int, *, pad_to: int | None = None) -> dict[str, torch.Tensor]:
    """Packed rows -> input_ids, labels, position_ids, segment_ids (R, T), and cu_seqlens (int32) for varlen.

    cu_seqlens indexes the flattened (R * T) tokens: every example is one sequence and each row's padding one
    more, so the varlen kernels never let a token attend outside its own example.
    """
    if not rows:
        raise ValueError("no examples to collate (were they all dropped? see the DropReport)")
    width = max(pad_to or 0, max(len(r) for r in rows))
    ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    position_ids = torch.zeros((len(rows), width), dtype=torch.long)
    segment_ids = torch.full((len(rows), width), -1, dtype=torch.long)
    bounds = [0]
    for i, row in enumerate(rows):
        start = 0
        for j, e in enumerate(row.examples):
            end = start + len(e)
            ids[i, start:end] = torch.tensor(e.input_ids)
            labels[i, start:end] = torch.tensor(e.labels)
            position_ids[i, start:end] = torch.arange(len(e))
            segment_ids[i, start:end] = j
            bounds.append(i * width + end)
            start = end
        if start < width:
            bounds.append((i + 1) * width)
    return {
        "input_ids": ids,
        "labels": labels,
        "position_ids": position_ids,
        "segment_ids": segment_ids,
        "cu_seqlens": torch.tensor(bounds, dtype=torch.int32),
    }


def document_attention_mask(segment_ids: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Additive causal block-diagonal mask (R, 1, T, T): 0 where query and key share an example, else dtype's min.

    Padding (segment -1) attends only to itself, which keeps softmax rows finite. Pass it as the 4D
    `attention_mask` of a transformers model (eager and SDPA both take an additive float mask as is).
    """
    t = segment_ids.shape[-1]
    causal = torch.ones(t, t, dtype=torch.bool, device=segment_ids.device).tril()
    same = segment_ids.unsqueeze(-1) == segment_ids.unsqueeze(-2)  # (R, T, T)
    pad_self = torch.eye(t, dtype=torch.bool, device=segment_ids.device) & (segment_ids < 0).unsqueeze(-1)
    allowed = (causal & same & (segment_ids >= 0).unsqueeze(-1)) | pad_self
    mask = torch.zeros(allowed.shape, dtype=dtype, device=segment_ids.device)
    return mask.masked_fill_(~allowed, torch.finfo(dtype).min).unsqueeze(1)
