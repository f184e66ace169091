"""Hot-path ops of the model, one op per file.

Each file holds `<op>_reference` (pure torch: the specification and the test oracle), its Triton kernels,
launchers, autograd Function, `<op>_triton` (the Triton path, no choice made) and the standalone `<op>` entry (e.g.
`jpmoe.kernels.moe_mlp.moe_mlp`: Triton on CUDA or under TRITON_INTERPRET=1, the reference otherwise). The expert
MLP has a third implementation, `moe_mlp_torch` (moe_mlp_torch.py with its layout and workspace), tuned for CPU.
The model does not use the standalone entries: `jpmoe.kernels.dispatch` resolves `ModelConfig.kernels` once when
the model is built and the modules call that path's table of ops.
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
