"""apps/demo.py end to end on a short run: curate -> tokenizer -> shards -> pretrain -> HF export -> generate."""

from __future__ import annotations

import subprocess
import sys

import pytest
from app_helpers import ENV, ROOT


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path):
    out = tmp_path / "demo"
    run = subprocess.run([sys.executable, "apps/demo.py", "--steps", "40", "--out_dir", str(out)], cwd=ROOT,
                         env=ENV, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert "generate with transformers.MixtralForCausalLM" in run.stdout
    prompt_line = next(line for line in run.stdout.splitlines() if line.startswith("メロスは激怒した。|"))
    assert len(prompt_line) > len("メロスは激怒した。|") + 5  # a continuation was generated
    for path in ("curated/aozora/kept", "tokenizer/tokenizer.json", "shards/wiki/meta.json", "mixture.toml",
                 "pretrain/metrics.jsonl", "pretrain/samples.jsonl", "pretrain/loss_curve.png", "pretrain/hf"):
        assert (out / path).exists(), path
        assert str(out / path.split("/")[0]) in run.stdout or path.startswith("curated")
    # a second run refuses a directory it did not make, and replaces one it did
    (tmp_path / "other").mkdir()
    refused = subprocess.run([sys.executable, "apps/demo.py", "--out_dir", str(tmp_path / "other")], cwd=ROOT,
                             env=ENV, capture_output=True, text=True)
    assert refused.returncode != 0 and "was not made by apps/demo.py" in refused.stderr
