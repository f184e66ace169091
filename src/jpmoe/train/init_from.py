"""Continued pretraining from a public checkpoint (the way Swallow started from Llama): the model built from a
Hugging Face Llama/Mixtral directory (or a jpmoe one) instead of random weights, optionally with its vocabulary
extended for a Japanese tokenizer.

Vocabulary extension: the training tokenizer must keep the checkpoint's tokens at their ids (it extends the
original: the same pieces first, new Japanese pieces appended). The new rows of the input embedding and of the
lm_head are set to the mean of the old rows (Hewitt 2021, "Initializing new word embeddings for pretrained
language models"): a new token starts as an "average" token, so the first steps' loss is not thrown off by
random vectors and the old tokens' predictions are barely changed (the softmax mass the new logits take is the
mean logit's, not a random one's).
"""

from __future__ import annotations

import torch

from jpmoe.config import ModelConfig
from jpmoe.load import LoadedModel, load_pretrained


@torch.no_grad()
def extend_vocabulary(loaded: LoadedModel, vocab_size: int) -> LoadedModel:
    """A copy of the model with `vocab_size` rows in tok_embeddings and lm_head, new rows = mean of the old."""
    from jpmoe.model import Transformer

    old = loaded.config.vocab_size
    if vocab_size < old:
        raise ValueError(f"cannot shrink the vocabulary from {old} to {vocab_size}")
    config = ModelConfig.from_dict(loaded.config.to_dict() | {"vocab_size": vocab_size})
    sd = loaded.model.state_dict()
    for key in ("tok_embeddings.weight", "lm_head.weight"):
        w = sd[key]  # (V_old, H)
        sd[key] = torch.cat([w, w.mean(0, keepdim=True).expand(vocab_size - old, -1)])  # (V_new, H)
    model = Transformer(config)
    model.load_state_dict(sd)
    return LoadedModel(model=model, config=config, kind=loaded.kind, path=loaded.path,
                       tokenizer_dir=loaded.tokenizer_dir)


def check_tokenizer_extends(tokenizer, base_tokenizer, base_vocab: int) -> None:
    """The training tokenizer must give every token of the checkpoint's tokenizer the same id."""
    n = min(len(base_tokenizer), base_vocab)
    ours = tokenizer.convert_ids_to_tokens(list(range(n)))
    theirs = base_tokenizer.convert_ids_to_tokens(list(range(n)))
    bad = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b]
    if bad:
        i = bad[0]
        raise ValueError(f"the tokenizer does not extend the checkpoint's: id {i} is {ours[i]!r} here but "
                         f"{theirs[i]!r} in the checkpoint's tokenizer ({len(bad)} ids differ); its embeddings "
                         "would be read as other tokens")


def init_from_pretrained(path: str, *, tokenizer, kernels: str, seq_len: int, extend_vocab: bool) -> LoadedModel:
    """The checkpoint at `path`, checked against the training tokenizer (and extended to it when asked), with
    max_seq_len raised to `seq_len` when shorter (RoPE positions are not limited by the weights)."""
    from transformers import AutoTokenizer

    loaded = load_pretrained(path, kernels=kernels)
    if loaded.config.max_seq_len < seq_len:
        loaded.config = ModelConfig.from_dict(loaded.config.to_dict() | {"max_seq_len": seq_len})
        loaded.model.config = loaded.config
    if loaded.tokenizer_dir is not None:
        check_tokenizer_extends(tokenizer, AutoTokenizer.from_pretrained(str(loaded.tokenizer_dir)),
                                loaded.config.vocab_size)
    if len(tokenizer) > loaded.config.vocab_size:
        if not extend_vocab:
            raise ValueError(f"the tokenizer has {len(tokenizer)} tokens, the checkpoint {path} embeds "
                             f"{loaded.config.vocab_size}: pass --extend_vocab true to add rows (the mean of the old)")
        loaded = extend_vocabulary(loaded, len(tokenizer))
    loaded.model.train()
    return loaded
