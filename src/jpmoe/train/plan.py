"""A pretraining run's plan without running it (`apps/pretrain.py --dry_run true`): the model built on the meta
device, tokens and steps from the mixture's declared budgets, compute, checkpoint and export sizes, memory per GPU
and the free disk it needs. No data is read: a missing mixture, shard or tokenizer is named, not an error.

Formulas (N = parameters, N_a = parameters one token uses, D = tokens, L layers, H hidden, s sequence length):
- training compute C = D * (6 N_a + 12 L H s) FLOPs (the 12 L H s term is attention's score and value matmuls);
  GPU-hours = C / (peak * MFU) / 3600, with the peak of an H100 SXM (989 TFLOP/s dense bf16) and an assumed MFU.
- checkpoint = 12 N bytes: fp32 weights (4) + AdamW's two fp32 moments (8); the DCP shards of all ranks together.
- HF export = 4 N bytes (fp32, as apps/pretrain.py writes it; 2 N in bf16 with `python -m jpmoe.hf to-hf --dtype bf16`).
- disk = (keep_checkpoints + 1) checkpoints (the newest is written beside the kept ones before the oldest goes) +
  the export.
- memory per GPU under FSDP2 full sharding: 16 N / world bytes (fp32 weights, grads, two moments) + the largest
  layer gathered in bf16 (2 N_layer * 2: this one and the prefetched next) + activations: 34 s b H bytes per layer
  (bf16, flash attention; Korthikanti et al., arXiv 2205.05198), or with activation checkpointing 2 s b H per
  layer plus one layer's 34 s b H for the recompute; a MoE layer adds the routed MLP activations
  (k * 3 * I * 2 bytes per token for the gate, up and product tensors).
"""

from __future__ import annotations

import math
import os
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import torch

from jpmoe.config import ModelConfig
from jpmoe.data.mixture import parse_mixture
from jpmoe.model import Transformer

H100_BF16_FLOPS = 989e12
# the apps/pretrain.py arguments a plan reads
PLAN_ARGS = ("model", "vocab_size", "seq_len", "micro_batch", "grad_accum", "max_steps", "mixture", "out_dir",
             "keep_checkpoints", "activation_checkpointing")
ASSUMED_MFU = 0.35  # a fair FSDP2 + bf16 figure at this scale; MoE runs nearer 0.25-0.3 without grouped GEMMs


@dataclass
class Plan:
    model: str
    params: int
    params_active: int
    world_size: int
    global_batch: int  # sequences per optimizer step
    seq_len: int
    steps: int | None
    tokens: int | None
    stages: list[tuple[str, int]]
    flops: float | None
    gpu_hours: float | None
    checkpoint_bytes: int
    export_bytes: int
    disk_needed_bytes: int
    disk_free_bytes: int | None
    memory_per_gpu_bytes: int
    unresolved: list[str] = field(default_factory=list)


def meta_model_params(config: ModelConfig) -> int:
    """Build the model on the meta device (no memory) and count its parameters: the config really builds."""
    with torch.device("meta"):
        model = Transformer(config)
    return sum(p.numel() for p in model.parameters())


def mixture_budgets(path: Path) -> tuple[list[tuple[str, int]], str | None]:
    """([(stage name, declared tokens)], why the shards cannot be opened or None) from a mixture TOML. The mixture
    is validated as pretraining validates it (a bad weight is an error); only missing shards are tolerated."""
    with path.open("rb") as f:
        spec = tomllib.load(f)
    try:
        mixture = parse_mixture(spec, base_dir=path.parent, where=str(path))
    except FileNotFoundError as e:  # raised after every stage was validated: the shards are not there (yet)
        return [(s["name"], int(s["tokens"])) for s in spec["stages"]], str(e)
    return [(s.name, s.tokens) for s in mixture.stages], None


def free_disk(path: Path) -> int | None:
    """Free bytes on the file system that holds path (its nearest existing parent)."""
    for p in [path, *path.parents]:
        if p.exists():
            return shutil.disk_usage(p).free
    return None


def memory_per_gpu(config: ModelConfig, params: int, *, world_size: int, micro_batch: int, seq_len: int,
                   activation_checkpointing: bool) -> int:
    H, L = config.hidden_size, config.num_layers
    layer_params = (params - config.vocab_size * H * (1 if config.tie_embeddings else 2)) / L
    tokens = micro_batch * seq_len
    per_layer_act = 34 * tokens * H
    if config.is_moe:
        per_layer_act += tokens * config.experts_per_token * 3 * config.intermediate_size * 2
    acts = (2 * tokens * H * L + per_layer_act) if activation_checkpointing else per_layer_act * L
    logits_chunk = 2 * tokens * min(config.vocab_size, 8192) * 4  # the chunked linear cross-entropy's fp32 block
    return int(16 * params / world_size + 2 * 2 * layer_params + acts + logits_chunk)


