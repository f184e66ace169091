"""Model configuration: one frozen dataclass and a table of named presets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace

ROPE_TYPES = ("default", "linear", "llama3")
AUX_LOSS_SCOPES = ("layer", "global")
KERNEL_CHOICES = ("auto", "torch", "triton")


class ConfigTypeError(TypeError, ValueError):
    """A config field of the wrong type (a ValueError too, so that every bad-input handler reports it)."""


def check_kind(where: str, name: str, value, kind: str) -> None:
    """Raise ConfigTypeError naming `where` and the field when `value` is not of `kind` (a KIND_CHECKS key)."""
    if not KIND_CHECKS[kind](value):
        raise ConfigTypeError(f"{where} field {name!r} must be {KIND_NAMES[kind]}, got {value!r} "
                              f"({type(value).__name__})")


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int = 32000
    hidden_size: int = 512
    intermediate_size: int = 1408  # per expert when num_experts > 0
    num_layers: int = 8
    num_heads: int = 8
    num_kv_heads: int = 8
    head_dim: int = 0  # 0: hidden_size // num_heads
    max_seq_len: int = 2048
    rope_theta: float = 10000.0
    rope_type: str = "default"  # "default" | "linear" | "llama3" (as transformers' rope_parameters)
    rope_factor: float = 1.0  # linear and llama3 scaling factor
    rope_low_freq_factor: float = 1.0  # llama3 only
    rope_high_freq_factor: float = 4.0  # llama3 only
    rope_original_max_len: int = 8192  # llama3 only: context length of the unscaled model
    rms_norm_eps: float = 1e-5
    tie_embeddings: bool = False
    init_std: float = 0.02
    # Mixture of Experts
    num_experts: int = 0  # 0: dense SwiGLU MLP
    experts_per_token: int = 2
    router_renormalize: bool = True  # softmax -> top-k -> renormalise (Mixtral); False keeps the softmax weights
    shared_expert_size: int = 0  # intermediate size of an always-on shared SwiGLU expert; 0: none
    aux_loss_coef: float = 0.01  # load-balancing loss (Switch, arXiv:2101.03961) coefficient
    aux_loss_scope: str = "layer"  # "layer": sum of per-layer losses; "global": one loss over all layers (HF)
    z_loss_coef: float = 0.001  # router z-loss (ST-MoE, arXiv:2202.08906) coefficient
    # token ids written to the Hugging Face configs; the model itself does not use them
    bos_token_id: int | None = 1
    eos_token_id: int | tuple[int, ...] | None = 2  # several (Llama 3.1: end_of_text, eom, eot) kept as a tuple
    pad_token_id: int | None = None
    # "torch": plain-torch ops; "triton": Triton kernels (CUDA, or TRITON_INTERPRET=1); "auto": "triton" where the
    # model runs on CUDA and Triton can run, else "torch", decided once when the model is built (jpmoe.kernels.dispatch)
    kernels: str = "torch"

    def __post_init__(self) -> None:
        if isinstance(self.eos_token_id, list):  # from JSON
            object.__setattr__(self, "eos_token_id", tuple(self.eos_token_id))
        self._check_types()
        self._check_sizes()
        if self.head_dim == 0:
            if self.hidden_size % self.num_heads:
                raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
            object.__setattr__(self, "head_dim", self.hidden_size // self.num_heads)
        if self.head_dim % 2:
            raise ValueError(f"head_dim must be even for rotary embeddings, got {self.head_dim}")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads {self.num_heads} is not divisible by num_kv_heads {self.num_kv_heads}")
        if self.num_experts and not 0 < self.experts_per_token <= self.num_experts:
            raise ValueError(f"experts_per_token must be in 1..{self.num_experts}, got {self.experts_per_token}")
        if self.rope_type not in ROPE_TYPES:
            raise ValueError(f"rope_type must be one of {ROPE_TYPES}, got {self.rope_type!r}")
        if self.aux_loss_scope not in AUX_LOSS_SCOPES:
            raise ValueError(f"aux_loss_scope must be one of {AUX_LOSS_SCOPES}, got {self.aux_loss_scope!r}")
        if self.shared_expert_size and not self.num_experts:
            raise ValueError("shared_expert_size needs num_experts > 0 (a dense model has no experts to share)")
        if self.kernels not in KERNEL_CHOICES:  # whether triton can run here is checked when the model is built
            raise ValueError(f"kernels must be one of {KERNEL_CHOICES}, not {self.kernels!r}")

    def _check_types(self) -> None:
        """Each field has its annotated JSON type (`"num_layers": "2"` would fail later inside a comparison, and
        `"eos_token_id": "2"` would be written to the Hugging Face config as a string); an int is accepted for a
        float field and stored as a float."""
        for f in dataclasses.fields(self):
            value, kind = getattr(self, f.name), FIELD_KINDS[f.name]
            check_kind("ModelConfig", f.name, value, kind)
            if kind == "float":
                object.__setattr__(self, f.name, float(value))

    def _check_sizes(self) -> None:
        """Sizes and rotary settings that would crash deep in torch (or give NaN) are named here instead."""
        for name in ("vocab_size", "hidden_size", "intermediate_size", "num_layers", "num_heads", "num_kv_heads",
                     "max_seq_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("head_dim", "num_experts", "shared_expert_size"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("rope_theta", "rope_factor", "rms_norm_eps"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.rope_type == "default" and self.rope_factor != 1.0:
            raise ValueError(f"rope_factor {self.rope_factor} has no effect with rope_type 'default': "
                             "set rope_type 'linear' or 'llama3'")
        if self.rope_type == "llama3" and not self.rope_high_freq_factor > self.rope_low_freq_factor:
            raise ValueError(f"llama3 rope needs rope_high_freq_factor > rope_low_freq_factor, got "
                             f"{self.rope_high_freq_factor} and {self.rope_low_freq_factor}")

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    def num_params(self, active: bool = False) -> int:
        """Parameter count; `active=True` counts only the experts one token uses."""
        H, V = self.hidden_size, self.vocab_size
        attn = H * self.head_dim * (2 * self.num_heads + 2 * self.num_kv_heads)
        if self.is_moe:
            n_e = self.experts_per_token if active else self.num_experts
            mlp = n_e * 3 * H * self.intermediate_size + self.num_experts * H + 3 * H * self.shared_expert_size
        else:
            mlp = 3 * H * self.intermediate_size
        embed = V * H * (1 if self.tie_embeddings else 2)
        return self.num_layers * (attn + mlp + 2 * H) + H + embed

    def to_dict(self) -> dict:
        """Plain JSON types (a tuple of eos ids as a list), so the dict equals itself read back from JSON."""
        d = dataclasses.asdict(self)
        if isinstance(d["eos_token_id"], tuple):
            d["eos_token_id"] = list(d["eos_token_id"])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown ModelConfig fields: {unknown}")
        return cls(**d)

    @classmethod
    def preset(cls, name: str, **overrides) -> ModelConfig:
        """A named preset with `overrides`; head_dim follows the (overridden) hidden_size / num_heads unless given:
        no preset sets it, and the preset's derived value would silently change the attention width."""
        if name not in PRESETS:
            raise KeyError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}")
        return replace(PRESETS[name], **({"head_dim": 0} | overrides))


