"""Monitor: JSONL + TensorBoard, resume truncation, samples beside the metrics, progress line, loss PNG."""

from __future__ import annotations

import importlib.util
import json

import pytest

from jpmoe.train import SAMPLE_PROMPTS, Monitor, read_metrics

M = {"loss": 5.0, "lr": 1e-3, "grad_norm": 0.5, "tokens_per_s": 1000.0, "stage": 0, "stage_name": "ja"}


def test_logs_resume_samples_and_plot(tmp_path, capsys):
    mon = Monitor(tmp_path, enabled=True, total_steps=4)
    for step in (1, 2, 3):
        mon.log(step, {**M, "loss": 6.0 - step, "stage": step // 3})
    mon.progress(3, M)
    mon.samples(2, [f"続き{i}" for i in range(len(SAMPLE_PROMPTS))])
    mon.close()
    assert "step 3/4 | stage ja | loss 5.0000" in capsys.readouterr().err
    assert any((tmp_path / "tensorboard").iterdir())
    # a resume from step 2 forgets step 3 (it will be logged again) and keeps step 2's samples
    mon = Monitor(tmp_path, enabled=True, total_steps=4, tensorboard=False, resume_step=2)
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1, 2]
    mon.log(3, {**M, "loss": 2.5, "stage": 1})
    assert [r["loss"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [5.0, 4.0, 2.5]
    samples = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert [s["prompt"] for s in samples] == list(SAMPLE_PROMPTS) and samples[0]["completion"] == "続き0"
    png = mon.plot()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_wandb_asked_but_missing_warns(tmp_path):
    if importlib.util.find_spec("wandb") is not None:
        pytest.skip("wandb is installed here")
    with pytest.warns(UserWarning, match="wandb asked for but not installed"):
        Monitor(tmp_path, enabled=True, total_steps=1, tensorboard=False, wandb_project="jpmoe")


def test_other_ranks_write_nothing(tmp_path):
    mon = Monitor(tmp_path / "r1", enabled=False, total_steps=1)
    mon.log(1, M)
    mon.samples(1, ["x"] * len(SAMPLE_PROMPTS))
    assert mon.plot() is None and not (tmp_path / "r1").exists()


def test_resume_drops_a_torn_last_line(tmp_path):
    """A kill (or full disk) mid-write leaves half a JSON line at the end of metrics.jsonl: the resume drops it
    with a warning and keeps the whole records; it used to stop with a JSONDecodeError."""
    mon = Monitor(tmp_path, enabled=True, total_steps=4, tensorboard=False)
    for step in (1, 2, 3):
        mon.log(step, {"loss": float(step)})
    with mon.metrics_path.open("a") as f:
        f.write('{"step": 4, "lo')
    with pytest.warns(UserWarning, match="torn last line"):
        assert [r["step"] for r in read_metrics(mon.metrics_path)] == [1, 2, 3]
    with pytest.warns(UserWarning, match="torn last line"):
        Monitor(tmp_path, enabled=True, total_steps=4, tensorboard=False, resume_step=2)
    assert [r["step"] for r in read_metrics(mon.metrics_path)] == [1, 2]
    mon.metrics_path.write_text('{"step": 1}\n{bad\n{"step": 2}\n')
    with pytest.raises(ValueError, match="metrics.jsonl: record 2 is not JSON"):
        read_metrics(mon.metrics_path)
