"""Naturalness: a character n-gram Kneser-Ney language model (numpy) and the pipeline step that uses it.

    from jpcurate.lm import load_default_model
    lm = load_default_model()
    lm.perplexity("吾輩は猫である。名前はまだ無い。"), lm.bucket(...)

The default model (`jpcurate/data/charlm_ja.npz`) is trained on Aozora Bunko works by authors outside the
evaluation set (public domain) and the UD Japanese GSD dev sentences (CC BY-SA 4.0), never on an evaluation set:
see `jpcurate.lm.build_default` (`python -m jpcurate.lm.build_default --shared ../shared/data`).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from jpcurate.lm.model import CharLM

DEFAULT_MODEL = "charlm_ja.npz"


@lru_cache(maxsize=4)
def load_model(path: str | None = None) -> CharLM:
    if path is None:
        with resources.as_file(resources.files("jpcurate").joinpath(f"data/{DEFAULT_MODEL}")) as p:
            return CharLM.load(p)
    return CharLM.load(path)


def load_default_model() -> CharLM:
    return load_model(None)


__all__ = ["CharLM", "load_default_model", "load_model"]
