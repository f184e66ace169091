"""Hugging Face conversion both ways: dense <-> LlamaForCausalLM, MoE <-> MixtralForCausalLM.

CLI: `python -m jpmoe.hf from-hf HF_DIR OUT` and `python -m jpmoe.hf to-hf CKPT OUT [--tokenizer DIR]`.
"""

from jpmoe.hf.configs import config_from_hf, config_to_hf
from jpmoe.hf.convert import convert_from_hf, convert_to_hf, load_hf, save_hf
from jpmoe.hf.keymap import from_hf_state_dict, to_hf_state_dict

__all__ = ["config_from_hf", "config_to_hf", "convert_from_hf", "convert_to_hf", "from_hf_state_dict", "load_hf",
           "save_hf", "to_hf_state_dict"]
