"""apps/demo.py for real up to pretraining on a short run: raw -> curate -> tokenizer -> shards -> pretrain (HF
export), then a rerun that reuses every stage. The post-training, chat and evaluation stages are covered with
stubs in test_demo_stages.py (their apps are tested on their own)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from app_helpers import ENV, ROOT


@pytest.mark.slow
def test_demo_runs_up_to_pretraining_then_reuses_it(tmp_path):
    out = tmp_path / "demo"
    cmd = [sys.executable, "apps/demo.py", "--stop", "pretrain", "--steps", "40", "--out_dir", str(out)]
    run = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    for stage in ("raw", "curate", "tokenizer", "shards", "pretrain"):
        assert f"== [{stage}] done in" in run.stdout
    assert re.search(r"\[pretrain\] done in .*: loss \d+\.\d\d \(first 10 steps\) -> \d+\.\d\d", run.stdout)
    for path in ("raw/heldout.jsonl", "curated/classics/report.md", "deduped/general/kept", "tokenizer/tokenizer.json",
                 "shards/classics/meta.json", "mixture.toml", "pretrain/metrics.jsonl", "pretrain/loss_curve.png",
                 "pretrain/hf/config.json", "stages/pretrain.json"):
        assert (out / path).exists(), path
    again = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "(0 stages ran, 5 reused)" in again.stdout, again.stdout[-2000:]
