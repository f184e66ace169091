"""Train the debug model a few steps; run by tests/moe/test_parallelize.py.

`python tests/moe/fsdp_worker.py OUT` runs on one process: each step splits the global batch into the two
halves the ranks would get and accumulates their gradients (loss = mean of the halves' losses, as data parallel
computes it; the MoE auxiliary loss is per rank, so it is per half here too).
`torchrun --nproc-per-node 2 tests/moe/fsdp_worker.py OUT` runs the same with FSDP2 on gloo (one half per rank),
with activation checkpointing. Writes OUT/losses.json and OUT/model.safetensors (full, unsharded weights).
"""

import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors.torch import save_file

from jpmoe import ModelConfig, Transformer
from jpmoe.parallelize import parallelize

STEPS, GLOBAL_BATCH, SEQ = 3, 4, 12


def loss_fn(model, ids):
    out = model(ids[:, :-1])
    ce = F.cross_entropy(out.logits.flatten(0, 1).float(), ids[:, 1:].flatten())
    return ce + out.aux_loss


def main(out: Path) -> None:
    distributed = "RANK" in os.environ
    torch.manual_seed(0)
    cfg = ModelConfig.preset("debug", vocab_size=128, hidden_size=32, intermediate_size=48, max_seq_len=32,
                             aux_loss_coef=0.1, z_loss_coef=0.01, init_std=0.1)
    model = Transformer(cfg)
    rank, world = 0, 1
    if distributed:
        dist.init_process_group("gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        mesh = dist.device_mesh.init_device_mesh("cpu", (world,))
        parallelize(model, mesh, activation_checkpointing=True)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    data = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(STEPS):
        ids = torch.randint(0, cfg.vocab_size, (GLOBAL_BATCH, SEQ), generator=data)
        halves = ids.chunk(2)
        if distributed:
            loss = loss_fn(model, halves[rank])
            loss.backward()
            reported = loss.detach().clone()
            dist.all_reduce(reported)
            reported /= world
        else:
            reported = torch.zeros(())
            for half in halves:
                loss = loss_fn(model, half) / 2
                loss.backward()
                reported += loss.detach()
        opt.step()
        opt.zero_grad()
        losses.append(reported.item())
    sd = {k: (v.full_tensor() if hasattr(v, "full_tensor") else v).detach().contiguous()
          for k, v in model.state_dict().items()}
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        save_file(sd, str(out / "model.safetensors"))
        (out / "losses.json").write_text(json.dumps(losses))
    if distributed:  # both ranks done before either tears gloo down (else ~10% of runs abort at exit)
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
