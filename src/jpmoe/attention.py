"""Grouped-query causal self-attention with rotary embeddings and an optional KV cache."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from jpmoe.config import ModelConfig
from jpmoe.kernels.dispatch import kernels_for


def rope_inv_freq(config: ModelConfig) -> torch.Tensor:
    """Inverse frequencies (D/2,) in fp32, computed as transformers does for rope_type default/linear/llama3."""
    dim = config.head_dim
    inv_freq = 1.0 / (config.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    if config.rope_type == "linear":
        return inv_freq / config.rope_factor
    if config.rope_type == "llama3":  # arXiv:2407.21783: scale long wavelengths, keep short ones, blend between
        factor, old_len = config.rope_factor, config.rope_original_max_len
        low, high = config.rope_low_freq_factor, config.rope_high_freq_factor
        wavelen = 2 * math.pi / inv_freq
        scaled = torch.where(wavelen > old_len / low, inv_freq / factor, inv_freq)
        smooth = (old_len / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < old_len / high) * ~(wavelen > old_len / low)
        return torch.where(medium, smoothed, scaled)
    return inv_freq


def rope_cos_sin(inv_freq: torch.Tensor, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """position_ids (B, T) -> cos, sin (B, T, D/2) in fp32."""
    freqs = position_ids[..., None].float() * inv_freq.float()  # (B, T, D/2)
    return freqs.cos(), freqs.sin()


class KVCache:
    """Preallocated keys and values of every layer: (B, n_kv, S_max, D) each, filled up to `length`."""

    def __init__(self, config: ModelConfig, batch_size: int, max_len: int, *, dtype: torch.dtype,
                 device: torch.device | str = "cpu"):
        if max_len > config.max_seq_len:
            raise ValueError(f"cache length {max_len} exceeds max_seq_len {config.max_seq_len}")
        shape = (batch_size, config.num_kv_heads, max_len, config.head_dim)
        self.k = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(config.num_layers)]
        self.v = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(config.num_layers)]
        self.length = 0  # positions written by the previous forward calls
        self.max_len = max_len

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write k, v (B, n_kv, T, D) after the cached positions; return all keys and values so far."""
        end = self.length + k.shape[2]
        self.k[layer][:, :, self.length : end] = k
        self.v[layer][:, :, self.length : end] = v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]


def attention_mask_4d(key_mask: torch.Tensor, start: int, q_len: int) -> torch.Tensor:
    """Boolean (B, 1, T, S) mask: causal over absolute positions and no padded keys.

    key_mask: (B, S) True for real tokens. A padded query may see no key at all; it is allowed its own position
    so that its softmax stays finite (its output is never used).
    """
    S = key_mask.shape[1]
    q_pos = torch.arange(start, start + q_len, device=key_mask.device)[:, None]  # (T, 1)
    k_pos = torch.arange(S, device=key_mask.device)[None, :]  # (1, S)
    allowed = (k_pos <= q_pos)[None] & key_mask[:, None, :].bool()  # (B, T, S)
    allowed = allowed | (k_pos == q_pos)[None]
    return allowed[:, None]  # (B, 1, T, S)


class Attention(nn.Module):
    def __init__(self, config: ModelConfig, layer: int):
        super().__init__()
        self.config, self.layer = config, layer
        self.ops = kernels_for(config.kernels)
        H, D = config.hidden_size, config.head_dim
        self.wq = nn.Linear(H, config.num_heads * D, bias=False)
        self.wk = nn.Linear(H, config.num_kv_heads * D, bias=False)
        self.wv = nn.Linear(H, config.num_kv_heads * D, bias=False)
        self.wo = nn.Linear(config.num_heads * D, H, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None = None,
                cache: KVCache | None = None) -> torch.Tensor:
        cfg = self.config
        B, T, _ = x.shape
        q = self.wq(x).view(B, T, cfg.num_heads, cfg.head_dim)  # (B, T, nH, D)
        k = self.wk(x).view(B, T, cfg.num_kv_heads, cfg.head_dim)  # (B, T, nKV, D)
        v = self.wv(x).view(B, T, cfg.num_kv_heads, cfg.head_dim)
        q = self.ops.rotary(q, cos, sin).transpose(1, 2)  # (B, nH, T, D)
        k = self.ops.rotary(k, cos, sin).transpose(1, 2)  # (B, nKV, T, D)
        v = v.transpose(1, 2)
        if cache is not None:
            k, v = cache.update(self.layer, k, v)  # (B, nKV, S, D)
        # the model passes a mask whenever keys are not exactly the causal prefix (padding, cached positions)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=mask is None, scale=cfg.head_dim**-0.5,
            enable_gqa=cfg.num_kv_heads != cfg.num_heads,
        )  # (B, nH, T, D)
        return self.wo(y.transpose(1, 2).reshape(B, T, cfg.num_heads * cfg.head_dim))
