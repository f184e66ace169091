"""Our checkpoint format: a directory with `config.json` ({"format": "jpmoe", "model": ModelConfig fields}) and
`model.safetensors`. Weights are read and written with safetensors only."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from jpmoe.config import ConfigTypeError, ModelConfig
from jpmoe.model import Transformer

CONFIG_NAME, WEIGHTS_NAME = "config.json", "model.safetensors"


def read_json(file: Path) -> dict:
    """A JSON object from `file`; a broken file is a ValueError that names it."""
    try:
        d = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{file} is not valid JSON: {e}") from None
    if not isinstance(d, dict):
        raise ValueError(f"{file} holds a JSON {type(d).__name__}, not an object")
    return d


def read_safetensors(file: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a safetensors file; a missing or corrupt file is an error that names it."""
    if not file.is_file():
        raise FileNotFoundError(f"{file} does not exist")
    try:
        return load_file(str(file))
    except SafetensorError as e:
        raise ValueError(f"{file} is not a readable safetensors file: {e}") from None


def save_safetensors(sd: dict[str, torch.Tensor], file: Path) -> None:
    """safetensors' save_file, leaving the file readable like any other this process writes: safetensors creates
    it 0600, whatever the umask."""
    save_file(sd, str(file), metadata={"format": "pt"})
    file.chmod(0o666 & ~_umask())


def _umask() -> int:
    try:  # Linux says it without changing it (os.umask sets it, which races with other threads writing files)
        status = Path("/proc/self/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Umask:")), 8)
    except (OSError, StopIteration, ValueError):
        mask = os.umask(0o022)
        os.umask(mask)
        return mask


