"""benchmarks/bench_kernels.py is GPU-only; its --smoke mode runs every provider and the tables on CPU, tiny."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "bench_kernels.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA host runs the benchmark itself; --smoke is CI's stand-in")
def test_bench_kernels_smoke_runs_every_provider_on_cpu():
    env = dict(os.environ, TRITON_INTERPRET="1")
    run = subprocess.run([sys.executable, str(BENCH), "--smoke"], capture_output=True, text=True, env=env,
                         timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "failed providers: none" in run.stdout
    for provider in ("triton (ours)", "torch._grouped_mm", "transformers eager loop", "torch reference"):
        assert provider in run.stdout
