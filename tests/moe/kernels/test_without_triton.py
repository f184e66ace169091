"""triton is a Linux-only dependency: without it jpmoe still imports and runs kernels="torch", and "triton" says why
it cannot run."""

import os
import subprocess
import sys

CODE = """
import sys
sys.modules["triton"] = None  # as on a machine where triton is not installed
sys.modules["triton.language"] = None
import torch
from jpmoe import ModelConfig
from jpmoe.kernels.dispatch import resolve_kernels
from jpmoe.model import Transformer

assert resolve_kernels("auto", "cuda") == "torch"  # nothing to run Triton with
model = Transformer(ModelConfig.preset("debug", kernels="auto"))
assert model.config.kernels == "torch"
model(torch.randint(0, 512, (2, 5))).logits.float().sum().backward()
try:
    Transformer(ModelConfig.preset("debug", kernels="triton"))
except ValueError as err:
    print("refused:", err)
"""


def test_model_runs_without_triton_and_triton_backend_is_refused_clearly():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    run = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "refused: kernels='triton' cannot run here: the triton package is not installed" in run.stdout
