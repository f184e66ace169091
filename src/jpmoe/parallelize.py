"""Parallelism applied to a built single-device model from outside (torchtitan style): activation
checkpointing, torch.compile and FSDP2, in that order. The model code knows nothing of it."""

from __future__ import annotations

import functools

import torch
from torch import nn
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
from torch.utils.checkpoint import checkpoint

from jpmoe.model import Transformer


def checkpoint_block(block: nn.Module) -> None:
    """Recompute the block's activations in backward; state-dict keys stay unchanged (no wrapper module)."""
    forward = block.forward

    @functools.wraps(forward)
    def checkpointed(*args, **kwargs):
        return checkpoint(forward, *args, use_reentrant=False, **kwargs)

    block.forward = checkpointed


def parallelize(model: Transformer, mesh: DeviceMesh | None, *, activation_checkpointing: bool = False,
                compile: bool = False, param_dtype: torch.dtype | None = None,
                reduce_dtype: torch.dtype | None = torch.float32, reshard_after_forward: bool = True) -> Transformer:
    """Shard `model` in place with FSDP2 over `mesh` (1-D data-parallel mesh; None: no sharding).

    `fully_shard` is applied to each block, then to the root (embeddings, final norm, lm_head), so each block's
    parameters are gathered only while it runs. `param_dtype=torch.bfloat16` computes in bf16 with fp32 master
    weights; gradients are reduced in `reduce_dtype`.
    """
    for block in model.layers:
        if activation_checkpointing:
            checkpoint_block(block)
        if compile:
            block.compile()
    if mesh is None:
        return model
    policy = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=reduce_dtype)
    n = len(model.layers)
    for i, block in enumerate(model.layers):
        # the last block is gathered again at once by the root's backward, so keep it unsharded after forward
        fully_shard(block, mesh=mesh, mp_policy=policy, reshard_after_forward=reshard_after_forward and i < n - 1)
    fully_shard(model, mesh=mesh, mp_policy=policy, reshard_after_forward=reshard_after_forward)
    return model
