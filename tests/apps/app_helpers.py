"""Helpers for the app tests: the repository root, the subprocess environment, loading an app as a module."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# torch spins OpenMP threads while waiting; on a shared 2-core machine that slows subprocess runs tenfold
ENV = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}


def load_app(name: str):
    """Import apps/<name>.py as a module (apps are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"app_{name}", ROOT / "apps" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def mixture_toml(path: Path, *, stage_tokens: int = 4000) -> Path:
    path.write_text(f"""[sources]
first = "shards/first"
second = "shards/second"

[[stages]]
name = "mostly-first"
tokens = {stage_tokens}
weights = {{ first = 0.75, second = 0.25 }}

[[stages]]
name = "mostly-second"
tokens = {stage_tokens}
weights = {{ first = 0.25, second = 0.75 }}
""")
    return path
