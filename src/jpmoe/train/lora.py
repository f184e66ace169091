"""LoRA (arXiv:2106.09685) adapters on a jpmoe Transformer through peft, and their merge into plain weights.

The adapters are injected in place (`peft.inject_adapter_in_model`), so the model stays a Transformer: the same
forward, generation, FSDP2 wrapping and DCP checkpoints serve it. The merge works on a gathered state dict
(W + scaling * B @ A), so a sharded run exports without touching its live parameters.
"""

from __future__ import annotations

import torch

DEFAULT_TARGETS = ("wq", "wk", "wv", "wo", "w_gate_up", "w_down")  # attention, and dense MLPs' linear layers


def apply_lora(model: torch.nn.Module, *, r: int, alpha: float, dropout: float = 0.0,
               targets: tuple[str, ...] = DEFAULT_TARGETS) -> torch.nn.Module:
    """Inject LoRA adapters into the nn.Linear layers named in `targets` and freeze every other parameter.
    MoE expert weights are grouped tensors, not nn.Linear: under MoE only attention (and a dense MLP) get adapters."""
    from peft import LoraConfig, inject_adapter_in_model

    if r < 1:
        raise ValueError(f"--lora_r must be >= 1, got {r}")
    linear = {name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    found = [t for t in targets if t in linear]
    if not found:
        raise ValueError(f"no nn.Linear named {targets} in the model (it has {sorted(linear)})")
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=found, bias="none")
    model = inject_adapter_in_model(config, model)
    for name, p in model.named_parameters():
        p.requires_grad_("lora_" in name)
    return model


def merge_lora_state_dict(sd: dict[str, torch.Tensor], *, r: int, alpha: float) -> dict[str, torch.Tensor]:
    """A state dict with peft's `<m>.base_layer.weight`, `<m>.lora_A.default.weight` (r, in) and
    `<m>.lora_B.default.weight` (out, r) -> plain `<m>.weight = base + (alpha / r) * B @ A`; other keys unchanged."""
    out: dict[str, torch.Tensor] = {}
    scaling = alpha / r
    for key, value in sd.items():
        if ".lora_" in key:
            continue
        if ".base_layer." in key:
            prefix = key.split(".base_layer.")[0]
            a, b = sd.get(f"{prefix}.lora_A.default.weight"), sd.get(f"{prefix}.lora_B.default.weight")
            value = value.clone()
            if a is not None and b is not None and key.endswith(".weight"):
                value += scaling * (b.float() @ a.float()).to(value.dtype)  # (out, r) @ (r, in)
            key = key.replace(".base_layer.", ".")
        out[key] = value
    return out
