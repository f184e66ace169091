"""Supervised fine-tuning (full or LoRA) of a jpmoe checkpoint or a Hugging Face Llama/Mixtral directory.

    python apps/sft.py --base runs/demo/pretrain/hf --data data/posttrain/sft.jsonl --out_dir runs/sft \
        --max_steps 200 --lr 2e-5 [--lora true] [--config apps/configs/sft_demo.toml]
    torchrun --nproc-per-node 8 apps/sft.py --base BASE --data sft.jsonl --out_dir runs/sft --epochs 2

Records: {"messages": [...]} or {"instruction", "input", "output"} (JSONL or Parquet). The loss covers the assistant
tokens and their EOS only (jpalign's template segments); examples are packed into rows of --seq_len without
cross-example attention. A killed run restarts with the same command and continues from its last checkpoint.
The export in <out_dir>/hf carries the chat template that was trained and a training_data.json.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from jpalign import collate, collate_packed, encode_dataset, fused_sft_loss, pack_examples, shift_labels
from jpalign.chunking import IGNORE_INDEX
from jpalign.records import (
    ReadReport,
    choose_template,
    convert_records,
    read_records,
    sample_prompts,
    sft_messages,
)
from jpmoe.train import parse_args, setup_distributed, teardown_distributed
from jpmoe.train.hf_export import export_posttrained, greedy_replies
from jpmoe.train.posttrain import (
    Loop,
    PostTrainArgs,
    autocast_for,
    check_common_args,
    load_base,
    load_tokenizer,
    report_data,
    run_loop,
    split_eval,
    weights_tag,
)


@dataclass
class Args(PostTrainArgs):
    out_dir: str = "runs/sft"
    packing: bool = True  # several examples per row of seq_len tokens (no cross-example attention)
    max_prompt_length: int = 0  # 0: no separate prompt limit; else prompts are cut from the left to this
    z_loss: float = 0.0


def supervised(example) -> int:
    """Tokens the loss sees after the shift (the first token of an example is never predicted)."""
    return sum(1 for t in example.labels[1:] if t != IGNORE_INDEX)


def encode(args: Args, tokenizer, template, dist):
    """Read, convert, split and encode the records; print and save what was read, used and dropped (by reason)."""
    report = ReadReport()
    files = [f.strip() for f in args.data.split(",") if f.strip()]
    records = [rec for f in files for rec in read_records(f, report)]
    convs = [c for _, c in convert_records(records, sft_messages, report)]
    train_idx, eval_idx = split_eval(len(convs), args.eval_frac, args.seed)
    kw = {"max_length": args.seq_len, "max_prompt_length": args.max_prompt_length or None}
    train, rep_t = encode_dataset(tokenizer, [convs[i] for i in train_idx], template, **kw)
    held, rep_e = encode_dataset(tokenizer, [convs[i] for i in eval_idx], template, **kw)
    report_data(args.out_dir, report, {"train": len(train), "eval": len(held)}, [rep_t, rep_e], dist.is_main)
    if not train:
        raise SystemExit(f"no usable training records in {args.data} (see the counts above)")
    return files, train, held


def model_inputs(batch: dict, device) -> dict:
    keep = ("input_ids", "position_ids", "segment_ids") if "segment_ids" in batch else ("input_ids", "attention_mask")
    return {k: batch[k].to(device) for k in keep}


def main(args: Args) -> Path:
    check_common_args(args)
    dist = setup_distributed()
    torch.manual_seed(args.seed)
    out = Path(args.out_dir)
    model, loaded = load_base(args, dist)
    tokenizer = load_tokenizer(args, loaded)
    template = choose_template(args.template, tokenizer.chat_template, override=args.override_template)
    files, train, held = encode(args, tokenizer, template, dist)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if args.packing:
        rows, _ = pack_examples(train, args.seq_len)
        items, counts = rows, [sum(supervised(e) for e in r.examples) for r in rows]
    else:
        items, counts = train, [supervised(e) for e in train]
    if dist.is_main:
        print(f"{len(train)} training examples in {len(items)} rows of <= {args.seq_len} tokens", flush=True)
    autocast = autocast_for(args, dist)
    world_micro = args.grad_accum * dist.world_size

    def to_batch(chunk: list) -> dict:
        batch = collate_packed(chunk, pad) if args.packing else collate(chunk, pad)
        batch["labels"] = shift_labels(batch["labels"], batch["position_ids"] if args.packing else None)
        return batch

    def make_batches(global_items: list[int], mine: list[list[int]]):
        # token mean over the whole global batch (TRL's num_items_in_batch): each micro-batch's summed loss is
        # scaled so that the mean over micro-batches and ranks is sum / tokens
        n_tokens = sum(counts[i] for i in global_items)
        micro = [{**to_batch([items[i] for i in ids]), "scale": world_micro / n_tokens} for ids in mine]
        return micro, sum(len(items[i]) for i in global_items)

    def hidden_of(batch):
        with autocast:
            return model(**model_inputs(batch, dist.device), return_hidden=True)

    def loss_fn(batch):
        out_ = hidden_of(batch)
        labels = batch["labels"].to(dist.device)
        ce_sum = fused_sft_loss(out_.hidden, model.lm_head.weight, labels, z_loss=args.z_loss, reduction="sum")
        ce = ce_sum * batch["scale"]
        return ce + out_.aux_loss, {"ce": ce.detach(), "aux_loss": out_.aux_loss.detach()}

    @torch.no_grad()
    def evaluate() -> dict:
        if not held:
            return {}
        model.eval()
        total, n = 0.0, 0
        for i in range(0, len(held), args.micro_batch):
            batch = to_batch_eval(held[i : i + args.micro_batch], pad)
            h = hidden_of(batch).hidden
            total += float(fused_sft_loss(h, model.lm_head.weight, batch["labels"].to(dist.device), reduction="sum"))
            n += int((batch["labels"] != IGNORE_INDEX).sum())
        return {"eval/loss": total / max(n, 1), "eval/tokens": n}

    def samples() -> list[dict]:
        questions, ids = sample_prompts(tokenizer, template)
        outs = greedy_replies(model, ids, tokenizer, max_new_tokens=args.sample_tokens)
        return [{"prompt": q, "completion": o} for q, o in zip(questions, outs)]

    data_hash = hashlib.sha256(json.dumps([e.input_ids + e.labels for e in train]).encode()).hexdigest()
    fingerprint = {"model": {k: v for k, v in loaded.config.to_dict().items() if k != "kernels"},
                   "base": weights_tag(loaded), "data": data_hash, "seq_len": args.seq_len,
                   "packing": args.packing, "template": template.name, "z_loss": args.z_loss}
    state = run_loop(Loop(args, dist, model, len(items), make_batches, loss_fn, evaluate, samples, fingerprint))
    if args.export:
        export_posttrained(model, loaded.config, out / "hf", tokenizer=tokenizer, chat_template=template.jinja,
                           dist=dist, lora=(args.lora_r, args.lora_alpha) if args.lora else None, files=files,
                           record={"stage": "sft", "base": args.base, "template": template.name, "steps": state.step})
    teardown_distributed()
    return out


def to_batch_eval(examples: list, pad: int) -> dict:
    batch = collate(examples, pad)
    batch["labels"] = shift_labels(batch["labels"])
    return batch


if __name__ == "__main__":
    main(parse_args(Args))
