"""Key-map tables between our state dict and transformers' Llama/Mixtral ones, and the tensor conversion.

Disk layout (what every Mixtral checkpoint on the Hub and transformers' save_pretrained use): per-expert
`block_sparse_moe.experts.{e}.w1|w3|w2.weight`. transformers 5.x fuses them in memory as
`mlp.experts.gate_up_proj` (E, 2I, H) (w1 rows first, then w3) and `mlp.experts.down_proj` (E, H, I): the same
layout as ours, so conversion only stacks and slices. Both spellings are read; `fused=True` writes the fused one.
"""

from __future__ import annotations

import re

import torch

from jpmoe.config import ModelConfig
from jpmoe.model_dir import check_state_dict, check_tied_lm_head, expected_shapes

# ours -> HF; "{i}" is the layer index
SHARED_KEYS = {
    "tok_embeddings.weight": "model.embed_tokens.weight",
    "norm.weight": "model.norm.weight",
    "lm_head.weight": "lm_head.weight",
}
LAYER_KEYS = {
    "layers.{i}.attn_norm.weight": "model.layers.{i}.input_layernorm.weight",
    "layers.{i}.mlp_norm.weight": "model.layers.{i}.post_attention_layernorm.weight",
    "layers.{i}.attn.wq.weight": "model.layers.{i}.self_attn.q_proj.weight",
    "layers.{i}.attn.wk.weight": "model.layers.{i}.self_attn.k_proj.weight",
    "layers.{i}.attn.wv.weight": "model.layers.{i}.self_attn.v_proj.weight",
    "layers.{i}.attn.wo.weight": "model.layers.{i}.self_attn.o_proj.weight",
}
DENSE_MLP = "model.layers.{i}.mlp.{name}_proj.weight"  # name: gate | up | down  (I, H), (I, H), (H, I)
ROUTER = "model.layers.{i}.block_sparse_moe.gate.weight"  # (E, H)
EXPERT = "model.layers.{i}.block_sparse_moe.experts.{e}.{w}.weight"  # w1 (I, H) gate, w3 (I, H) up, w2 (H, I)
FUSED_ROUTER = "model.layers.{i}.mlp.gate.weight"
FUSED_GATE_UP = "model.layers.{i}.mlp.experts.gate_up_proj"  # (E, 2I, H)
FUSED_DOWN = "model.layers.{i}.mlp.experts.down_proj"  # (E, H, I)
IGNORED = re.compile(r".*rotary_emb\.inv_freq$")  # buffers some old checkpoints carry


def to_hf_state_dict(sd: dict[str, torch.Tensor], config: ModelConfig, *, fused: bool = False):
    """Our state dict -> transformers' keys (per-expert disk keys unless `fused`). Tensors are new, contiguous."""
    if config.shared_expert_size:
        raise ValueError("a shared expert has no place in MixtralForCausalLM; convert a model without one")
    if config.is_moe and not config.router_renormalize:
        raise ValueError("MixtralForCausalLM always renormalises the top-k weights; router_renormalize=False "
                         "cannot be converted")
    check_state_dict(sd, config)
    out = {hf: sd[ours] for ours, hf in SHARED_KEYS.items() if ours in sd and ours in expected_shapes(config)}
    inter = config.intermediate_size
    for i in range(config.num_layers):
        out |= {hf.format(i=i): sd[ours.format(i=i)] for ours, hf in LAYER_KEYS.items()}
        p = f"layers.{i}.mlp."
        if not config.is_moe:
            gate_up = sd[p + "w_gate_up.weight"]  # (2I, H)
            out[DENSE_MLP.format(i=i, name="gate")] = gate_up[:inter]
            out[DENSE_MLP.format(i=i, name="up")] = gate_up[inter:]
            out[DENSE_MLP.format(i=i, name="down")] = sd[p + "w_down.weight"]
        elif fused:
            out[FUSED_ROUTER.format(i=i)] = sd[p + "router.weight"]
            out[FUSED_GATE_UP.format(i=i)] = sd[p + "w_gate_up"]
            out[FUSED_DOWN.format(i=i)] = sd[p + "w_down"]
        else:
            out[ROUTER.format(i=i)] = sd[p + "router.weight"]
            gate_up, down = sd[p + "w_gate_up"], sd[p + "w_down"]  # (E, 2I, H), (E, H, I)
            for e in range(config.num_experts):
                out[EXPERT.format(i=i, e=e, w="w1")] = gate_up[e, :inter]
                out[EXPERT.format(i=i, e=e, w="w3")] = gate_up[e, inter:]
                out[EXPERT.format(i=i, e=e, w="w2")] = down[e]
    return {k: v.detach().contiguous().clone() for k, v in out.items()}


