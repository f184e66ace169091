"""Shared test set-up.

Triton kernels run on CPU through Triton's interpreter when no CUDA device exists: TRITON_INTERPRET must be set
before any kernel module imports triton, so it is set here, at collection start. torch is optional (the jpcurate
isolation run has none).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

# The bundled samples (data/); the jpcurate isolation run copies the tests elsewhere and points here by env.
DATA_DIR = Path(os.environ.get("JPLLM_DATA", Path(__file__).resolve().parents[1] / "data"))

# Two shared cores: OpenMP threads that spin while waiting starve the other process (torchrun tests, subprocess
# apps); passive waits keep a training step at ~0.3 s instead of seconds. Subprocesses inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_CUDA = False
if HAS_TORCH:
    import torch

    HAS_CUDA = torch.cuda.is_available()
    if not HAS_CUDA:
        os.environ.setdefault("TRITON_INTERPRET", "1")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs a CUDA device (bf16 kernel checks, GPU parity); skipped without")
    config.addinivalue_line("markers", "slow: takes more than a few seconds on 2 CPU cores")
    config.addinivalue_line("markers", "torch: needs torch (skipped in the jpcurate isolation run)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords and not HAS_CUDA:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA_DIR
