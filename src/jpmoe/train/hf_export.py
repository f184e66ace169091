"""Exporting a post-trained model: a Hugging Face directory whose tokenizer carries the chat template the model was
trained with (so `apply_chat_template` + `generate` reproduce the training format), LoRA merged, and a
`training_data.json` naming the training files and the evaluation sets among them (the evaluation marks such a
model contaminated). Also greedy replies to fixed prompts, the sample generations shown at each eval."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from jpmoe.config import ModelConfig
from jpmoe.generate import SamplingParams, generate
from jpmoe.hf.convert import save_hf
from jpmoe.train.dist import DistInfo
from jpmoe.train.lora import merge_lora_state_dict
from jpmoe.train.state_dicts import full_model_state_dict

TRAINING_DATA_NAME = "training_data.json"


def export_posttrained(model: torch.nn.Module, config: ModelConfig, out: str | Path, *, tokenizer, chat_template: str,
                       dist: DistInfo, lora: tuple[int, float] | None = None, files: list[str] = (),
                       contaminated_with: list[str] = (), record: dict | None = None) -> Path:
    """Gather the weights (collective under FSDP2), merge LoRA (r, alpha), write the HF directory on rank 0."""
    out = Path(out)
    sd = full_model_state_dict(model)
    if not dist.is_main:
        return out
    if lora is not None:
        sd = merge_lora_state_dict(sd, r=lora[0], alpha=lora[1])
    save_hf(sd, config, out)
    tokenizer.chat_template = chat_template
    tokenizer.save_pretrained(str(out))
    data = {"files": [str(f) for f in files], "contaminated_with": list(contaminated_with), **(record or {})}
    (out / TRAINING_DATA_NAME).write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
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
