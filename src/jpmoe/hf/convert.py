"""Directory-level conversion: our checkpoints <-> Hugging Face model directories (sharded safetensors)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import torch

from jpmoe.config import ConfigTypeError, ModelConfig
from jpmoe.hf.configs import config_from_hf, config_to_hf, generation_config_to_hf
from jpmoe.hf.keymap import from_hf_state_dict, to_hf_state_dict
from jpmoe.model_dir import (
    config_from_dict,
    load_checkpoint,
    read_json,
    read_safetensors,
    save_checkpoint,
    save_safetensors,
)
from jpmoe.tokenizer import TURN_END

INDEX_NAME = "model.safetensors.index.json"
# what transformers' tokenizers save (tokenizer.json, tokenizer_config.json, tokenizer.model, ...), sentencepiece
# models (spiece.model) and chat templates; anything else in a directory (training state, optimiser shards, other
# frameworks' weights, READMEs) is not copied
TOKENIZER_NAMES = {"special_tokens_map.json", "added_tokens.json", "vocab.json", "vocab.txt", "merges.txt",
                   "chat_template.jinja", "chat_template.json"}


def is_tokenizer_file(name: str) -> bool:
    return name.startswith("tokenizer") or name in TOKENIZER_NAMES or name.endswith(".model")


def copy_tokenizer(src: str | Path, out: str | Path) -> list[str]:
    """Copy the tokenizer files of `src` into `out`; return their names."""
    copied = []
    for f in sorted(Path(src).iterdir()):
        if f.is_file() and is_tokenizer_file(f.name):
            shutil.copy2(f, Path(out) / f.name)
            copied.append(f.name)
    return copied


def write_sharded(sd: dict[str, torch.Tensor], out: Path, max_shard_bytes: int) -> list[str]:
    """Write `model-0000k-of-0000n.safetensors` shards (keys in order, each under max_shard_bytes unless one
    tensor is larger) and `model.safetensors.index.json`."""
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for k, v in sd.items():
        n = v.numel() * v.element_size()
        if shards[-1] and size + n > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][k] = v
        size += n
    names = [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    weight_map = {}
    for name, shard in zip(names, shards):
        save_safetensors(shard, out / name)
        weight_map |= dict.fromkeys(shard, name)
    total = sum(v.numel() * v.element_size() for v in sd.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (out / INDEX_NAME).write_text(json.dumps(index, indent=2) + "\n")
    return names


def remove_old_weights(out: Path) -> list[str]:
    """Delete weights a previous export left in `out` (as transformers' save_pretrained does): transformers loads a
    stale model.safetensors in preference to our index, so its old weights would be used silently."""
    stale = [f for f in out.iterdir() if f.is_file() and (
        f.name in ("model.safetensors", INDEX_NAME, "pytorch_model.bin", "pytorch_model.bin.index.json")
        or re.fullmatch(r"(model|pytorch_model)-\d+-of-\d+\.(safetensors|bin)", f.name))]
    for f in stale:
        f.unlink()
    return sorted(f.name for f in stale)


def save_hf(sd: dict[str, torch.Tensor], config: ModelConfig, out: str | Path, *, tokenizer_dir=None,
            max_shard_bytes: int = 5 * 2**30, fused: bool = False, dtype: torch.dtype | None = None) -> Path:
    """Write an HF model directory: config.json, generation_config.json, sharded safetensors with an index."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    hf = to_hf_state_dict(sd, config, fused=fused)
    if dtype is not None:
        hf = {k: v.to(dtype) for k, v in hf.items()}
    dtype_name = str(next(iter(hf.values())).dtype).removeprefix("torch.")
    remove_old_weights(out)
    (out / "config.json").write_text(json.dumps(config_to_hf(config, dtype_name), indent=2) + "\n")
    write_sharded(hf, out, max_shard_bytes)
    if tokenizer_dir is not None:
        copy_tokenizer(tokenizer_dir, out)
    write_generation_config(out, config)
    return out


def write_generation_config(out: Path, config: ModelConfig) -> None:
    """generation_config.json; written after the tokenizer files, whose chat template may add a turn-end EOS."""
    gen = generation_config_to_hf(config, turn_end_ids(out))
    (out / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n")


def turn_end_ids(tokenizer_dir: Path) -> tuple[int, ...]:
    """The id of `<|end|>` when the directory's chat template uses it (read from the files, no transformers)."""
    template = ""
    if (tokenizer_dir / "chat_template.jinja").is_file():
        template = (tokenizer_dir / "chat_template.jinja").read_text(encoding="utf-8")
    elif (tokenizer_dir / "tokenizer_config.json").is_file():
        template = str(read_json(tokenizer_dir / "tokenizer_config.json").get("chat_template") or "")
    if TURN_END not in template or not (tokenizer_dir / "tokenizer.json").is_file():
        return ()
    added = read_json(tokenizer_dir / "tokenizer.json").get("added_tokens") or []
    return tuple(t["id"] for t in added if isinstance(t, dict) and t.get("content") == TURN_END)


def read_hf_weights(src: Path) -> dict[str, torch.Tensor]:
    index = src / INDEX_NAME
    if index.is_file():
        weight_map = read_json(index).get("weight_map")
        if not isinstance(weight_map, dict):
            raise ValueError(f"{index} has no weight_map object")
        files = sorted(set(weight_map.values()))
    elif (src / "model.safetensors").is_file():
        files = ["model.safetensors"]
    else:
        raise FileNotFoundError(f"{src} holds no model.safetensors or {INDEX_NAME} (only safetensors are read)")
    sd: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    for name in files:
        shard = read_safetensors(src / name)
        twice = sorted(set(shard) & set(sd))
        if twice:
            raise ValueError(f"{twice[0]} is stored in both {origin[twice[0]]} and {name} ({len(twice)} such keys): "
                             "which copy is meant is ambiguous")
        sd |= shard
        origin |= dict.fromkeys(shard, name)
    if index.is_file():
        lacking = sorted(k for k, f in weight_map.items() if origin.get(k) != f)
        if lacking:
            k = lacking[0]
            raise KeyError(f"{index} puts {k} in {weight_map[k]}, which lacks it ({len(lacking)} such keys)")
    return sd


def load_hf(src: str | Path, **config_overrides) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """Read an HF Llama/Mixtral directory -> (our config, our state dict)."""
    src = Path(src)
    if not (src / "config.json").is_file():
        raise FileNotFoundError(f"{src} has no config.json: not a Hugging Face model directory")
    d = read_json(src / "config.json")
    if d.get("format") == "jpmoe":
        raise ValueError(f"{src} is a jpmoe checkpoint, not a Hugging Face one (to-hf exports it)")
    try:
        config = config_from_hf(d, **config_overrides)
    except ConfigTypeError as e:
        raise ConfigTypeError(f"{src / 'config.json'}: {e}") from None
    except ValueError as e:
        raise ValueError(f"{src / 'config.json'}: {e}") from None
    return config, from_hf_state_dict(read_hf_weights(src), config)


def convert_from_hf(src: str | Path, out: str | Path) -> Path:
    """HF directory -> our checkpoint directory (tokenizer files copied along when present)."""
    config, sd = load_hf(src)
    save_checkpoint(sd, config, out)
    copy_tokenizer(src, out)
    return Path(out)


def load_training_checkpoint(path: str | Path) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """Config and model weights of a training checkpoint step (`.../checkpoints/step-N`, DCP, any world size it was
    saved with); the optimiser state is not read."""
    from jpmoe.model import Transformer
    from jpmoe.train.dcp_checkpoint import checkpoint_model_config, load_model_weights

    config = config_from_dict(checkpoint_model_config(path), Path(path) / "state.json")
    model = Transformer(config)
    load_model_weights(path, model)
    return config, model.state_dict()


def convert_to_hf(ckpt: str | Path, out: str | Path, *, tokenizer_dir=None, max_shard_bytes: int = 5 * 2**30,
                  fused: bool = False, dtype: torch.dtype | None = None) -> Path:
    """Our checkpoint directory (safetensors, or a training checkpoint step) -> HF directory; tokenizer files from
    `tokenizer_dir`, else from `ckpt`."""
    from jpmoe.train.dcp_checkpoint import PREFIX

    path = Path(ckpt)
    if Path(out).resolve() == path.resolve():
        raise ValueError(f"the output directory {out} is the checkpoint itself: its config and weights would be "
                         "overwritten; choose another directory")
    steps = sorted(p.name for p in path.iterdir() if p.is_dir() and p.name.startswith(PREFIX)) if path.is_dir() else []
    if (path / ".metadata").is_file() and (path / "state.json").is_file():
        config, sd = load_training_checkpoint(path)
    elif steps:
        raise ValueError(f"{path} holds training checkpoints ({', '.join(steps[-3:])}): name one step directory")
    else:
        config, sd = load_checkpoint(path)
    return save_hf(sd, config, out, tokenizer_dir=tokenizer_dir if tokenizer_dir is not None else ckpt,
                   max_shard_bytes=max_shard_bytes, fused=fused, dtype=dtype)
