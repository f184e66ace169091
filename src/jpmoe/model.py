"""Llama-architecture decoder with optional Mixture-of-Experts MLPs; plain single-device modules.

Parallelism (FSDP2, activation checkpointing, compile) is applied from outside by `jpmoe.parallelize`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from jpmoe.attention import Attention, KVCache, attention_mask_4d, rope_cos_sin, rope_inv_freq
from jpmoe.config import ModelConfig
from jpmoe.kernels.dispatch import kernels_for, resolve_kernels
from jpmoe.moe import DenseMLP, MoE, RouterStats, load_balancing_loss, router_z_loss


def packed_mask(segment_ids: torch.Tensor) -> torch.Tensor:
    """Boolean (B, 1, T, T): causal within each packed example; padding (-1) sees only itself (finite softmax)."""
    T = segment_ids.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool, device=segment_ids.device).tril()
    same = segment_ids[:, :, None] == segment_ids[:, None, :]  # (B, T, T)
    own = torch.eye(T, dtype=torch.bool, device=segment_ids.device)
    return ((causal & same) | own)[:, None]


class RMSNorm(nn.Module):
    def __init__(self, hidden_size: int, eps: float, kernels: str = "torch"):
        super().__init__()
        self.eps, self.ops = eps, kernels_for(kernels)
        self.weight = nn.Parameter(torch.ones(hidden_size))

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None):
        """With `residual`, returns (norm(x + residual), x + residual)."""
        return self.ops.rms_norm(x, self.weight, self.eps, residual)


class Block(nn.Module):
    def __init__(self, config: ModelConfig, layer: int):
        super().__init__()
        self.attn_norm = RMSNorm(config.hidden_size, config.rms_norm_eps, config.kernels)
        self.attn = Attention(config, layer)
        self.mlp_norm = RMSNorm(config.hidden_size, config.rms_norm_eps, config.kernels)
        self.mlp = MoE(config) if config.is_moe else DenseMLP(
            config.hidden_size, config.intermediate_size, config.kernels)

    def forward(self, x, cos, sin, mask=None, cache=None, token_mask=None) -> tuple[torch.Tensor, RouterStats | None]:
        a = self.attn(self.attn_norm(x), cos, sin, mask, cache)  # (B, T, H)
        h_norm, h = self.mlp_norm(a, residual=x)  # h = x + a
        if isinstance(self.mlp, MoE):
            y, stats = self.mlp(h_norm, token_mask)
            return h + y, stats
        return h + self.mlp(h_norm), None


@dataclass
class ModelOutput:
    logits: torch.Tensor | None  # (B, T, V) in the model dtype; None with return_hidden=True
    hidden: torch.Tensor | None  # (B, T, H) final normalised hidden states; only with return_hidden=True
    aux_loss: torch.Tensor  # aux_loss_coef * load_balancing_loss + z_loss_coef * z_loss; add it to the LM loss
    load_balancing_loss: torch.Tensor  # unweighted, summed over layers (aux_loss_scope="layer") or global
    z_loss: torch.Tensor  # unweighted, summed over layers
    expert_load: torch.Tensor | None  # (L, E) routed (token, expert) pairs per expert and layer; None if dense


class Transformer(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        # the one kernel decision: "auto" becomes "torch" or "triton" here, and every module gets that path
        config = replace(config, kernels=resolve_kernels(config.kernels))
        self.config = config
        self.tok_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(Block(config, i) for i in range(config.num_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps, config.kernels)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.tok_embeddings.weight
        self.register_buffer("inv_freq", rope_inv_freq(config), persistent=False)
        self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        """Normal(0, init_std) for every matrix, ones for norms; also after `to_empty` from the meta device."""
        self.inv_freq.copy_(rope_inv_freq(self.config))
        for name, p in self.named_parameters():
            if name.endswith("norm.weight"):
                nn.init.ones_(p)
            else:
                nn.init.normal_(p, mean=0.0, std=self.config.init_std)

    def _check_inputs(self, input_ids: torch.Tensor, start: int) -> None:
        cfg = self.config
        if input_ids.dim() != 2 or input_ids.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"input_ids must be an integer tensor (B, T), got {input_ids.dtype} "
                             f"{tuple(input_ids.shape)}")
        if start + input_ids.shape[1] > cfg.max_seq_len:
            raise ValueError(f"sequence length {start + input_ids.shape[1]} exceeds max_seq_len {cfg.max_seq_len}")
        if not torch.compiler.is_compiling() and input_ids.numel():
            lo, hi = int(input_ids.min()), int(input_ids.max())
            if lo < 0 or hi >= cfg.vocab_size:
                raise ValueError(f"token ids must be in [0, {cfg.vocab_size}), got min {lo} max {hi}")

    @staticmethod
    def _check_extras(input_ids: torch.Tensor, position_ids: torch.Tensor | None,
                      attention_mask: torch.Tensor | None, cache: KVCache | None) -> None:
        """position_ids, mask values and cache room: named here rather than a shape error deep in torch."""
        B, T = input_ids.shape
        if position_ids is not None and (position_ids.dim() != 2 or position_ids.shape[1] != T
                                         or position_ids.shape[0] not in (1, B)):
            raise ValueError(f"position_ids must be (B, T) = {(B, T)} or (1, T), got {tuple(position_ids.shape)}")
        if cache is not None:
            if cache.k[0].shape[0] != B:
                raise ValueError(f"input batch {B} does not match the KV cache batch {cache.k[0].shape[0]}")
            if cache.length + T > cache.max_len:
                raise ValueError(f"{cache.length} cached + {T} new positions exceed the KV cache length "
                                 f"{cache.max_len}")
        if (attention_mask is not None and attention_mask.dtype != torch.bool and attention_mask.numel()
                and not torch.compiler.is_compiling()
                and bool(((attention_mask != 0) & (attention_mask != 1)).any())):
            raise ValueError("attention_mask must hold 1 for real tokens and 0 for padding (not an additive "
                             f"0/-inf mask), got values {attention_mask.unique()[:6].tolist()}")

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, cache: KVCache | None = None,
                return_hidden: bool = False, segment_ids: torch.Tensor | None = None) -> ModelOutput:
        """input_ids (B, T); position_ids (B, T) default start..start+T-1; attention_mask (B, S) with S = cached
        length + T, 1 for real tokens and 0 for padding (left padding in batched generation). segment_ids (B, T):
        packed rows (jpalign.collate_packed), a token attends only to earlier tokens of its own example, -1 is
        padding; not with a cache or attention_mask."""
        start = cache.length if cache is not None else 0
        self._check_inputs(input_ids, start)
        self._check_extras(input_ids, position_ids, attention_mask, cache)
        B, T = input_ids.shape
        if position_ids is None:
            position_ids = torch.arange(start, start + T, device=input_ids.device).expand(B, T)
        mask, token_mask = None, None
        if segment_ids is not None:
            if segment_ids.shape != (B, T) or attention_mask is not None or cache is not None:
                raise ValueError(f"segment_ids must be (B, T) = {(B, T)} without attention_mask or cache, got "
                                 f"{tuple(segment_ids.shape)}")
            mask, token_mask = packed_mask(segment_ids), segment_ids >= 0
        elif attention_mask is not None or start > 0:
            if attention_mask is None:
                attention_mask = torch.ones(B, start + T, dtype=torch.bool, device=input_ids.device)
            if attention_mask.shape != (B, start + T):
                raise ValueError(f"attention_mask must be (B, cached + T) = {(B, start + T)}, "
                                 f"got {tuple(attention_mask.shape)}")
            mask = attention_mask_4d(attention_mask, start, T)  # (B, 1, T, S)
            token_mask = attention_mask[:, start:]  # (B, T)
        cos, sin = rope_cos_sin(self.inv_freq, position_ids)  # (B, T, D/2)
        x = self.tok_embeddings(input_ids)  # (B, T, H)
        stats = []
        for block in self.layers:
            x, s = block(x, cos, sin, mask, cache, token_mask)
            if s is not None:
                stats.append(s)
        if cache is not None:
            cache.length += T
        h = self.norm(x)
        logits = None if return_hidden else self.lm_head(h)
        return ModelOutput(logits, h if return_hidden else None, *self._aux_losses(stats, x))

    def _aux_losses(self, stats: list[RouterStats], x: torch.Tensor):
        cfg = self.config
        if not stats:
            zero = x.new_zeros((), dtype=torch.float32)
            return zero, zero, zero, None
        if cfg.aux_loss_scope == "global":  # one Switch loss over all layers' assignments (transformers)
            lb = load_balancing_loss(sum(s.counts for s in stats), sum(s.prob_sum for s in stats),
                                     sum(s.tokens for s in stats))
        else:
            lb = sum(load_balancing_loss(s.counts, s.prob_sum, s.tokens) for s in stats)
        z = sum(router_z_loss(s.z_sum, s.tokens) for s in stats)
        aux = cfg.aux_loss_coef * lb + cfg.z_loss_coef * z
        return aux, lb, z, torch.stack([s.counts for s in stats])  # (L, E)

    def new_cache(self, batch_size: int, max_len: int) -> KVCache:
        p = self.tok_embeddings.weight
        return KVCache(self.config, batch_size, max_len, dtype=p.dtype, device=p.device)