def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)  # JSON true is not the integer 1


KIND_CHECKS = {
    "int": is_int,
    "float": lambda v: isinstance(v, float) or is_int(v),
    "bool": lambda v: isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "int?": lambda v: v is None or is_int(v),
    "ids?": lambda v: v is None or is_int(v) or (isinstance(v, (tuple, list)) and v and all(map(is_int, v))),
    "dict?": lambda v: v is None or isinstance(v, dict),
}
KIND_NAMES = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
              "int?": "an integer or null", "ids?": "an integer, a non-empty list of integers or null",
              "dict?": "an object or null"}
# the annotation of each field as one of KIND_CHECKS (annotations are strings under `from __future__`)
FIELD_KINDS = {f.name: {"int": "int", "float": "float", "bool": "bool", "str": "str", "int | None": "int?",
                        "int | tuple[int, ...] | None": "ids?"}[f.type] for f in dataclasses.fields(ModelConfig)}


PRESETS: dict[str, ModelConfig] = {
    # tiny MoE used by the tests and the demo
    "debug": ModelConfig(
        vocab_size=512, hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4, num_kv_heads=2,
        max_seq_len=256, num_experts=4, experts_per_token=2,
    ),
    "debug-dense": ModelConfig(
        vocab_size=512, hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4, num_kv_heads=2,
        max_seq_len=256,
    ),
    # dense, the shape of JackFram/llama-160m (~162M parameters)
    "llama-160m": ModelConfig(
        vocab_size=32000, hidden_size=768, intermediate_size=3072, num_layers=12, num_heads=12, num_kv_heads=12,
        max_seq_len=2048,
    ),
    # ~0.51B total, ~0.20B active
    "moe-0.5b": ModelConfig(
        vocab_size=32000, hidden_size=1024, intermediate_size=1408, num_layers=12, num_heads=16, num_kv_heads=4,
        max_seq_len=4096, num_experts=8, experts_per_token=2, rope_theta=500000.0,
    ),
    # ~1.1B total, ~0.4B active
    "moe-1b": ModelConfig(
        vocab_size=32000, hidden_size=1536, intermediate_size=1536, num_layers=16, num_heads=16, num_kv_heads=4,
        max_seq_len=4096, num_experts=8, experts_per_token=2, rope_theta=500000.0,
    ),
    # ~1.9B total, ~0.76B active (0.63B without the embeddings): the multi-node run of
    # apps/configs/pretrain_moe_2b.toml
    "moe-2b": ModelConfig(
        vocab_size=32000, hidden_size=2048, intermediate_size=1280, num_layers=24, num_heads=16, num_kv_heads=4,
        max_seq_len=4096, num_experts=8, experts_per_token=2, rope_theta=500000.0,
    ),
    # fine-grained: 64 experts, 8 active per token (~6.7B total, ~1.1B active)
    "moe-7b-e64": ModelConfig(
        vocab_size=32000, hidden_size=2048, intermediate_size=1024, num_layers=16, num_heads=16, num_kv_heads=4,
        max_seq_len=4096, num_experts=64, experts_per_token=8, rope_theta=500000.0,
    ),
    # the shape of mistralai/Mixtral-8x7B-v0.1 (~46.7B total, ~12.9B active)
    "mixtral-8x7b": ModelConfig(
        vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_layers=32, num_heads=32, num_kv_heads=8,
        max_seq_len=32768, rope_theta=1e6, num_experts=8, experts_per_token=2, aux_loss_coef=0.02,
    ),
    # dense, Llama-3-8B's layer shape with 36 layers and a 32k vocabulary (~8.1B): docs/pipeline.md's dense recipe
    "dense-8b": ModelConfig(
        vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_layers=36, num_heads=32, num_kv_heads=8,
        max_seq_len=8192, rope_theta=500000.0,
    ),
}
