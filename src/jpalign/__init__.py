"""jpalign: SFT, DPO, ORPO and SimPO losses and chat-data formatting for any causal LM (torch only)."""

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
from jpalign.sft import sft_loss, shift_labels

__version__ = "0.1.0"

__all__ = [
    "DPO_LOSS_TYPES",
    "OrpoOutput",
    "PreferenceOutput",
    "__version__",
    "dpo_loss",
    "fused_dpo_loss",
    "fused_linear_cross_entropy",
    "fused_linear_cross_entropy_reference",
    "fused_orpo_loss",
    "fused_sequence_logps",
    "fused_sft_loss",
    "fused_simpo_loss",
    "fused_token_logps",
    "log1mexp",
    "orpo_loss",
    "orpo_odds_ratio_loss",
    "sequence_logps",
    "sft_loss",
    "shift_labels",
    "simpo_loss",
    "token_logps_reference",
    "uses_average_logps",
]
