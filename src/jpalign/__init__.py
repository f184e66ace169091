"""jpalign: SFT, DPO, ORPO and SimPO losses and chat-data formatting for any causal LM (torch only)."""

from jpalign.logps import sequence_logps

__version__ = "0.1.0"

__all__ = ["__version__", "sequence_logps"]
