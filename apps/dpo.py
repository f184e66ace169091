"""Preference tuning of a jpmoe checkpoint or a Hugging Face Llama/Mixtral directory: DPO (every jpalign loss type:
sigmoid = dpo, ipo, hinge, robust; optional RPO NLL term), and the reference-free ORPO and SimPO.

    python apps/dpo.py --base runs/sft/hf --data data/posttrain/dpo.jsonl --loss dpo --out_dir runs/dpo \
        --max_steps 200 --lr 1e-6 [--config apps/configs/dpo_demo.toml]
    python apps/dpo.py --base runs/sft/hf --data data/posttrain/dpo.jsonl --loss orpo --out_dir runs/orpo --epochs 3
    torchrun --nproc-per-node 8 apps/dpo.py --base BASE --data dpo.jsonl --loss dpo --out_dir runs/dpo

Records: {"prompt", "chosen", "rejected"} or {"messages" (prompt turns), "chosen", "rejected"}. For 1B+ models start
from --beta 0.5 --lr 1e-6 (the values that stopped DPO from diverging; the defaults). The reference log-probs are
computed once by the base model before the first step and cached in <out_dir>/reference_logps.pt: epochs and
reruns reuse them, so no second model is ever held. Logged per step: loss, rewards/chosen, rewards/rejected,
rewards/margins, rewards/accuracies, logps/chosen, logps/rejected, grad_norm, lr.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from jpalign import (
    DPO_LOSS_TYPES,
    cached_reference_logps,
    collate_pairs,
    encode_pairs,
    fused_dpo_loss,
    fused_orpo_loss,
    fused_simpo_loss,
    precompute_reference_logps,
    shift_labels,
    uses_average_logps,
)
from jpalign.records import (
    ReadReport,
    choose_template,
    convert_records,
    preference_record,
    read_records,
    sample_prompts,
)
from jpalign.reference import ReferenceLogps, fingerprint
from jpmoe.train import parse_args, setup_distributed, teardown_distributed
from jpmoe.train.dist import broadcast_object
from jpmoe.train.hf_export import export_posttrained, greedy_replies
from jpmoe.train.posttrain import (
    Loop,
    PostTrainArgs,
    autocast_for,
    check_common_args,
    items_seen,
    load_base,
    load_tokenizer,
    report_data,
    run_loop,
    split_eval,
    weights_tag,
)

LOSSES = ("dpo", *DPO_LOSS_TYPES, "orpo", "simpo")
DEFAULT_BETA = {"orpo": 0.1, "simpo": 2.0}  # DPO types: 0.5


@dataclass
class Args(PostTrainArgs):
    out_dir: str = "runs/dpo"
    loss: str = "dpo"  # dpo (= sigmoid), ipo, hinge, robust, orpo, simpo
    beta: float = 0.0  # 0: 0.5 for the DPO types, 0.1 (lambda) for ORPO, 2.0 for SimPO
    label_smoothing: float = 0.0  # cDPO / rDPO / SimPO smoothing
    simpo_gamma: float = 0.5
    rpo_alpha: float = 0.0  # weight of the chosen-response NLL added to DPO/SimPO (RPO / CPO)
    lr: float = 1e-6
    max_prompt_length: int = 0  # 0: no separate limit; prompts are cut from the left to this
    ref_batch_size: int = 8  # pairs per forward of the reference pass


def encode(args: Args, tokenizer, template, dist):
    report = ReadReport()
    files = [f.strip() for f in args.data.split(",") if f.strip()]
    records = [rec for f in files for rec in read_records(f, report)]
    recs = [r for _, r in convert_records(records, preference_record, report)]
    train_idx, eval_idx = split_eval(len(recs), args.eval_frac, args.seed)
    kw = {"max_length": args.seq_len, "max_prompt_length": args.max_prompt_length or None}
    train, rep_t = encode_pairs(tokenizer, [recs[i] for i in train_idx], template, **kw)
    held, rep_e = encode_pairs(tokenizer, [recs[i] for i in eval_idx], template, **kw)
    report_data(args.out_dir, report, {"train": len(train), "eval": len(held)}, [rep_t, rep_e], dist.is_main)
    if not train:
        raise SystemExit(f"no usable preference pairs in {args.data} (see the counts above)")
    return files, train, held


def _matches(path: Path, pairs, tag: str) -> bool:
    try:
        ReferenceLogps.load(path, expected_fingerprint=fingerprint(pairs, tag))
        return True
    except ValueError:
        return False


def reference(args: Args, model, pairs, pad: int, tag: str, dist, autocast):
    """Reference log-probs of every pair by the model as loaded (before any step), cached in out_dir. Under
    torchrun every rank runs the same forwards (they are collective); rank 0 alone writes the cache."""
    path = Path(args.out_dir) / "reference_logps.pt"

    def forward(batch):
        # jpalign runs this under inference_mode; FSDP2 would keep its gathered parameters as inference tensors,
        # which the training steps then cannot write: the forward itself runs under no_grad instead
        with torch.inference_mode(False), torch.no_grad(), autocast:
            out = model(batch["input_ids"].to(dist.device), attention_mask=batch["attention_mask"].to(dist.device),
                        return_hidden=True)
        return out.hidden, model.lm_head.weight

    model.eval()
    if not dist.distributed:
        if path.exists() and not _matches(path, pairs, tag):  # a longer run sees more pairs: recomputed (the model
            path.unlink()  # is still the base here, checkpoints are loaded after this pass)
        ref = cached_reference_logps(path, forward, pairs, pad_token_id=pad, model_tag=tag,
                                     batch_size=args.ref_batch_size)
    elif broadcast_object(path.exists() and _matches(path, pairs, tag) if dist.is_main else None):
        ref = ReferenceLogps.load(path, expected_fingerprint=fingerprint(pairs, tag))
    else:
        ref = precompute_reference_logps(forward, pairs, pad_token_id=pad, model_tag=tag,
                                         batch_size=args.ref_batch_size)
        if dist.is_main:
            ref.save(path)
    model.train()
    return ref


def main(args: Args) -> Path:
    check_common_args(args)
    if args.loss not in LOSSES:
        raise ValueError(f"--loss {args.loss!r}: choose one of {LOSSES}")
    loss_type = "sigmoid" if args.loss == "dpo" else args.loss
    beta = args.beta or DEFAULT_BETA.get(loss_type, 0.5)
    dist = setup_distributed()
    torch.manual_seed(args.seed)
    out = Path(args.out_dir)
    model, loaded = load_base(args, dist)
    tokenizer = load_tokenizer(args, loaded)
    template = choose_template(args.template, tokenizer.chat_template, override=args.override_template)
    files, train, held = encode(args, tokenizer, template, dist)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    autocast = autocast_for(args, dist)
    ref, row = None, {}
    if loss_type in DPO_LOSS_TYPES:  # ORPO and SimPO need no reference
        # only the pairs this run will train on (a short run over a large set scores a fraction of it) + held out
        seen = items_seen(args, len(train), dist)
        row = {i: r for r, i in enumerate(seen)} | {-1 - j: len(seen) + j for j in range(len(held))}
        ref = reference(args, model, [train[i] for i in seen] + held, pad, weights_tag(loaded), dist, autocast)
    average = uses_average_logps(loss_type)

    def to_batch(indices: list[int], held_out: bool = False) -> dict:
        """Pairs at `indices` of the training (or held-out) pairs, with their reference log-probs."""
        batch = collate_pairs([(held if held_out else train)[i] for i in indices], pad)
        batch["labels"] = shift_labels(batch["labels"])
        batch["nll_labels"] = shift_labels(batch["nll_labels"])
        if ref is not None:
            batch["ref"] = ref.for_batch([row[-1 - i if held_out else i] for i in indices], average=average)
        return batch

    def make_batches(global_items: list[int], mine: list[list[int]]):
        tokens = sum(len(train[i].prompt_ids) * 2 + len(train[i].chosen_ids) + len(train[i].rejected_ids)
                     for i in global_items)
        return [to_batch(ids) for ids in mine], tokens

    def preference_loss(batch):
        with autocast:
            out_ = model(batch["input_ids"].to(dist.device), attention_mask=batch["attention_mask"].to(dist.device),
                         return_hidden=True)
        h, w, labels = out_.hidden, model.lm_head.weight, batch["labels"].to(dist.device)
        if loss_type == "orpo":
            res = fused_orpo_loss(h, w, labels, beta=beta, nll_labels=batch["nll_labels"].to(dist.device))
        elif loss_type == "simpo":
            res = fused_simpo_loss(h, w, labels, beta=beta, gamma=args.simpo_gamma,
                                   label_smoothing=args.label_smoothing, nll_weight=args.rpo_alpha)
        else:
            rc, rr = (t.to(dist.device) for t in batch["ref"])
            res = fused_dpo_loss(h, w, labels, ref_chosen_logps=rc, ref_rejected_logps=rr, beta=beta,
                                 loss_type=loss_type, label_smoothing=args.label_smoothing, nll_weight=args.rpo_alpha)
        stats = {"rewards/chosen": res.chosen_rewards.mean(), "rewards/rejected": res.rejected_rewards.mean(),
                 "rewards/margins": (res.chosen_rewards - res.rejected_rewards).mean(),
                 "rewards/accuracies": (res.chosen_rewards > res.rejected_rewards).float().mean(),
                 "logps/chosen": res.chosen_logps.mean(), "logps/rejected": res.rejected_logps.mean(), "nll": res.nll}
        return res.loss, out_.aux_loss, stats

    def loss_fn(batch):
        loss, aux, stats = preference_loss(batch)
        return loss + aux, {**stats, "aux_loss": aux.detach()}

    @torch.no_grad()
    def evaluate() -> dict:
        if not held:
            return {}
        model.eval()
        sums: dict[str, float] = {}
        chunks = [list(range(i, min(i + args.micro_batch, len(held)))) for i in range(0, len(held), args.micro_batch)]
        for ids in chunks:
            loss, _, stats = preference_loss(to_batch(ids, held_out=True))
            for k, v in {"loss": loss, **stats}.items():
                sums[k] = sums.get(k, 0.0) + float(v) * len(ids)
        return {f"eval/{k}": v / len(held) for k, v in sums.items()}

    def samples() -> list[dict]:
        questions, ids = sample_prompts(tokenizer, template)
        outs = greedy_replies(model, ids, tokenizer, max_new_tokens=args.sample_tokens)
        return [{"prompt": q, "completion": o} for q, o in zip(questions, outs)]

    data = [p.prompt_ids + [-1] + p.chosen_ids + [-2] + p.rejected_ids for p in train]
    fingerprint = {"model": {k: v for k, v in loaded.config.to_dict().items() if k != "kernels"},
                   "base": weights_tag(loaded), "data": hashlib.sha256(json.dumps(data).encode()).hexdigest(),
                   "seq_len": args.seq_len, "template": template.name, "loss": loss_type, "beta": beta,
                   "label_smoothing": args.label_smoothing, "simpo_gamma": args.simpo_gamma,
                   "rpo_alpha": args.rpo_alpha}
    loop = Loop(args, dist, model, len(train), make_batches, loss_fn, evaluate, samples, fingerprint, stage=args.loss)
    state = run_loop(loop)
    if args.export:
        export_posttrained(model, loaded.config, out / "hf", tokenizer=tokenizer, chat_template=template.jinja,
                           dist=dist, lora=(args.lora_r, args.lora_alpha) if args.lora else None, files=files,
                           record={"stage": args.loss, "base": args.base, "beta": beta, "template": template.name,
                                   "steps": state.step})
    teardown_distributed()
    return out


if __name__ == "__main__":
    main(parse_args(Args))
