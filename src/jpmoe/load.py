"""One entry point for every app that takes `--model PATH` or `--base PATH`: a jpmoe export directory, a Hugging Face
Llama/Mixtral directory, a training checkpoint step, or a training run / checkpoints directory (its latest complete
step). Weights are read with safetensors or DCP (never an unpickled file someone could hand over); a damaged config
or weights file is an error that names it.

    loaded = load_pretrained("runs/demo/sft/hf")
    loaded.model, loaded.config, loaded.tokenizer_dir
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from jpmoe.config import ModelConfig
from jpmoe.hf.convert import is_tokenizer_file, load_hf, load_training_checkpoint
from jpmoe.model import Transformer
from jpmoe.model_dir import CONFIG_NAME, load_checkpoint, read_json

STEP_PREFIX = "step-"


@dataclass
class LoadedModel:
    model: Transformer
    config: ModelConfig
    kind: str  # "jpmoe" (our export), "hf" (a Hugging Face directory) or "training" (a DCP checkpoint step)
    path: Path  # the directory the weights came from (for a run directory: the step chosen)
    tokenizer_dir: Path | None  # where the tokenizer files were found (None: none near the weights)


def is_training_step(path: Path) -> bool:
    return (path / ".metadata").is_file() and (path / "state.json").is_file() and not path.name.endswith(".tmp")


def latest_training_step(path: Path) -> Path | None:
    """The newest complete `step-N` under `path` or `path/checkpoints`, or None."""
    for d in (path, path / "checkpoints"):
        if not d.is_dir():
            continue
        steps = sorted(p for p in d.iterdir() if p.name.startswith(STEP_PREFIX) and is_training_step(p))
        if steps:
            return steps[-1]
    return None


def has_tokenizer(path: Path) -> bool:
    return path.is_dir() and any(f.is_file() and is_tokenizer_file(f.name) for f in path.iterdir())


def find_tokenizer(weights_dir: Path) -> Path | None:
    """Tokenizer files next to the weights, else in the run's `hf/` export or a parent (a checkpoint step sits in
    `<run>/checkpoints/step-N`)."""
    for d in (weights_dir, weights_dir.parent, weights_dir.parent.parent):
        for cand in (d, d / "hf", d / "tokenizer"):
            if has_tokenizer(cand):
                return cand
    return None


def resolve_model_path(path: str | Path) -> tuple[Path, str]:
    """-> (directory holding the weights, kind). Errors name what was looked for."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file or directory")
    if not p.is_dir():
        raise ValueError(f"{p} is a file; give the model directory (config.json + *.safetensors, or a checkpoint)")
    if is_training_step(p):
        return p, "training"
    if (p / CONFIG_NAME).is_file():
        d = read_json(p / CONFIG_NAME)
        return p, "jpmoe" if d.get("format") == "jpmoe" else "hf"
    step = latest_training_step(p)
    if step is not None:
        return step, "training"
    if (p / "hf" / CONFIG_NAME).is_file():
        return p / "hf", "hf"
    raise FileNotFoundError(f"{p} holds no model: expected config.json with safetensors weights (a jpmoe or Hugging "
                            "Face directory), a training checkpoint step (state.json + .metadata) or a run directory")


def load_pretrained(path: str | Path, *, device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
                    **config_overrides) -> LoadedModel:
    """Build the model from any supported directory; `config_overrides` (e.g. kernels="triton", max_seq_len=4096)
    replace fields of the stored config."""
    weights_dir, kind = resolve_model_path(path)
    if kind == "training":
        config, sd = load_training_checkpoint(weights_dir)
    elif kind == "jpmoe":
        config, sd = load_checkpoint(weights_dir)
    else:
        config, sd = load_hf(weights_dir)
    if config_overrides:
        config = ModelConfig.from_dict(config.to_dict() | config_overrides)
    with torch.device("meta"):
        model = Transformer(config)
    model.to_empty(device="cpu")
    model.init_weights()  # buffers (rotary frequencies); every weight is overwritten below
    missing, unexpected = model.load_state_dict(sd, strict=False)
    allowed_missing = {"lm_head.weight"} if config.tie_embeddings else set()
    if set(missing) - allowed_missing or unexpected:
        raise ValueError(f"{weights_dir}: weights do not match the config (missing {sorted(missing)[:3]}, "
                         f"unexpected {sorted(unexpected)[:3]})")
    if config.tie_embeddings:
        model.lm_head.weight = model.tok_embeddings.weight
    model.to(device=device, dtype=dtype)
    model.eval()
    return LoadedModel(model=model, config=config, kind=kind, path=weights_dir,
                       tokenizer_dir=find_tokenizer(weights_dir))


def describe(loaded: LoadedModel) -> str:
    """One line for logs: what was loaded from where."""
    c = loaded.config
    return json.dumps({"path": str(loaded.path), "kind": loaded.kind, "params": c.num_params(),
                       "experts": c.num_experts, "tokenizer": str(loaded.tokenizer_dir)}, ensure_ascii=False)