def expected_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every key of our state dict (tied lm_head left out) with its shape."""
    H, D, inter, E = config.hidden_size, config.head_dim, config.intermediate_size, config.num_experts
    shapes = {"tok_embeddings.weight": (config.vocab_size, H), "norm.weight": (H,)}
    if not config.tie_embeddings:
        shapes["lm_head.weight"] = (config.vocab_size, H)
    for i in range(config.num_layers):
        p = f"layers.{i}."
        shapes |= {p + "attn_norm.weight": (H,), p + "mlp_norm.weight": (H,),
                   p + "attn.wq.weight": (config.num_heads * D, H), p + "attn.wk.weight": (config.num_kv_heads * D, H),
                   p + "attn.wv.weight": (config.num_kv_heads * D, H), p + "attn.wo.weight": (H, config.num_heads * D)}
        if config.is_moe:
            shapes |= {p + "mlp.router.weight": (E, H), p + "mlp.w_gate_up": (E, 2 * inter, H),
                       p + "mlp.w_down": (E, H, inter)}
            if config.shared_expert_size:
                S = config.shared_expert_size
                shapes |= {p + "mlp.shared.w_gate_up.weight": (2 * S, H), p + "mlp.shared.w_down.weight": (H, S)}
        else:
            shapes |= {p + "mlp.w_gate_up.weight": (2 * inter, H), p + "mlp.w_down.weight": (H, inter)}
    return shapes


def check_tied_lm_head(lm_head: torch.Tensor, embedding: torch.Tensor, names: str) -> None:
    """A tied model stores its lm_head once, as the embedding; a stored copy that differs would be dropped, which
    makes another model than the one saved: an error. `names` says which keys were compared."""
    if lm_head.is_meta or embedding.is_meta:
        return
    if lm_head.shape != embedding.shape or not torch.equal(lm_head, embedding):
        diff = f"shapes {tuple(lm_head.shape)} and {tuple(embedding.shape)}" if lm_head.shape != embedding.shape \
            else f"max abs difference {(lm_head.float() - embedding.float()).abs().max().item():.3g}"
        raise ValueError(f"the config ties the embeddings, but the stored {names} differ ({diff}): loading would drop "
                         "the lm_head and give another model. Untie them in the config (tie_word_embeddings / "
                         "tie_embeddings false) to keep the stored lm_head, or remove it to use the embedding.")


def check_state_dict(sd: dict[str, torch.Tensor], config: ModelConfig) -> None:
    """Raise a KeyError/ValueError naming every missing, unexpected or mis-shaped key (and a stored lm_head that
    differs from the embedding it is tied to)."""
    if config.tie_embeddings and "lm_head.weight" in sd and "tok_embeddings.weight" in sd:
        check_tied_lm_head(sd["lm_head.weight"], sd["tok_embeddings.weight"],
                           "lm_head.weight and tok_embeddings.weight")
    want = expected_shapes(config)
    have = {k: v for k, v in sd.items() if not (config.tie_embeddings and k == "lm_head.weight")}
    missing, unexpected = sorted(set(want) - set(have)), sorted(set(have) - set(want))
    if missing or unexpected:
        raise KeyError(f"state dict does not match the config: missing {missing[:8]}"
                       f"{' ...' if len(missing) > 8 else ''}, unexpected {unexpected[:8]}"
                       f"{' ...' if len(unexpected) > 8 else ''}")
    bad = [f"{k}: {tuple(have[k].shape)} != expected {want[k]}" for k in want if tuple(have[k].shape) != want[k]]
    if bad:
        raise ValueError(f"state dict shapes do not match the config: {bad[:8]}")


def save_checkpoint(model_or_state_dict, config: ModelConfig, path: str | Path) -> Path:
    """Write config.json and model.safetensors (the tied lm_head is stored once, as the embedding)."""
    sd = model_or_state_dict.state_dict() if isinstance(model_or_state_dict, torch.nn.Module) else model_or_state_dict
    check_state_dict(sd, config)
    sd = {k: v.detach().contiguous() for k, v in sd.items() if not (config.tie_embeddings and k == "lm_head.weight")}
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    save_safetensors(sd, path / WEIGHTS_NAME)
    (path / CONFIG_NAME).write_text(json.dumps({"format": "jpmoe", "model": config.to_dict()}, indent=2) + "\n")
    return path


def load_config(path: str | Path) -> ModelConfig:
    path = Path(path)
    file = path / CONFIG_NAME
    if not file.is_file():
        raise FileNotFoundError(f"{path} has no {CONFIG_NAME}: not a jpmoe checkpoint directory")
    d = read_json(file)
    if d.get("format") != "jpmoe":
        hint = " (it looks like a Hugging Face checkpoint: run `python -m jpmoe.hf from-hf` first)" \
            if "architectures" in d else ""
        raise ValueError(f"{file} is not a jpmoe config{hint}")
    return config_from_dict(d.get("model"), file)


def config_from_dict(d, file: Path) -> ModelConfig:
    """ModelConfig from the model fields stored in `file`; a wrong field or type is an error naming the file."""
    if not isinstance(d, dict):
        raise ValueError(f"{file}: the model config must be a JSON object, got {d!r}")
    try:
        return ModelConfig.from_dict(d)
    except ConfigTypeError as e:
        raise ConfigTypeError(f"{file}: {e}") from None
    except ValueError as e:
        raise ValueError(f"{file}: {e}") from None


def load_checkpoint(path: str | Path) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """Read config and weights; the state dict is checked against the config (clear key and shape errors)."""
    config = load_config(path)
    sd = read_safetensors(Path(path) / WEIGHTS_NAME)
    check_state_dict(sd, config)
    return config, sd


def load_state_dict_checked(model: Transformer, sd: dict[str, torch.Tensor]) -> None:
    check_state_dict(sd, model.config)
    model.load_state_dict(sd, strict=not model.config.tie_embeddings)


def load_model(path: str | Path, **config_overrides) -> Transformer:
    """Build a Transformer from a checkpoint directory (config overrides e.g. kernels="triton")."""
    config, sd = load_checkpoint(path)
    if config_overrides:
        config = ModelConfig.from_dict(config.to_dict() | config_overrides)
    with torch.device("meta"):
        model = Transformer(config)
    model.to_empty(device="cpu")
    model.init_weights()  # buffers (rotary frequencies); weights are overwritten below
    load_state_dict_checked(model, sd)
    if config.tie_embeddings:
        model.lm_head.weight = model.tok_embeddings.weight
    return model
