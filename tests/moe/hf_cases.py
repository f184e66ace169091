"""Tiny random configs shared by the HF parity and generation tests (CPU, no downloads)."""

import torch

from jpmoe import ModelConfig, Transformer
from jpmoe.hf import save_hf

# GQA, head_dim != H / n_heads, odd sizes, routing away from uniform (init_std 0.1)
MOE = ModelConfig(vocab_size=97, hidden_size=48, intermediate_size=40, num_layers=2, num_heads=4, num_kv_heads=2,
                  head_dim=10, max_seq_len=64, num_experts=4, experts_per_token=2, init_std=0.1,
                  aux_loss_scope="global", z_loss_coef=0.0, aux_loss_coef=0.02, bos_token_id=None, eos_token_id=None)
MOE_K1 = ModelConfig(**(MOE.to_dict() | {"experts_per_token": 1, "num_experts": 5}))
DENSE = ModelConfig(vocab_size=97, hidden_size=48, intermediate_size=40, num_layers=2, num_heads=6, num_kv_heads=2,
                    max_seq_len=64, init_std=0.1, tie_embeddings=True, rope_type="llama3", rope_factor=8.0,
                    rope_original_max_len=16, rope_theta=500.0, bos_token_id=None, eos_token_id=None)
CONFIGS = {"mixtral": MOE, "mixtral-k1": MOE_K1, "llama": DENSE}


def hf_class(config: ModelConfig):
    from transformers import LlamaForCausalLM, MixtralForCausalLM

    return MixtralForCausalLM if config.is_moe else LlamaForCausalLM


def ours_and_hf(config: ModelConfig, tmp_path, seed: int = 0, **save_kw):
    """Our random model, written as an HF directory and loaded back with transformers (eager backends)."""
    torch.manual_seed(seed)
    ours = Transformer(config).eval()
    save_hf(ours.state_dict(), config, tmp_path, **save_kw)
    extra = {"experts_implementation": "eager"} if config.is_moe else {}
    hf, info = hf_class(config).from_pretrained(tmp_path, output_loading_info=True, attn_implementation="eager",
                                                **extra)
    return ours, hf.eval(), info


def batch_with_padding(vocab: int, B: int = 2, T: int = 16, pad: int = 5, seed: int = 0):
    """ids (B, T), attention mask with `pad` left-padded positions in row 1, and per-row positions."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    mask[1, :pad] = 0
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    return ids, mask, positions
