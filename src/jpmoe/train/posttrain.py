"""The post-training runtime shared by apps/sft.py and apps/dpo.py: their common flags, loading the base model
(a jpmoe checkpoint/export or a Hugging Face Llama/Mixtral directory, optionally with LoRA), the data order over
epochs, and the loop (accumulate/clip/skip-non-finite step, eval, sample generations, checkpoints, resume).

An app supplies its items (packed rows or preference pairs) as a count, and a `make_batches(global_items, mine)`
callback that turns item indices into this rank's micro-batches. Item order: epoch e reads a permutation of all
items seeded by (seed, e); global batch k covers samples [k * G, (k + 1) * G) of that endless order, and micro-batch
m of rank r holds block m * world + r of it, so one process with world x the accumulation sees the same batches.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from jpmoe.kernels.dispatch import resolve_kernels
from jpmoe.load import LoadedModel, load_pretrained
from jpmoe.train.dcp_checkpoint import CheckpointManager, ConfigMismatchError, DiskFullError, TrainState
from jpmoe.train.dist import DistInfo
from jpmoe.train.lora import apply_lora
from jpmoe.train.monitor import Monitor
from jpmoe.train.schedule import build_optimizer, build_scheduler
from jpmoe.train.state_dicts import wrap_model
from jpmoe.train.step import LossFn, SpikeDetector, train_step


@dataclass
class PostTrainArgs:
    config: str = ""  # TOML file with any of these keys
    base: str = ""  # jpmoe checkpoint/export, training run directory, or Hugging Face Llama/Mixtral directory
    data: str = ""  # JSONL or Parquet file(s), comma-separated
    out_dir: str = "runs/posttrain"  # checkpoints/, metrics.jsonl, samples.jsonl, tensorboard/, hf/
    tokenizer: str = ""  # "": the tokenizer next to --base
    template: str = "auto"  # "auto" (the tokenizer's, else instruction-ja), "instruction-ja" or "llama2-ja"
    override_template: bool = False  # allow a --template other than the one the tokenizer already carries
    seq_len: int = 1024  # tokens per row (SFT: packed row; DPO: prompt + response)
    micro_batch: int = 4  # rows (SFT) or pairs (DPO) per rank per micro-batch
    grad_accum: int = 1
    epochs: float = 1.0  # used when max_steps is 0
    max_steps: int = 0
    lr: float = 2e-5
    schedule: str = "cosine"  # "cosine", "wsd" or "constant"
    warmup_steps: int = 0
    decay_frac: float = 0.2  # WSD: share of steps in the final decay
    min_lr_ratio: float = 0.0
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    max_grad_norm: float = 1.0
    seed: int = 1234
    kernels: str = "auto"  # "auto": Triton on CUDA, the torch path on CPU; or "torch" / "triton"
    bf16: bool = True  # bf16 compute on CUDA (CPU trains in fp32)
    activation_checkpointing: bool = False
    lora: bool = False  # train LoRA adapters only (merged into the weights on export)
    lora_r: int = 16
    lora_alpha: float = 32.0
    lora_dropout: float = 0.0
    eval_frac: float = 0.05  # held-out share of the records (0: no eval)
    eval_every: int = 100  # eval loss + sample generations every N steps and at the end (0: at the end only)
    sample_tokens: int = 48
    ckpt_every: int = 100
    keep_checkpoints: int = 3
    log_every: int = 10  # progress line every N steps (metrics.jsonl gets every step)
    tensorboard: bool = True
    wandb_project: str = ""
    export: bool = True  # write <out_dir>/hf at the end


def check_common_args(args: PostTrainArgs) -> None:
    if not args.base:
        raise ValueError("--base is required (a jpmoe checkpoint or a Hugging Face Llama/Mixtral directory)")
    if not args.data:
        raise ValueError("--data is required (JSONL or Parquet records)")
    for name in ("seq_len", "micro_batch", "grad_accum", "ckpt_every", "log_every", "keep_checkpoints"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(args, name)}")
    for name in ("max_steps", "eval_every", "warmup_steps", "sample_tokens"):
        if getattr(args, name) < 0:
            raise ValueError(f"--{name} must be >= 0, got {getattr(args, name)}")
    if not 0 <= args.eval_frac < 1 or args.epochs <= 0 or args.lr <= 0:
        raise ValueError(f"need 0 <= eval_frac < 1, epochs > 0 and lr > 0; got {args.eval_frac}, {args.epochs}, "
                         f"{args.lr}")


def load_base(args: PostTrainArgs, dist: DistInfo) -> tuple[torch.nn.Module, LoadedModel]:
    """The base model in fp32 on this rank's device (LoRA adapters injected when asked), wrapped for the launch."""
    loaded = load_pretrained(args.base, kernels=resolve_kernels(args.kernels, dist.device))
    if loaded.config.max_seq_len < args.seq_len:
        raise ValueError(f"--seq_len {args.seq_len} exceeds the model's max_seq_len {loaded.config.max_seq_len}")
    model = loaded.model.float().to(dist.device)
    model.train()
    if args.lora:
        model = apply_lora(model, r=args.lora_r, alpha=args.lora_alpha, dropout=args.lora_dropout)
    use_bf16 = args.bf16 and dist.device.type == "cuda"
    model = wrap_model(model, dist, bf16=use_bf16, activation_checkpointing=args.activation_checkpointing)
    return model, loaded


