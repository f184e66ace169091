"""apps/pretrain.py: a disk that fills while writing the loss curve or the Hugging Face export after training stops
with one line, keeping what was written (checkpoints, metrics, samples); the rerun finishes the job."""

from __future__ import annotations

import errno

import pytest
from app_helpers import load_app

from jpmoe.train import read_metrics


def _args(app, tiny_run, out, **kw):
    tok, mix = tiny_run
    return app.Args(**{**dict(tokenizer=str(tok), mixture=str(mix), out_dir=str(out), seq_len=32, micro_batch=2,
                              max_steps=2, ckpt_every=2, sample_every=0, tensorboard=False, export=True), **kw})


def _full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("what", ["loss_curve.png", "export"])
def test_full_disk_after_training_is_one_line_and_keeps_what_was_written(tiny_run, tmp_path, monkeypatch, what):
    app = load_app("pretrain")
    run = tmp_path / "run"
    if what == "export":
        monkeypatch.setattr(app, "save_hf", _full)
    else:
        monkeypatch.setattr(app.Monitor, "plot", _full)
    with pytest.raises(SystemExit) as stop:
        app.main(_args(app, tiny_run, run))
    message = str(stop.value)
    assert message.startswith("stopped: the disk filled while writing ") and "\n" not in message
    assert ("Hugging Face export" if what == "export" else "loss_curve.png") in message
    assert (run / "checkpoints" / "step-00000002").is_dir() and len(read_metrics(run / "metrics.jsonl")) == 2
    monkeypatch.undo()
    app.main(_args(app, tiny_run, run))  # space freed: nothing to train, the export and the plot are written
    assert (run / "loss_curve.png").is_file() and (run / "hf" / "config.json").is_file()
    assert len(read_metrics(run / "metrics.jsonl")) == 2
