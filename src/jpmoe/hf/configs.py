"""ModelConfig <-> transformers' config.json for LlamaForCausalLM (dense) and MixtralForCausalLM (MoE).

Written without importing transformers (a development-only dependency): the fields are those of
transformers 5.x (`rope_parameters`, `dtype`), and v4-style files (top-level `rope_theta`, `rope_scaling`) are read
too. The export also writes the v4 spellings with the same values (transformers 5 reads `rope_parameters` first):
a v4 reader (vLLM pinned to transformers 4.x) would otherwise take Mixtral's default rope_theta 1e6 and give other
logits without a word.
"""

from __future__ import annotations

from dataclasses import replace

from jpmoe.config import ConfigTypeError, ModelConfig, check_kind

ARCHITECTURES = {"LlamaForCausalLM": "llama", "MixtralForCausalLM": "mixtral"}


def config_to_hf(config: ModelConfig, dtype: str = "float32") -> dict:
    arch = "MixtralForCausalLM" if config.is_moe else "LlamaForCausalLM"
    rope = {"rope_theta": config.rope_theta, "rope_type": config.rope_type}
    if config.rope_type in ("linear", "llama3"):
        rope["factor"] = config.rope_factor
    if config.rope_type == "llama3":
        rope |= {"low_freq_factor": config.rope_low_freq_factor, "high_freq_factor": config.rope_high_freq_factor,
                 "original_max_position_embeddings": config.rope_original_max_len}
    d = {
        "architectures": [arch], "model_type": ARCHITECTURES[arch],
        "vocab_size": config.vocab_size, "hidden_size": config.hidden_size,
        "intermediate_size": config.intermediate_size, "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads, "num_key_value_heads": config.num_kv_heads,
        "head_dim": config.head_dim, "hidden_act": "silu", "max_position_embeddings": config.max_seq_len,
        "rms_norm_eps": config.rms_norm_eps, "rope_parameters": rope, "tie_word_embeddings": config.tie_embeddings,
        "initializer_range": config.init_std, "attention_dropout": 0.0, "use_cache": True,
        "bos_token_id": config.bos_token_id, "eos_token_id": _eos(config),
        "pad_token_id": config.pad_token_id, "dtype": dtype,
        "rope_theta": config.rope_theta, "torch_dtype": dtype,  # the transformers 4.x spellings, same values
    }
    if config.rope_type != "default":
        d["rope_scaling"] = {k: v for k, v in rope.items() if k != "rope_theta"}
    if config.is_moe:
        d |= {"num_local_experts": config.num_experts, "num_experts_per_tok": config.experts_per_token,
              "router_aux_loss_coef": config.aux_loss_coef, "router_jitter_noise": 0.0,
              "output_router_logits": False, "sliding_window": None,
              # training-only settings transformers has no field for; read back by config_from_hf
              "jpmoe": {"z_loss_coef": config.z_loss_coef, "aux_loss_scope": config.aux_loss_scope}}
    else:
        d |= {"attention_bias": False, "mlp_bias": False, "pretraining_tp": 1}
    return d


def _eos(config: ModelConfig) -> int | list[int] | None:
    return list(config.eos_token_id) if isinstance(config.eos_token_id, tuple) else config.eos_token_id


def generation_config_to_hf(config: ModelConfig, turn_end_ids: tuple[int, ...] = ()) -> dict:
    """`turn_end_ids`: tokens the chat template closes a turn with (jpmoe's `<|end|>`), listed as EOS too, so
    transformers' generate and vLLM stop there as our server does."""
    eos = _eos(config)
    listed = eos if isinstance(eos, list) else [] if eos is None else [eos]
    extra = [i for i in turn_end_ids if i not in listed]
    d = {"bos_token_id": config.bos_token_id, "eos_token_id": listed + extra if extra else eos}
    if config.pad_token_id is not None:
        d["pad_token_id"] = config.pad_token_id
    return d


