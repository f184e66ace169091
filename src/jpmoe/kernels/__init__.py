"""Hot-path ops of the model, one op per file.

Each file holds `<op>_reference` (pure torch: the specification, the test oracle and the CPU fallback) and,
when its Triton kernels exist, the public `<op>` entry that runs them on CUDA or under TRITON_INTERPRET=1.
The model picks the path with `ModelConfig.kernels` ("torch" calls the references).
"""

from jpmoe.kernels.moe_mlp import moe_mlp_reference
from jpmoe.kernels.rmsnorm import rms_norm_reference
from jpmoe.kernels.rotary import rotary_reference
from jpmoe.kernels.routing import route_reference
from jpmoe.kernels.swiglu import swiglu_reference

__all__ = ["moe_mlp_reference", "rms_norm_reference", "rotary_reference", "route_reference", "swiglu_reference"]
