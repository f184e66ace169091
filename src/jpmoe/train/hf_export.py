"""Exporting a post-trained model: a Hugging Face directory whose tokenizer carries the chat template the model was
trained with (so `apply_chat_template` + `generate` reproduce the training format), LoRA merged, and a
`training_data.json` naming the training files and the evaluation sets among them (the evaluation marks such a
model contaminated). Also greedy replies to fixed prompts, the sample generations shown at each eval."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from jpmoe.config import ModelConfig
from jpmoe.generate import SamplingParams, generate
from jpmoe.hf.convert import save_hf, write_generation_config
from jpmoe.tokenizer import save_portable
from jpmoe.train.dist import DistInfo
from jpmoe.train.lora import merge_lora_state_dict
from jpmoe.train.state_dicts import full_model_state_dict

TRAINING_DATA_NAME = "training_data.json"
# Folders (under data/) of the evaluation sets: a model trained on any file below them is contaminated.
EVALUATION_SETS = ("jglue", "elyza_tasks_100", "japanese_mt_bench")


def contamination(files: list[str | Path]) -> list[str]:
    """The training files that lie under an evaluation set's folder (data/jglue, data/elyza_tasks_100,
    data/japanese_mt_bench): a model trained on them must not be scored on those sets."""
    return [str(f) for f in files if any(part in EVALUATION_SETS for part in Path(f).resolve().parts)]


def export_posttrained(model: torch.nn.Module, config: ModelConfig, out: str | Path, *, tokenizer, chat_template: str,
                       dist: DistInfo, lora: tuple[int, float] | None = None, files: list[str] = (),
                       record: dict | None = None) -> Path:
    """Gather the weights (collective under FSDP2), merge LoRA (r, alpha), write the HF directory on rank 0 with
    training_data.json {"files", "contaminated_with", **record}; training on an evaluation set is warned about."""
    out = Path(out)
    sd = full_model_state_dict(model)
    if not dist.is_main:
        return out
    dirty = contamination(files)
    if dirty:
        print(f"warning: trained on evaluation-set files {dirty}: the export is marked contaminated",
              file=sys.stderr, flush=True)
    if lora is not None:
        sd = merge_lora_state_dict(sd, r=lora[0], alpha=lora[1])
    save_hf(sd, config, out)
    tokenizer.chat_template = chat_template
    save_portable(tokenizer, out)
    write_generation_config(out, config)  # the trained template may close turns with <|end|>
    data = {"files": [str(f) for f in files], "contaminated_with": dirty, **(record or {})}
    (out / TRAINING_DATA_NAME).write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    print(f"exported Hugging Face model and tokenizer (with its chat template) to {out}", flush=True)
    return out


def read_training_data(model_dir: str | Path) -> dict | None:
    """The training_data.json of an export (None when absent: not a post-trained export)."""
    path = Path(model_dir) / TRAINING_DATA_NAME
    return json.loads(path.read_text()) if path.is_file() else None


@torch.no_grad()
def greedy_replies(model: torch.nn.Module, prompt_ids: list[list[int]], tokenizer, *, max_new_tokens: int) -> list[str]:
    """Greedy completions (no random numbers drawn: a resumed run stays identical), stopping at EOS."""
    if not prompt_ids:
        return []
    was_training = model.training
    model.eval()
    room = model.config.max_seq_len - max(len(p) for p in prompt_ids)
    params = SamplingParams(max_new_tokens=max(1, min(max_new_tokens, room)), stop_token_ids=(tokenizer.eos_token_id,))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    outs = generate(model, prompt_ids, params, pad_id=pad)
    model.train(was_training)
    return [tokenizer.decode(o, skip_special_tokens=True) for o in outs]
