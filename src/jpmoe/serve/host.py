"""A model ready to chat: weights through `jpmoe.load.load_pretrained` (safetensors/DCP only; a damaged config or
weights file is an error naming it), the tokenizer found next to them (local files only), the ids that end an
answer, and prompt encoding through the tokenizer's chat template."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from jpmoe.config import ModelConfig
from jpmoe.load import load_pretrained
from jpmoe.model import Transformer
from jpmoe.tokenizer import TURN_END


class NoChatTemplate(ValueError):
    pass


@dataclass
class ChatModel:
    model: Transformer
    config: ModelConfig
    tokenizer: object  # a transformers tokenizer
    name: str
    path: Path
    stop_ids: tuple[int, ...]  # EOS of the tokenizer, config.json and generation_config.json, and the turn end

    @property
    def max_len(self) -> int:
        return self.config.max_seq_len

    def encode_chat(self, messages: list[dict]) -> list[int]:
        """messages -> prompt ids with the generation prompt (the template writes BOS itself, so the tokenizer
        adds no special tokens; a second BOS is the classic chat-template bug)."""
        if not getattr(self.tokenizer, "chat_template", None):
            raise NoChatTemplate(f"the tokenizer in {self.path} has no chat_template: chat needs one (train it with "
                                 "apps/sft.py, or add chat_template to tokenizer_config.json); plain completions "
                                 "work without it")
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def encode_text(self, text: str) -> list[int]:
        """A raw completion prompt, with the tokenizer's own special tokens (BOS), as transformers and vLLM do."""
        return self.tokenizer(text)["input_ids"]

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)


def _ids(v) -> list[int]:
    if v is None:
        return []
    return [v] if isinstance(v, int) else [i for i in v if isinstance(i, int)]


def stop_ids_of(tokenizer, config: ModelConfig, weights_dir: Path) -> tuple[int, ...]:
    ids = _ids(tokenizer.eos_token_id) + _ids(config.eos_token_id)
    gen = weights_dir / "generation_config.json"
    if gen.is_file():
        try:
            ids += _ids(json.loads(gen.read_text(encoding="utf-8")).get("eos_token_id"))
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as e:
            raise ValueError(f"{gen} is damaged: {e}") from None
    template = getattr(tokenizer, "chat_template", None) or ""
    if TURN_END in template and TURN_END in tokenizer.get_vocab():
        ids.append(tokenizer.convert_tokens_to_ids(TURN_END))
    return tuple(dict.fromkeys(ids))


def load_chat_model(path: str | Path, *, name: str | None = None, device: str | torch.device = "cpu",
                    dtype: torch.dtype | None = None) -> ChatModel:
    from transformers import AutoTokenizer

    loaded = load_pretrained(path, device=device, dtype=dtype)
    if loaded.tokenizer_dir is None:
        raise FileNotFoundError(f"{path}: no tokenizer files (tokenizer.json, tokenizer_config.json) next to the "
                                "weights, in its hf/ export or in the run directory")
    try:
        tok = AutoTokenizer.from_pretrained(str(loaded.tokenizer_dir), local_files_only=True)
    except (OSError, ValueError) as e:
        raise ValueError(f"{loaded.tokenizer_dir}: the tokenizer does not load: {e}") from None
    if len(tok) > loaded.config.vocab_size:
        raise ValueError(f"{loaded.tokenizer_dir}: the tokenizer has {len(tok)} tokens but the model's vocab_size "
                         f"is {loaded.config.vocab_size}: the two do not belong together")
    return ChatModel(model=loaded.model, config=loaded.config, tokenizer=tok,
                     name=name or Path(path).resolve().name, path=loaded.path,
                     stop_ids=stop_ids_of(tok, loaded.config, loaded.path))
