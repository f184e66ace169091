"""Hot-path ops of the model, one op per file.

Each file holds `<op>_reference` (pure torch: the specification, the test oracle and the CPU fallback), its Triton
kernels, launchers, autograd Function and the public `<op>` entry (e.g. `jpmoe.kernels.moe_mlp.moe_mlp`) that runs
Triton on CUDA or under TRITON_INTERPRET=1 and the reference otherwise. The model picks the path with
`ModelConfig.kernels` through `jpmoe.kernels.dispatch` ("torch" calls the references, "triton" the entries).
Only the references are re-exported here: a package attribute named like a submodule would shadow it.
"""

from jpmoe.kernels.moe_align import moe_align_reference
from jpmoe.kernels.moe_mlp import moe_mlp_reference
from jpmoe.kernels.rmsnorm import rms_norm_reference
from jpmoe.kernels.rotary import rotary_reference
from jpmoe.kernels.routing import route_reference
from jpmoe.kernels.swiglu import swiglu_reference

__all__ = ["moe_align_reference", "moe_mlp_reference", "rms_norm_reference", "rotary_reference", "route_reference",
           "swiglu_reference"]
