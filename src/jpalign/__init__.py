"""jpalign: SFT, DPO, ORPO and SimPO losses and chat-data formatting for any causal LM (torch only).

The names below are imported on first use (PEP 562), so `import jpalign.eval` (the torch-free evaluation
metrics, prompts and report) does not pull in torch; `from jpalign import dpo_loss` works as before.
"""

import importlib

_EXPORTS = {
    **dict.fromkeys((
        "DropReport", "Encoded", "collate", "encode_chat", "encode_dataset", "pad_id", "truncate",
    ), "jpalign.encode"),
    **dict.fromkeys(("fused_linear_cross_entropy", "fused_linear_cross_entropy_reference"), "jpalign.fused_ce"),
    **dict.fromkeys(("fused_token_logps", "token_logps_reference"), "jpalign.fused_logps"),
    **dict.fromkeys((
        "PreferenceOutput", "fused_dpo_loss", "fused_orpo_loss", "fused_sequence_logps", "fused_sft_loss",
        "fused_simpo_loss",
    ), "jpalign.fused_losses"),
    **dict.fromkeys(("sequence_logps",), "jpalign.logps"),
    **dict.fromkeys(("PackedRow", "collate_packed", "document_attention_mask", "pack_examples"), "jpalign.packing"),
    **dict.fromkeys((
        "EncodedPair", "collate_pairs", "collate_pairs_shared_prompt", "encode_pair", "encode_pairs",
    ), "jpalign.pairs"),
    **dict.fromkeys((
        "DPO_LOSS_TYPES", "OrpoOutput", "dpo_loss", "log1mexp", "orpo_loss", "orpo_odds_ratio_loss", "simpo_loss",
        "uses_average_logps",
    ), "jpalign.preference"),
    **dict.fromkeys(("ReferenceLogps", "cached_reference_logps", "precompute_reference_logps"), "jpalign.reference"),
    **dict.fromkeys(("sft_loss", "shift_labels"), "jpalign.sft"),
    **dict.fromkeys((
        "CHAT_TEMPLATES", "INSTRUCTION_JA", "INSTRUCTION_PREAMBLE", "LLAMA2_JA", "ChatTemplate", "DataError",
        "instruction_messages",
    ), "jpalign.templates"),
}

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


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:  # a submodule, e.g. jpalign.templates after a bare `import jpalign`
        try:
            return importlib.import_module(f"jpalign.{name}")
        except ModuleNotFoundError:
            raise AttributeError(f"module 'jpalign' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
