"""Kernel tests: outputs poisoned before every launch, fresh random inputs, per-dtype tolerances.

Under Triton's interpreter (CPU) only float32 and float16 are tested: the interpreter computes bfloat16 on raw bit
patterns (triton-lang/triton#11584), so bf16 cases carry the `gpu` marker.
"""

from __future__ import annotations

import sys
import zlib
from pathlib import Path

import pytest
import torch

from jpmoe.kernels import backend

# The tests import their shared pieces (kernel_cases.py) by name; this keeps that working under
# --import-mode=importlib too, which does not put test directories on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent))

# Without triton (it is a Linux-only dependency) every entry would fall back to its reference and the comparisons
# could not fail: collect only the test that checks that fallback and the tests of the "torch" expert MLP.
collect_ignore = [] if backend.HAS_TRITON else [
    p.name for p in Path(__file__).parent.glob("test_*.py")
    if not p.name.startswith(("test_without_triton", "test_moe_mlp_torch"))]


@pytest.fixture(autouse=True)
def poisoned_outputs(monkeypatch):
    """Every tensor a launcher allocates starts as NaN / -7: an element left unwritten fails the comparison."""
    monkeypatch.setattr(backend, "POISON_OUTPUTS", True)


@pytest.fixture
def gen(request) -> torch.Generator:
    """A generator seeded from the test id: fresh inputs per case, reproducible per case."""
    g = torch.Generator(device="cpu")
    g.manual_seed(zlib.crc32(request.node.nodeid.encode()))
    return g
