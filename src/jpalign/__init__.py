"""jpalign: SFT, DPO, ORPO and SimPO losses and chat-data formatting for any causal LM (torch only)."""

from jpalign.encode import DropReport, Encoded, collate, encode_chat, encode_dataset, pad_id, truncate
from jpalign.fused_ce import fused_linear_cross_entropy, fused_linear_cross_entropy_reference
from jpalign.fused_logps import fused_token_logps, token_logps_reference
from jpalign.fused_losses import (
    PreferenceOutput,
    fused_dpo_loss,
    fused_orpo_loss,
    fused_sequence_logps,
    fused_sft_loss,
    fused_simpo_loss,
)
from jpalign.logps import sequence_logps
from jpalign.packing import PackedRow, collate_packed, document_attention_mask, pack_examples
from jpalign.pairs import EncodedPair, collate_pairs, collate_pairs_shared_prompt, encode_pair, encode_pairs
from jpalign.preference import (
    DPO_LOSS_TYPES,
    OrpoOutput,
    dpo_loss,
    log1mexp,
    orpo_loss,
    orpo_odds_ratio_loss,
    simpo_loss,
    uses_average_logps,
)
from jpalign.reference import ReferenceLogps, cached_reference_logps, precompute_reference_logps
from jpalign.sft import sft_loss, shift_labels
from jpalign.templates import (
    CHAT_TEMPLATES,
    INSTRUCTION_JA,
    INSTRUCTION_PREAMBLE,
    LLAMA2_JA,
    ChatTemplate,
    DataError,
    instruction_messages,
)

__version__ = "0.1.0"

__all__ = [
    "CHAT_TEMPLATES",
    "ChatTemplate",
    "DPO_LOSS_TYPES",
    "DataError",
    "DropReport",
    "Encoded",
    "EncodedPair",
    "INSTRUCTION_JA",
    "INSTRUCTION_PREAMBLE",
    "LLAMA2_JA",
    "OrpoOutput",
    "PackedRow",
    "PreferenceOutput",
    "ReferenceLogps",
    "__version__",
    "cached_reference_logps",
    "collate",
    "collate_packed",
    "collate_pairs",
    "collate_pairs_shared_prompt",
    "document_attention_mask",
    "dpo_loss",
    "encode_chat",
    "encode_dataset",
    "encode_pair",
    "encode_pairs",
    "fused_dpo_loss",
    "fused_linear_cross_entropy",
    "fused_linear_cross_entropy_reference",
    "fused_orpo_loss",
    "fused_sequence_logps",
    "fused_sft_loss",
    "fused_simpo_loss",
    "fused_token_logps",
    "instruction_messages",
    "log1mexp",
    "orpo_loss",
    "orpo_odds_ratio_loss",
    "pack_examples",
    "pad_id",
    "precompute_reference_logps",
    "sequence_logps",
    "sft_loss",
    "shift_labels",
    "simpo_loss",
    "token_logps_reference",
    "truncate",
    "uses_average_logps",
]