def plan_run(*, model: str, vocab_size: int, seq_len: int, micro_batch: int, grad_accum: int, max_steps: int,
             mixture: str, out_dir: str, keep_checkpoints: int, activation_checkpointing: bool,
             world_size: int | None = None, mfu: float = ASSUMED_MFU) -> Plan:
    """The plan for these apps/pretrain.py arguments; world_size defaults to $WORLD_SIZE (torchrun sets it) or 1."""
    unresolved = []
    world = world_size or int(os.environ.get("WORLD_SIZE", "1"))
    base = ModelConfig.preset(model)
    if not vocab_size:
        unresolved.append(f"vocab_size: the tokenizer is not read in a dry run; the preset's {base.vocab_size} is used")
    config = ModelConfig.preset(model, vocab_size=vocab_size or base.vocab_size,
                                max_seq_len=max(base.max_seq_len, seq_len))
    params = meta_model_params(config)
    if params != config.num_params():
        raise AssertionError(f"{model}: the built model has {params} parameters, ModelConfig.num_params() says "
                             f"{config.num_params()}")
    active = config.num_params(active=True)
    global_batch = micro_batch * grad_accum * world
    step_tokens = global_batch * seq_len
    stages: list[tuple[str, int]] = []
    if Path(mixture).is_file():
        stages, missing = mixture_budgets(Path(mixture))
        if missing:
            unresolved.append(f"shards: {missing} (budgets read from the mixture file)")
    else:
        unresolved.append(f"mixture {mixture}: no such file, so no stage budgets")
    if max_steps:
        steps = max_steps
    elif stages:
        steps = math.ceil(sum(t for _, t in stages) / step_tokens)
    else:
        steps = None
        unresolved.append("steps and tokens: --max_steps is 0 and the mixture is missing")
    tokens = steps * step_tokens if steps else None
    flops = tokens * (6 * active + 12 * config.num_layers * config.hidden_size * seq_len) if tokens else None
    ckpt, export = 12 * params, 4 * params
    return Plan(model=model, params=params, params_active=active, world_size=world, global_batch=global_batch,
                seq_len=seq_len, steps=steps, tokens=tokens, stages=stages, flops=flops,
                gpu_hours=flops / (H100_BF16_FLOPS * mfu) / 3600 if flops else None, checkpoint_bytes=ckpt,
                export_bytes=export, disk_needed_bytes=(keep_checkpoints + 1) * ckpt + export,
                disk_free_bytes=free_disk(Path(out_dir)),
                memory_per_gpu_bytes=memory_per_gpu(config, params, world_size=world, micro_batch=micro_batch,
                                                    seq_len=seq_len,
                                                    activation_checkpointing=activation_checkpointing),
                unresolved=unresolved)


def _gb(n: float) -> str:
    return f"{n / 1e9:,.1f} GB"


def format_plan(plan: Plan, *, mfu: float = ASSUMED_MFU) -> str:
    lines = [f"dry run: {plan.model}, {plan.params / 1e9:.3f}B parameters ({plan.params_active / 1e9:.3f}B active "
             "per token), built on the meta device",
             f"  world size {plan.world_size}, global batch {plan.global_batch} x {plan.seq_len} = "
             f"{plan.global_batch * plan.seq_len:,} tokens per step"]
    for name, tokens in plan.stages:
        lines.append(f"  stage {name}: {tokens:,} tokens")
    if plan.steps:
        lines.append(f"  steps {plan.steps:,}, tokens {plan.tokens:,} ({plan.tokens / 1e9:,.1f}B)")
        lines.append(f"  compute {plan.flops:.3g} FLOPs = {plan.gpu_hours:,.0f} H100 GPU-hours at MFU {mfu:.2f} "
                     f"({plan.gpu_hours / plan.world_size / 24:,.1f} days on {plan.world_size} GPUs)")
    free = "unknown" if plan.disk_free_bytes is None else _gb(plan.disk_free_bytes)
    enough = "" if plan.disk_free_bytes is None else (
        " (enough)" if plan.disk_free_bytes >= plan.disk_needed_bytes else " (NOT enough: free space first)")
    lines += [f"  checkpoint {_gb(plan.checkpoint_bytes)} (fp32 weights + AdamW moments), HF export "
              f"{_gb(plan.export_bytes)} (fp32)",
              f"  disk needed {_gb(plan.disk_needed_bytes)}; free at the output directory: {free}{enough}",
              f"  memory per GPU ~{_gb(plan.memory_per_gpu_bytes)} (FSDP2 sharded states + activations)"]
    lines += [f"  unresolved: {u}" for u in plan.unresolved]
    return "\n".join(lines)