def reshard(model: torch.nn.Module) -> None:
    """Under FSDP2, a forward without backward (the DPO reference pass) leaves the root and the last block gathered,
    their full tensors registered as the parameters: the optimiser must be built on the sharded ones."""
    from torch.distributed.fsdp import FSDPModule

    for m in model.modules():
        if isinstance(m, FSDPModule):
            m.reshard()


def autocast_for(args: PostTrainArgs, dist: DistInfo):
    """bf16 autocast on one GPU; under FSDP2 the MixedPrecisionPolicy casts the parameters; CPU: fp32."""
    if args.bf16 and dist.device.type == "cuda" and not dist.distributed:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def split_eval(n: int, frac: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, eval) record indices: a seeded random `frac` held out (at least one record when frac > 0 and n > 1)."""
    k = 0 if frac <= 0 or n < 2 else max(1, round(n * frac))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return sorted(order[k:]), sorted(order[:k])


class ItemOrder:
    """Endless order of `n` item indices: epoch e is a permutation seeded by (seed, e)."""

    def __init__(self, n: int, seed: int):
        if n < 1:
            raise ValueError("no training items left (were all records dropped? see the counts above)")
        self.n, self.seed, self._perm = n, seed, {}

    def _epoch(self, e: int) -> list[int]:
        if e not in self._perm:
            self._perm = {e: torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 1009 + e))
                          .tolist()}
        return self._perm[e]

    def take(self, start: int, count: int) -> list[int]:
        return [self._epoch(s // self.n)[s % self.n] for s in range(start, start + count)]


def global_batch(args: PostTrainArgs, dist: DistInfo) -> int:
    return args.micro_batch * args.grad_accum * dist.world_size


def total_steps(args: PostTrainArgs, n_items: int, global_batch: int) -> int:
    return args.max_steps or max(1, math.ceil(args.epochs * n_items / global_batch))


def items_seen(args: PostTrainArgs, n_items: int, dist: DistInfo) -> list[int]:
    """The item indices a run of `total_steps` will read, sorted (a short run over a large set reads a part)."""
    order = ItemOrder(n_items, args.seed)
    return sorted(set(order.take(0, total_steps(args, n_items, global_batch(args, dist)) * global_batch(args, dist))))


# make_batches(global item indices of the step, this rank's micro-blocks) -> (micro-batches, global tokens)
MakeBatches = Callable[[list[int], list[list[int]]], tuple[list, int]]


@dataclass
class Loop:
    """Everything the loop needs from the app."""

    args: PostTrainArgs
    dist: DistInfo
    model: torch.nn.Module
    n_items: int
    make_batches: MakeBatches
    loss_fn: LossFn
    evaluate: Callable[[], dict]  # held-out metrics ({} when there is no eval set); collective under FSDP2
    samples: Callable[[], list[dict]]  # [{"prompt", "completion"}]; collective under FSDP2
    fingerprint: dict  # what a resume must match (model, data, loss settings)
    stage: str = "sft"  # shown on the progress line


def check_resumed_optimizer(args: PostTrainArgs, optimizer, scheduler, path: Path) -> None:
    group = optimizer.param_groups[0]
    saved = {"lr": scheduler.base_lrs[0], "beta1": group["betas"][0], "beta2": group["betas"][1],
             "weight_decay": group["weight_decay"]}
    diff = [f"--{k} {getattr(args, k)!r} vs checkpoint {v!r}" for k, v in saved.items() if getattr(args, k) != v]
    if diff:
        raise ConfigMismatchError(f"{path}: the optimiser was saved with other settings ({', '.join(diff)}); use "
                                  "its values or a new --out_dir")


def run_loop(loop: Loop) -> TrainState:
    """Train to the last step, resuming from the newest complete checkpoint of `out_dir`; returns the state."""
    args, dist, model = loop.args, loop.dist, loop.model
    out = Path(args.out_dir)
    batch = global_batch(args, dist)
    total = total_steps(args, loop.n_items, batch)
    reshard(model)
    optimizer = build_optimizer(model, lr=args.lr, weight_decay=args.weight_decay, betas=(args.beta1, args.beta2))
    scheduler = build_scheduler(optimizer, kind=args.schedule, warmup=args.warmup_steps, total=total,
                                decay_frac=args.decay_frac, min_lr_ratio=args.min_lr_ratio)
    fingerprint = {**loop.fingerprint, "global_batch": batch, "seed": args.seed,
                   "lora": [args.lora_r, args.lora_alpha] if args.lora else None}
    ckpt = CheckpointManager(out / "checkpoints", fingerprint=fingerprint, keep=args.keep_checkpoints,
                             rank=dist.rank, world_size=dist.world_size)
    # post-training keeps every finite step (its loss moves with the data); only NaN/inf losses are skipped
    nonfinite = SpikeDetector(min_history=sys.maxsize)
    state = TrainState(extra={"skipped": 0})
    if (resumed := ckpt.load_latest(model, optimizer, scheduler)) is not None:
        latest, state = resumed
        check_resumed_optimizer(args, optimizer, scheduler, latest)
        if dist.is_main:
            print(f"resumed from {latest} (step {state.step})", flush=True)
    monitor = Monitor(out, enabled=dist.is_main, total_steps=total, tensorboard=args.tensorboard,
                      wandb_project=args.wandb_project, config=asdict(args), resume_step=state.step)
    order = ItemOrder(loop.n_items, args.seed)
    model.train()
    while state.step < total:
        t0 = time.perf_counter()
        items = order.take(state.samples, batch)
        mb = args.micro_batch
        mine = [items[(m * dist.world_size + dist.rank) * mb:][:mb] for m in range(args.grad_accum)]
        micro, tokens = loop.make_batches(items, mine)
        result = train_step(model, optimizer, scheduler, micro, loop.loss_fn, max_grad_norm=args.max_grad_norm,
                            spikes=nonfinite)
        state.samples += batch
        state.step += 1
        if result["skipped"]:
            state.extra["skipped"] = state.extra.get("skipped", 0) + 1
            if dist.is_main:
                print(f"warning: step {state.step}: non-finite loss {result['loss']} or grad norm "
                      f"{result['grad_norm']}; update skipped ({state.extra['skipped']} so far)", file=sys.stderr,
                      flush=True)
        metrics = {**result, "stage_name": loop.stage, "epoch": state.samples / loop.n_items,
                   "step_tokens": tokens, "tokens_per_s": tokens / (time.perf_counter() - t0),
                   "skipped_steps": state.extra.get("skipped", 0)}
        at_eval = state.step == total or (args.eval_every and state.step % args.eval_every == 0)
        if at_eval:
            metrics.update(loop.evaluate())
            write_samples(monitor, state.step, loop.samples())
            model.train()
        monitor.log(state.step, metrics)
        if state.step % args.log_every == 0 or state.step == total or result["skipped"] or at_eval:
            monitor.progress(state.step, metrics)
        if state.step % args.ckpt_every == 0 or state.step == total:
            try:
                ckpt.save(state, model, optimizer, scheduler)
            except DiskFullError as e:
                raise SystemExit(f"stopped at step {state.step}: {e}") from e
    if dist.is_main:
        monitor.plot()
    monitor.close()
    return state


def write_samples(monitor: Monitor, step: int, outs: list[dict]) -> None:
    """Append generations to samples.jsonl (truncated to the resumed step on a restart, as the metrics)."""
    if not monitor.enabled:
        return
    monitor.append_samples(step, outs)
    shown = " | ".join(f"{r['prompt'][:12]}… -> {r['completion'][:40]!r}" for r in outs[:2])
    print(f"samples at step {step}: {shown}", file=sys.stderr, flush=True)


def load_tokenizer(args: PostTrainArgs, loaded: LoadedModel):
    """--tokenizer, else the one found next to the base weights; it must fit the model's vocabulary, and a separate
    --tokenizer must carry the same chat template as the checkpoint's own (unless --override_template)."""
    from transformers import AutoTokenizer

    path = args.tokenizer or loaded.tokenizer_dir
    if path is None:
        raise FileNotFoundError(f"no tokenizer next to {args.base}: pass --tokenizer DIR")
    if not Path(path).is_dir():
        raise FileNotFoundError(f"--tokenizer {path}: no such directory")
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    if len(tokenizer) > loaded.config.vocab_size:
        raise ValueError(f"the tokenizer at {path} has {len(tokenizer)} tokens, more than the model's vocabulary "
                         f"({loaded.config.vocab_size}): it is not this checkpoint's tokenizer")
    if args.tokenizer and loaded.tokenizer_dir is not None and not args.override_template:
        own = AutoTokenizer.from_pretrained(str(loaded.tokenizer_dir)).chat_template
        if own and own != tokenizer.chat_template:
            raise ValueError(f"--tokenizer {path} carries another chat template than the checkpoint's tokenizer "
                             f"({loaded.tokenizer_dir}); pass --override_template true to train with it anyway")
    return tokenizer


def weights_tag(loaded: LoadedModel) -> str:
    """Identity of the base weights for the reference cache and the resume fingerprint: the directory and each
    weight file's name, size and modification time (re-exporting the base invalidates the cache)."""
    files = sorted(f for f in loaded.path.iterdir() if f.is_file() and f.suffix in (".safetensors", ".distcp"))
    return json.dumps([str(loaded.path.resolve()), [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]])


def report_data(out_dir: str, report, used: dict, encode_reports: list, is_main: bool) -> dict:
    """Records read, used (by split) and dropped (by reason, reading and encoding together), and truncations:
    printed, and saved to <out_dir>/data_report.json."""
    for r in encode_reports:
        report.dropped.update(r.dropped)
    summary = {"read": report.read, "used": used, "dropped": dict(sorted(report.dropped.items())),
               "truncated": dict(sum((r.truncated for r in encode_reports), Counter()))}
    if is_main:
        print(f"records: {json.dumps(summary, ensure_ascii=False)}", flush=True)
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / "data_report.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n")
    return summary
