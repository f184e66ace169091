"""jpmoe: a Llama-architecture Mixture-of-Experts decoder, its Triton kernels, HF conversion and training runtime."""

from jpmoe.config import PRESETS, ModelConfig
from jpmoe.model import ModelOutput, Transformer

__version__ = "0.1.0"

__all__ = ["PRESETS", "ModelConfig", "ModelOutput", "Transformer", "__version__"]
