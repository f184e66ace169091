"""Pretrain a jpmoe model on a staged token mixture; resumes from the latest checkpoint; exports to Hugging Face.

One device (CPU or one GPU):
    python apps/pretrain.py --config apps/configs/pretrain_demo.toml
Continued pretraining from a Hugging Face Llama/Mixtral directory (its tokenizer, or one extending it):
    python apps/pretrain.py --init-from path/to/llama --tokenizer path/to/llama --mixture runs/ja/mixture.toml
One node, 8 GPUs, or 2 nodes x 8 GPUs (run on each node; FSDP2 over all ranks, NCCL):
    torchrun --nproc-per-node 8 apps/pretrain.py --config apps/configs/pretrain_moe_2b.toml
    torchrun --nnodes 2 --nproc-per-node 8 --node-rank $NODE_RANK --rdzv-backend c10d \
        --rdzv-endpoint $MASTER_ADDR:29500 --rdzv-id jpmoe-2b \
        apps/pretrain.py --config apps/configs/pretrain_moe_2b.toml
The plan without running (tokens, steps, GPU-hours, checkpoint sizes, free disk; WORLD_SIZE as torchrun sets it):
    WORLD_SIZE=16 python apps/pretrain.py --config apps/configs/pretrain_2b_moe_200b.toml --dry_run true
accelerate (it sets the same RANK/WORLD_SIZE/LOCAL_RANK environment):
    accelerate launch --num_processes 8 apps/pretrain.py --config apps/configs/pretrain_moe_2b.toml

Stages switch at exact token budgets (the mixture TOML); a run killed at any point restarts with the same
command and continues bit-identically on CPU from the last complete checkpoint.
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from transformers import AutoTokenizer

from jpalign import fused_linear_cross_entropy
from jpmoe.config import ModelConfig
from jpmoe.data import MixtureStream, load_mixture
from jpmoe.hf.convert import save_hf
from jpmoe.kernels.dispatch import resolve_kernels
from jpmoe.model import Transformer
from jpmoe.tokenizer import tokenizer_fingerprint
from jpmoe.train import (
    CheckpointManager,
    ConfigMismatchError,
    DiskFullError,
    Monitor,
    SpikeDetector,
    TrainState,
    build_optimizer,
    build_scheduler,
    expert_load_metrics,
    greedy_continuations,
    parse_args,
    setup_distributed,
    teardown_distributed,
    train_step,
)
from jpmoe.train.disk import stops_when_disk_full
from jpmoe.train.init_from import init_from_pretrained
from jpmoe.train.monitor import SAMPLE_PROMPTS, peak_flops
from jpmoe.train.plan import PLAN_ARGS, format_plan, plan_run
from jpmoe.train.state_dicts import full_model_state_dict, wrap_model


@dataclass
class Args:
    config: str = ""  # TOML file with any of these keys
    model: str = "debug"  # ModelConfig preset (ignored with init_from)
    init_from: str = ""  # continued pretraining: start from this HF Llama/Mixtral (or jpmoe) directory's weights
    extend_vocab: bool = False  # init_from: add embedding rows (mean of the old) for a larger, extending tokenizer
    vocab_size: int = 0  # 0: the tokenizer's size; otherwise must be >= it (padded embedding)
    kernels: str = "auto"  # "auto": Triton kernels on CUDA, the torch path on CPU; or "torch" / "triton"
    tokenizer: str = "runs/demo/tokenizer"  # HF tokenizer directory (apps/train_tokenizer.py)
    mixture: str = "runs/demo/mixture.toml"  # sources, stages, weights, token budgets
    out_dir: str = "runs/pretrain"  # checkpoints/, metrics.jsonl, tensorboard/, samples.jsonl, hf/
    seq_len: int = 128
    micro_batch: int = 8  # sequences per rank per micro-batch
    grad_accum: int = 1  # global batch = micro_batch * grad_accum * world_size sequences
    max_steps: int = 0  # 0: as many as the mixture's token budgets give
    lr: float = 3e-3
    schedule: str = "wsd"  # "wsd", "cosine" or "constant"
    warmup_steps: int = 20
    decay_frac: float = 0.2  # WSD: share of steps in the final decay
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    max_grad_norm: float = 1.0
    z_loss: float = 0.0  # output z-loss coefficient (PaLM)
    seed: int = 1234
    bf16: bool = True  # bf16 compute on CUDA (CPU trains in fp32)
    activation_checkpointing: bool = False
    compile: bool = False  # torch.compile each block
    ckpt_every: int = 100
    keep_checkpoints: int = 3
    spike_sigma: float = 6.0  # a loss this many std above the recent mean skips the batch
    spike_rollback: int = 3  # after this many spikes since the last checkpoint, roll back to it (0: never)
    log_every: int = 10  # progress line every N steps (metrics.jsonl gets every step)
    sample_every: int = 100  # greedy continuations of SAMPLE_PROMPTS every N steps (0: never)
    sample_tokens: int = 24
    tensorboard: bool = True
    wandb_project: str = ""  # log to wandb too when installed
    export: bool = True  # write <out_dir>/hf (model + tokenizer) at the end
    dry_run: bool = False  # print the plan (model, tokens, steps, sizes, disk, memory) and exit; reads no data


def check_args(args: Args) -> None:
    """Values that would stop the run after its first step (a modulo by zero) or 'train' on nothing are errors now."""
    for name in ("seq_len", "micro_batch", "grad_accum", "ckpt_every", "log_every"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(args, name)}")
    for name in ("max_steps", "sample_every", "vocab_size"):
        if getattr(args, name) < 0:
            raise ValueError(f"--{name} must be >= 0, got {getattr(args, name)}")
    if not Path(args.tokenizer).is_dir():  # else transformers reads the path as a Hub repo id
        raise FileNotFoundError(f"--tokenizer {args.tokenizer}: no such directory (apps/train_tokenizer.py makes one)")


def build_model_config(args: Args, tokenizer, device: torch.device) -> ModelConfig:
    vocab = args.vocab_size or len(tokenizer)
    if vocab < len(tokenizer):
        raise ValueError(f"vocab_size {vocab} is smaller than the tokenizer's {len(tokenizer)} tokens "
                         f"({args.tokenizer}): the model could not embed every token")
    base = ModelConfig.preset(args.model)
    return ModelConfig.preset(args.model, vocab_size=vocab, max_seq_len=max(base.max_seq_len, args.seq_len),
                              kernels=resolve_kernels(args.kernels, device), bos_token_id=tokenizer.bos_token_id,
                              eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)


def check_data(stream: MixtureStream, tokenizer, args: Args) -> None:
    """The shards must come from this tokenizer: a mismatch is an error before any step."""
    fp = tokenizer_fingerprint(args.tokenizer)
    for name, src in stream.sources.items():
        if src.vocab_size != len(tokenizer) or src.meta.get("tokenizer") not in ("", fp):
            raise ValueError(f"source {name!r} ({src.path}) was tokenised with another tokenizer "
                             f"(vocab {src.vocab_size}, fingerprint {src.meta.get('tokenizer')!r}); "
                             f"{args.tokenizer} has vocab {len(tokenizer)}, fingerprint {fp!r}")


def data_identity(stream: MixtureStream) -> dict:
    """What each source's shards hold (not where they live): a resume on other data is a mismatch, a moved
    directory is not."""
    return {name: {k: src.meta.get(k) for k in ("num_docs", "num_tokens", "tokenizer")}
            for name, src in sorted(stream.sources.items())}


def check_resumed_optimizer(args: Args, optimizer, scheduler, path: Path) -> None:
    """The checkpoint's optimiser state carries lr, betas and weight decay: different flags would be silently
    ignored on resume, so they are an error (the schedule's shape and max_steps do take effect)."""
    group = optimizer.param_groups[0]
    saved = {"lr": scheduler.base_lrs[0], "beta1": group["betas"][0], "beta2": group["betas"][1],
             "weight_decay": group["weight_decay"]}
    diff = [f"--{k} {getattr(args, k)!r} vs checkpoint {v!r}" for k, v in saved.items() if getattr(args, k) != v]
    if diff:
        raise ConfigMismatchError(f"{path}: the optimiser was saved with other settings ({', '.join(diff)}); a resume "
                                  "keeps the checkpoint's: use its values or a new --out_dir")


def make_loss_fn(model, args: Args, device, autocast):
    def loss_fn(tokens: torch.Tensor):
        tokens = tokens.to(device)  # (B, T + 1)
        with autocast:
            out = model(tokens[:, :-1], return_hidden=True)
        # jpalign's chunked linear CE: the (B*T, V) logits are never materialised.
        ce = fused_linear_cross_entropy(out.hidden.flatten(0, 1), model.lm_head.weight, tokens[:, 1:].flatten(),
                                        z_loss=args.z_loss)
        stats = {"ce": ce, "aux_loss": out.aux_loss}
        if out.expert_load is not None:
            stats["expert_load"] = out.expert_load
        return ce + out.aux_loss, stats
    return loss_fn


def rank_micro_batches(stream: MixtureStream, start: int, args: Args, dist) -> list[torch.Tensor]:
    """This rank's micro-batches of the global batch that begins at sample `start`. Micro-batch m of rank r holds
    block m * world + r: one process accumulating world x as many micro-batches sees the very same ones."""
    return [torch.from_numpy(stream.batch(start + (m * dist.world_size + dist.rank) * args.micro_batch,
                                          args.micro_batch)) for m in range(args.grad_accum)]


def main(args: Args) -> Path:
    if args.dry_run:  # before check_args: a plan needs no tokenizer, shards or GPUs (jpmoe.train.plan)
        print(format_plan(plan_run(**{k: getattr(args, k) for k in PLAN_ARGS})), flush=True)
        return Path(args.out_dir)
    check_args(args)
    dist = setup_distributed()
    torch.manual_seed(args.seed)
    out = Path(args.out_dir)
    # every input is checked before anything is built: tokenizer, shards, mixture, vocabulary
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    stream = MixtureStream(load_mixture(args.mixture), seq_len=args.seq_len, seed=args.seed)
    check_data(stream, tokenizer, args)
    if args.init_from:  # weights, architecture and vocabulary from the checkpoint (jpmoe.train.init_from)
        kernels = resolve_kernels(args.kernels, dist.device)
        loaded = init_from_pretrained(args.init_from, tokenizer=tokenizer, seq_len=args.seq_len, kernels=kernels,
                                      extend_vocab=args.extend_vocab)
        config, base_model = loaded.config, loaded.model
    else:
        config = build_model_config(args, tokenizer, dist.device)
        base_model = Transformer(config)
    global_batch = args.micro_batch * args.grad_accum * dist.world_size
    total = args.max_steps or -(-stream.total_samples // global_batch)
    if dist.is_main:
        reads = ", ".join(f"{k} x{v:.2f}" for k, v in stream.epochs().items())
        print(f"{total} steps of {global_batch} x {args.seq_len} tokens; the mixture plan reads each source: {reads}",
              flush=True)

    use_bf16 = args.bf16 and dist.device.type == "cuda"
    model = wrap_model(base_model.to(dist.device), dist, bf16=use_bf16,
                       activation_checkpointing=args.activation_checkpointing, compile=args.compile)
    optimizer = build_optimizer(model, lr=args.lr, weight_decay=args.weight_decay, betas=(args.beta1, args.beta2))
    scheduler = build_scheduler(optimizer, kind=args.schedule, warmup=args.warmup_steps, total=total,
                                decay_frac=args.decay_frac, min_lr_ratio=args.min_lr_ratio)
    model_fp = {k: v for k, v in config.to_dict().items() if k != "kernels"}  # resumable on other kernels
    fingerprint = {"model": model_fp, "seq_len": args.seq_len, "global_batch": global_batch,
                   "seed": args.seed, "tokenizer": tokenizer_fingerprint(args.tokenizer),
                   "stages": [asdict(s) for s in stream.mixture.stages], "data": data_identity(stream)}
    if args.init_from:
        fingerprint["init_from"] = str(Path(args.init_from).resolve())
    ckpt = CheckpointManager(out / "checkpoints", fingerprint=fingerprint, keep=args.keep_checkpoints,
                             rank=dist.rank, world_size=dist.world_size)
    spikes = SpikeDetector(sigma=args.spike_sigma)
    state = TrainState()
    if (resumed := ckpt.load_latest(model, optimizer, scheduler)) is not None:
        latest, state = resumed
        check_resumed_optimizer(args, optimizer, scheduler, latest)
        spikes.load_state_dict(state.extra.get("spikes", {}))
        if dist.is_main:
            print(f"resumed from {latest} (step {state.step}, stage {state.stage})", flush=True)
            if state.step >= total:
                print(f"the checkpoint is at step {state.step}, at or past the run's {total} steps: nothing to "
                      "train (raise --max_steps to go on)", flush=True)
    monitor = Monitor(out, enabled=dist.is_main, total_steps=total, tensorboard=args.tensorboard,
                      wandb_project=args.wandb_project, config=asdict(args), resume_step=state.step)
    # one GPU: autocast; under FSDP2 the MixedPrecisionPolicy casts the parameters
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if use_bf16 and not dist.distributed else nullcontext()
    loss_fn = make_loss_fn(model, args, dist.device, autocast)
    peak = peak_flops(torch.cuda.get_device_name()) if dist.device.type == "cuda" else None
    flops_per_token = 6 * config.num_params(active=True) + 12 * config.num_layers * config.hidden_size * args.seq_len
    mfu_per_token_s = flops_per_token / (peak * dist.world_size) if peak else None

    model.train()
    while state.step < total:
        t0 = time.perf_counter()
        micro = rank_micro_batches(stream, state.samples, args, dist)
        result = train_step(model, optimizer, scheduler, micro, loss_fn, max_grad_norm=args.max_grad_norm,
                            spikes=spikes)
        state.stage = stream.stage_of(state.samples)
        state.samples += global_batch
        state.step += 1
        load = result.pop("expert_load", None)
        metrics = {**result, "stage": state.stage, "stage_name": stream.mixture.stages[state.stage].name,
                   "tokens": state.samples * args.seq_len,
                   "tokens_per_s": global_batch * args.seq_len / (time.perf_counter() - t0)}
        if mfu_per_token_s:
            metrics["mfu"] = metrics["tokens_per_s"] * mfu_per_token_s
        if load is not None:
            metrics.update(expert_load_metrics(load))
        monitor.log(state.step, metrics)
        if state.step % args.log_every == 0 or state.step == total or result["skipped"]:
            monitor.progress(state.step, metrics)
        after_step(args, state, result, total, ckpt, model, optimizer, scheduler, spikes, monitor, tokenizer, dist)

    if args.export:
        with stops_when_disk_full(f"the Hugging Face export {out / 'hf'}", out):
            export(model, config, out / "hf", args.tokenizer, dist.is_main)
    if dist.is_main:
        with stops_when_disk_full(f"{out / 'loss_curve.png'}", out):
            plot = monitor.plot()
        print(json.dumps({"metrics": str(monitor.metrics_path), "samples": str(monitor.samples_path),
                          "loss_curve": str(plot), "checkpoints": str(ckpt.dir),
                          "hf": str(out / "hf") if args.export else None}, ensure_ascii=False), flush=True)
    monitor.close()
    teardown_distributed()
    return out


def after_step(args, state, result, total, ckpt, model, optimizer, scheduler, spikes, monitor, tokenizer, dist):
    """Spike bookkeeping (and rollback), sample generations, checkpoint."""
    if result["skipped"]:
        state.spikes += 1
        if args.spike_rollback and state.spikes >= args.spike_rollback and ckpt.latest() is not None:
            rollback(ckpt, model, optimizer, scheduler, spikes, state, dist.is_main)
    # samples before the checkpoint: a kill between the two re-runs the step (and its samples) on resume
    if args.sample_every and (state.step % args.sample_every == 0 or state.step == total):
        outs = greedy_continuations(model, tokenizer, list(SAMPLE_PROMPTS), max_new_tokens=args.sample_tokens)
        monitor.samples(state.step, outs)
    if state.step % args.ckpt_every == 0 or state.step == total:
        state.spikes = 0
        state.extra = {"spikes": spikes.state_dict()}
        try:
            ckpt.save(state, model, optimizer, scheduler)
        except DiskFullError as e:  # every rank gets the same verdict; stop cleanly, resume later
            raise SystemExit(f"stopped at step {state.step}: {e}") from e


def rollback(ckpt, model, optimizer, scheduler, spikes, state: TrainState, is_main: bool) -> None:
    """Restore weights, optimiser and schedule from the last checkpoint; keep the data position (the spiking
    batches are not replayed, as in PaLM's recovery)."""
    path = ckpt.latest()
    restored = ckpt.load(path, model, optimizer, scheduler, restore_rng=False)
    spikes.load_state_dict(restored.extra.get("spikes", {}))
    state.spikes = 0
    if is_main:
        print(f"rolled back to {path} after repeated loss spikes; data continues at sample {state.samples}",
              flush=True)


def export(model, config: ModelConfig, out: Path, tokenizer_dir: str, is_main: bool) -> None:
    sd = full_model_state_dict(model)
    if is_main:
        save_hf(sd, config, out, tokenizer_dir=tokenizer_dir)
        print(f"exported Hugging Face model and tokenizer to {out}", flush=True)


if __name__ == "__main__":
    main(parse_args(Args))
