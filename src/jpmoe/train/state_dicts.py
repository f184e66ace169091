"""Wrapping a model for the launch at hand, and gathering a full state dict back for export."""

from __future__ import annotations

import torch
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
from torch.distributed.device_mesh import init_device_mesh

from jpmoe.parallelize import parallelize
from jpmoe.train.dist import DistInfo


def wrap_model(model: torch.nn.Module, dist: DistInfo, *, bf16: bool = False,
               activation_checkpointing: bool = False, compile: bool = False) -> torch.nn.Module:
    """FSDP2 over all ranks when launched distributed (bf16 compute with fp32 master weights when asked);
    the plain model (still with checkpointing/compile when asked) on one process."""
    mesh = init_device_mesh(dist.device.type, (dist.world_size,)) if dist.distributed else None
    model = parallelize(model, mesh, activation_checkpointing=activation_checkpointing, compile=compile,
                        param_dtype=torch.bfloat16 if bf16 and mesh is not None else None)
    if mesh is not None:
        # The loss uses lm_head.weight after the forward (chunked linear CE on the hidden states), so the root's
        # parameters must stay gathered until the backward; the blocks still reshard after their forward.
        model.set_reshard_after_forward(False, recurse=False)
    return model


def full_model_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Unsharded CPU state dict (collective under FSDP2: every rank calls it; rank 0 gets the tensors)."""
    opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_model_state_dict(model, options=opts)
