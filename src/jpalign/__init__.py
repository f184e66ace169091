"""jpalign: SFT, DPO, ORPO and SimPO losses and chat-data formatting for any causal LM (torch only)."""

from jpalign.fused_ce import fused_linear_cross_entropy, fused_linear_cross_entropy_reference
from jpalign.fused_logps import fused_token_logps, token_logps_reference
from jpalign.logps import sequence_logps

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "fused_linear_cross_entropy",
    "fused_linear_cross_entropy_reference",
    "fused_token_logps",
    "sequence_logps",
    "token_logps_reference",
]