# transformers' class defaults for the fields a config.json may leave out (LlamaConfig / MixtralConfig 5.x): a
# hand-written or trimmed config must load as transformers loads it
DEFAULTS = {
    "LlamaForCausalLM": {"rms_norm_eps": 1e-6, "rope_theta": 10000.0, "max_position_embeddings": 2048},
    "MixtralForCausalLM": {"rms_norm_eps": 1e-5, "rope_theta": 1e6, "max_position_embeddings": 4096 * 32,
                           "num_local_experts": 8, "num_experts_per_tok": 2, "router_aux_loss_coef": 0.001},
}
ROPE_KEYS = {"linear": ("factor",),
             "llama3": ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")}


def _rope_fields(d: dict, default_theta: float) -> dict:
    rope = dict(d.get("rope_parameters") or {})
    if not rope:  # transformers 4.x spelling
        rope = dict(d.get("rope_scaling") or {})
        rope.setdefault("rope_theta", d.get("rope_theta", default_theta))
        if "type" in rope:
            rope.setdefault("rope_type", rope.pop("type"))
    rope_type = rope.get("rope_type", "default")
    if rope_type not in ("default", "linear", "llama3"):
        raise ValueError(f"rope_type {rope_type!r} is not supported (supported: default, linear, llama3)")
    missing = [k for k in ROPE_KEYS.get(rope_type, ()) if k not in rope]
    if missing:
        raise ValueError(f"rope_type {rope_type!r} needs {missing} in rope_parameters")
    out = {"rope_theta": float(rope.get("rope_theta", default_theta)), "rope_type": rope_type}
    if rope_type != "default":
        out["rope_factor"] = float(rope["factor"])
    if rope_type == "llama3":
        out |= {"rope_low_freq_factor": float(rope["low_freq_factor"]),
                "rope_high_freq_factor": float(rope["high_freq_factor"]),
                "rope_original_max_len": int(rope["original_max_position_embeddings"])}
    return out


def _reject_unsupported(d: dict) -> None:
    for flag in ("attention_bias", "mlp_bias"):
        if d.get(flag):
            raise ValueError(f"{flag}=true is not supported: the model has no biases")
    if d.get("hidden_act", "silu") != "silu":
        raise ValueError(f"hidden_act {d['hidden_act']!r} is not supported (only silu/SwiGLU)")
    if d.get("pretraining_tp", 1) != 1:
        raise ValueError("pretraining_tp != 1 is not supported")


# the JSON type of every field config_from_hf reads (config.KIND_CHECKS); null stands for "left out" where allowed
HF_FIELD_KINDS = {
    "vocab_size": "int", "hidden_size": "int", "intermediate_size": "int", "num_hidden_layers": "int",
    "num_attention_heads": "int", "num_key_value_heads": "int?", "head_dim": "int?", "max_position_embeddings": "int",
    "rms_norm_eps": "float", "rope_theta": "float", "tie_word_embeddings": "bool", "initializer_range": "float",
    "bos_token_id": "int?", "eos_token_id": "ids?", "pad_token_id": "int?", "num_local_experts": "int",
    "num_experts_per_tok": "int", "router_aux_loss_coef": "float", "sliding_window": "int?",
    "attention_bias": "bool", "mlp_bias": "bool", "hidden_act": "str", "pretraining_tp": "int",
    "rope_parameters": "dict?", "rope_scaling": "dict?", "jpmoe": "dict?",
}
ROPE_FIELD_KINDS = {"rope_theta": "float", "rope_type": "str", "type": "str", "factor": "float",
                    "low_freq_factor": "float", "high_freq_factor": "float", "original_max_position_embeddings": "int"}


def _check_types(d: dict) -> None:
    """Every field config_from_hf reads has its JSON type (`"hidden_size": "64"` is an error naming it)."""
    for name, kind in HF_FIELD_KINDS.items():
        if name in d and (d[name] is not None or kind.endswith("?")):
            check_kind("config.json", name, d[name], kind)
    for group in ("rope_parameters", "rope_scaling"):
        for name, value in (d.get(group) or {}).items():
            if name in ROPE_FIELD_KINDS:
                check_kind(f"config.json {group}", name, value, ROPE_FIELD_KINDS[name])


def config_from_hf(d: dict, **overrides) -> ModelConfig:
    """A transformers config.json dict -> ModelConfig. Raises ValueError for other architectures or features, and
    ConfigTypeError (a ValueError) for a field of the wrong type."""
    archs = d.get("architectures") or []
    if not isinstance(archs, list):
        raise ConfigTypeError(f"config.json field 'architectures' must be a list, got {archs!r}")
    arch = next((a for a in archs if a in ARCHITECTURES), None)
    if arch is None:
        raise ValueError(f"unsupported architecture {archs or d.get('model_type')!r}: only "
                         f"{', '.join(ARCHITECTURES)} can be converted")
    _check_types(d)
    _reject_unsupported(d)
    need = [k for k in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")
            if d.get(k) is None]
    if need:
        raise ValueError(f"the Hugging Face config lacks {need}")
    # null where null has no meaning of its own is a field left out: transformers' default applies
    d = DEFAULTS[arch] | {k: v for k, v in d.items() if v is not None or HF_FIELD_KINDS.get(k, "").endswith("?")}
    n_heads = d["num_attention_heads"]
    max_len = d["max_position_embeddings"]
    eos = d.get("eos_token_id")  # a list (Llama 3.1) is kept whole: generation must stop at each of them
    if isinstance(eos, list):
        eos = eos[0] if len(eos) == 1 else tuple(eos) or None
    kw = dict(
        vocab_size=d["vocab_size"], hidden_size=d["hidden_size"], intermediate_size=d["intermediate_size"],
        num_layers=d["num_hidden_layers"], num_heads=n_heads, num_kv_heads=d.get("num_key_value_heads") or n_heads,
        head_dim=d.get("head_dim") or 0, max_seq_len=max_len, rms_norm_eps=d["rms_norm_eps"],
        tie_embeddings=bool(d.get("tie_word_embeddings", False)), init_std=d.get("initializer_range", 0.02),
        bos_token_id=d.get("bos_token_id"), eos_token_id=eos,
        pad_token_id=d.get("pad_token_id"), **_rope_fields(d, DEFAULTS[arch]["rope_theta"]),
    )
    if arch == "MixtralForCausalLM":
        window = d.get("sliding_window")
        if window is not None and window < max_len:
            # sliding-window attention equals full causal attention on sequences no longer than the window
            kw["max_seq_len"] = window
        kw |= dict(num_experts=d["num_local_experts"], experts_per_token=d["num_experts_per_tok"],
                   aux_loss_coef=d["router_aux_loss_coef"], aux_loss_scope="global")
        kw |= {k: v for k, v in (d.get("jpmoe") or {}).items() if k in ("z_loss_coef", "aux_loss_scope")}
    return replace(ModelConfig(**kw), **overrides)
