"""apps/sft.py as a process: SIGKILL + restart equals an uninterrupted run exactly (losses and exported weights), and
a 2-process torchrun (gloo, FSDP2) run equals one process accumulating twice as many micro-batches."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from app_helpers import ENV, ROOT
from posttrain_helpers import build_bases, sft_cmd, sft_records, write_jsonl
from safetensors.torch import load_file

from jpmoe.train import read_metrics

STEPS = 40


@pytest.fixture(scope="module")
def setup(tmp_path_factory, data_dir):
    base = tmp_path_factory.mktemp("post_base")
    jpmoe_base, llama = build_bases(base, data_dir)
    return jpmoe_base, llama, write_jsonl(base / "sft.jsonl", sft_records())


def losses(out) -> list[float]:
    return [r["loss"] for r in read_metrics(out / "metrics.jsonl")]


def weights(out) -> dict[str, torch.Tensor]:
    (shard,) = (out / "hf").glob("model-*.safetensors")
    return load_file(shard)


@pytest.mark.slow
def test_sigkill_and_restart_equals_uninterrupted(setup, tmp_path):
    base, _, data = setup
    args = lambda out: [sys.executable, *sft_cmd(base, data, out, "--max_steps", str(STEPS), "--ckpt_every", "5",  # noqa: E731
                                                  "--eval_frac", "0.2", "--eval_every", "10")]
    whole = tmp_path / "whole"
    subprocess.run(args(whole), cwd=ROOT, env=ENV, check=True, capture_output=True)
    out = tmp_path / "killed"
    proc = subprocess.Popen(args(out), cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (out / "checkpoints" / "step-00000015").exists():
        assert proc.poll() is None and time.time() < deadline, "the run ended before it could be killed"
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(losses(out)) < STEPS, "killed too late to test a resume"
    rerun = subprocess.run(args(out), cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "resumed from" in rerun.stdout
    assert losses(out) == losses(whole)
    evals = lambda o: [r.get("eval/loss") for r in read_metrics(o / "metrics.jsonl")]  # noqa: E731
    assert evals(out) == evals(whole)
    a, b = weights(whole), weights(out)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    samples = lambda o: (o / "samples.jsonl").read_text()  # noqa: E731
    assert samples(out) == samples(whole)


@pytest.mark.slow
def test_two_process_torchrun_equals_single_process(setup, tmp_path):
    _, llama, data = setup
    common = ("--max_steps", "6", "--ckpt_every", "3", "--micro_batch", "1")
    one = tmp_path / "one"
    subprocess.run([sys.executable, *sft_cmd(llama, data, one, *common, "--grad_accum", "2")], cwd=ROOT, env=ENV,
                   check=True, capture_output=True)
    two = tmp_path / "two"
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          *sft_cmd(llama, data, two, *common, "--grad_accum", "1")], cwd=ROOT, env=ENV,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    # FSDP2 reduces gradients in another order than one process's accumulation: float rounding only
    torch.testing.assert_close(torch.tensor(losses(two)), torch.tensor(losses(one)), rtol=0, atol=1e-5)
    a, b = weights(one), weights(two)
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=1e-5, msg=k)