def from_hf_state_dict(hf: dict[str, torch.Tensor], config: ModelConfig) -> dict[str, torch.Tensor]:
    """transformers' keys (per-expert or fused) -> our state dict; every HF key must be used exactly once."""
    hf = {k.replace(".block_sparse_moe.", ".mlp."): v for k, v in hf.items() if not IGNORED.match(k)}
    used: set[str] = set()

    def take(key: str) -> torch.Tensor:
        key = key.replace(".block_sparse_moe.", ".mlp.")
        if key not in hf:
            raise KeyError(f"missing key in the Hugging Face checkpoint: {key}")
        used.add(key)
        return hf[key]

    def take_expert(i: int, e: int, w: str) -> torch.Tensor:  # shape checked before the experts are stacked
        t = take(EXPERT.format(i=i, e=e, w=w))
        want = (config.hidden_size, config.intermediate_size) if w == "w2" else \
            (config.intermediate_size, config.hidden_size)
        if tuple(t.shape) != want:
            raise ValueError(f"{EXPERT.format(i=i, e=e, w=w)}: {tuple(t.shape)} != expected {want}")
        return t

    sd = {ours: take(h) for ours, h in SHARED_KEYS.items() if ours != "lm_head.weight"}
    if config.tie_embeddings:
        if "lm_head.weight" in hf:  # some exporters still write the tied copy: it must be the embedding
            check_tied_lm_head(hf["lm_head.weight"], sd["tok_embeddings.weight"],
                               "lm_head.weight and model.embed_tokens.weight")
        used.add("lm_head.weight")
    else:
        sd["lm_head.weight"] = take("lm_head.weight")
    for i in range(config.num_layers):
        sd |= {ours.format(i=i): take(h.format(i=i)) for ours, h in LAYER_KEYS.items()}
        p = f"layers.{i}.mlp."
        if not config.is_moe:
            gate, up = take(DENSE_MLP.format(i=i, name="gate")), take(DENSE_MLP.format(i=i, name="up"))
            sd[p + "w_gate_up.weight"] = torch.cat([gate, up], dim=0)  # (2I, H)
            sd[p + "w_down.weight"] = take(DENSE_MLP.format(i=i, name="down"))
            continue
        sd[p + "router.weight"] = take(ROUTER.format(i=i))
        if FUSED_GATE_UP.format(i=i) in hf:
            sd[p + "w_gate_up"] = take(FUSED_GATE_UP.format(i=i))
            sd[p + "w_down"] = take(FUSED_DOWN.format(i=i))
            continue
        experts = range(config.num_experts)
        sd[p + "w_gate_up"] = torch.stack([torch.cat([take_expert(i, e, "w1"), take_expert(i, e, "w3")])
                                           for e in experts])
        sd[p + "w_down"] = torch.stack([take_expert(i, e, "w2") for e in experts])
    unused = sorted(set(hf) - used)
    if unused:
        raise KeyError(f"{len(unused)} Hugging Face keys do not fit the config (e.g. more layers or experts than "
                       f"the config says): {unused[:8]}")
    check_state_dict(sd, config)
    return sd
