"""`jpcurate run --config pipeline.toml`: a pipeline from TOML.

    name = "my-pipeline"
    [io]                       # optional: inputs and fields (command-line flags win)
    input = ["data/web.jsonl"]
    text_field = "text"

    [[steps]]
    preset = "ja-web"          # all steps of a preset ...
    [[steps]]
    type = "ClassFraction"     # ... or one step: a class from STEP_TYPES, its keyword arguments
    numer = ["hiragana"]
    denom = ["hiragana", "katakana", "kanji", "ja_punct"]
    lo = 0.2
    name = "hiragana_frac"

Unknown step types and unknown arguments are errors naming the step. `STEP_TYPES` maps names to classes.
"""

from __future__ import annotations

import importlib
import inspect
import tomllib
from pathlib import Path
from typing import Any

from jpcurate.pipeline import Pipeline, Step
from jpcurate.presets import build_preset

_MODULES = tuple(f"jpcurate.steps.{m}" for m in ("normalize", "boilerplate", "langid", "charstats", "lines",
                                                   "repetition", "words", "ngwords", "urlrules", "pii",
                                                   "naturalness", "dedup"))


def step_types() -> dict[str, type]:
    """Every concrete step class of jpcurate by class name."""

    out: dict[str, type] = {}
    for mod_name in _MODULES:
        mod = importlib.import_module(mod_name)
        for name, obj in vars(mod).items():
            if inspect.isclass(obj) and issubclass(obj, Step) and obj.__module__ == mod_name:
                out[name] = obj
    return out


def build_step(spec: dict[str, Any], types: dict[str, type]):
    spec = dict(spec)
    kind = spec.pop("type")
    if kind not in types:
        raise ValueError(f"unknown step type {kind!r}; known: {sorted(types)}")
    cls = types[kind]
    for key in ("numer", "denom", "classes", "langs", "ends"):
        if isinstance(spec.get(key), list):
            spec[key] = tuple(spec[key])
    try:
        return cls(**spec)
    except TypeError as e:
        raise ValueError(f"step {kind}: {e}") from None


def load_config(path: str | Path) -> tuple[Pipeline, dict[str, Any]]:
    with open(path, "rb") as f:
        cfg = tomllib.load(f)
    unknown = set(cfg) - {"name", "io", "steps"}
    if unknown:
        raise ValueError(f"{path}: unknown top-level keys {sorted(unknown)} (expected name, io, steps)")
    types = step_types()
    steps = []
    for i, spec in enumerate(cfg.get("steps", [])):
        if "preset" in spec:
            steps += list(build_preset(spec["preset"], mecab=bool(spec.get("mecab", False))))
        elif "type" in spec:
            steps.append(build_step(spec, types))
        else:
            raise ValueError(f"{path}: step {i} has neither 'type' nor 'preset'")
    if not steps:
        raise ValueError(f"{path}: no steps")
    return Pipeline(steps, name=cfg.get("name", Path(path).stem)), dict(cfg.get("io", {}))
