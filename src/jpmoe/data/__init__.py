"""Pretraining data: token shards on disk and the staged mixture that samples from them."""

from jpmoe.data.mixture import Mixture, MixtureStream, Stage, load_mixture
from jpmoe.data.shards import TokenSource, token_dtype, write_shards

__all__ = ["Mixture", "MixtureStream", "Stage", "TokenSource", "load_mixture", "token_dtype", "write_shards"]
