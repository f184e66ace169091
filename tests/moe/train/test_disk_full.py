"""A disk that fills during a save (after the free-space check passed) is the same clean DiskFullError, with the
same message, as the check before the save: in every form the error takes (torch's zip writer's `unexpected pos`,
ENOSPC/EDQUOT with or without an errno, inside DCP's CheckpointException, chained), and on a real full tmpfs."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import textwrap
from collections import namedtuple
from pathlib import Path

import pytest
import torch
import torch.distributed.checkpoint.filesystem as dcp_fs
from torch.distributed.checkpoint.api import CheckpointException

import jpmoe.train.dcp_checkpoint as ckpt_mod
from jpmoe.train import CheckpointManager, DiskFullError, TrainState, build_scheduler
from jpmoe.train.disk import is_disk_full, stops_when_disk_full

FP = {"model": {"hidden": 8}}
SAME_MESSAGE = (r"^not enough free disk to save checkpoint step-00000002: .* in .*; the previous checkpoint is "
                r"intact\. Free space or lower `keep`, then rerun to resume\.$")
ZIP_WRITER = "[enforce fail at inline_container.cc:672] . unexpected pos 1216 vs 1104"


def setup():
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 8)
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    return model, opt, build_scheduler(opt, kind="constant", warmup=1, total=10)


def _raise(e):
    def fail(*args, **kwargs):
        raise e
    return fail


def _chained():
    try:
        raise OSError(errno.ENOSPC, "No space left on device")
    except OSError as inner:
        try:
            raise RuntimeError("save failed") from inner
        except RuntimeError as outer:
            return outer


FORMS = {  # where the disk fills -> (object, attribute, replacement)
    "zip writer, rng state": (torch, "save", _raise(RuntimeError(ZIP_WRITER))),
    "EDQUOT inside DCP": (dcp_fs, "_write_item", _raise(OSError(errno.EDQUOT, "Disk quota exceeded"))),
    "no errno, state.json": (Path, "write_text", _raise(OSError("[Errno 28] No space left on device: 'x'"))),
    "chained under another error": (torch, "save", _raise(_chained())),
}


@pytest.mark.parametrize("form", FORMS)
def test_disk_filling_during_a_save_is_the_pre_save_stop(tmp_path, monkeypatch, form):
    model, opt, sched = setup()
    mgr = CheckpointManager(tmp_path, fingerprint=FP)
    first = mgr.save(TrainState(step=1), model, opt, sched)
    with monkeypatch.context() as m:
        m.setattr(*FORMS[form])
        with pytest.raises(DiskFullError, match=SAME_MESSAGE) as during:
            mgr.save(TrainState(step=2), model, opt, sched)
    assert "the disk filled while writing it" in str(during.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000001"]  # the partial step removed
    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(ckpt_mod.shutil, "disk_usage", lambda _: Usage(10**9, 10**9, 10))
    with pytest.raises(DiskFullError, match=SAME_MESSAGE):  # the pre-save check says the same
        mgr.save(TrainState(step=2), model, opt, sched)
    monkeypatch.undo()
    assert mgr.load(mgr.latest(), *setup()).step == 1 and mgr.latest() == first


def test_other_write_errors_are_not_called_disk_full(tmp_path, monkeypatch):
    model, opt, sched = setup()
    mgr = CheckpointManager(tmp_path, fingerprint=FP)
    monkeypatch.setattr(torch, "save", _raise(PermissionError(errno.EACCES, "Permission denied")))
    with pytest.raises(CheckpointException, match="Permission denied"):  # DCP's wrapper, as before
        mgr.save(TrainState(step=1), model, opt, sched)
    assert list(tmp_path.iterdir()) == []
    assert not is_disk_full(RuntimeError("unexpected value")) and not is_disk_full(OSError(errno.EIO, "I/O"))


def test_a_full_disk_after_training_stops_with_one_line_keeping_what_was_written(tmp_path):
    (tmp_path / "kept.txt").write_text("metrics")
    with pytest.raises(SystemExit) as stop, stops_when_disk_full("the Hugging Face export", tmp_path):
        (tmp_path / "part").write_text("half")
        raise RuntimeError("Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "
                           "\"No space left on device\" })")  # safetensors' save_file
    assert str(stop.value).startswith("stopped: the disk filled while writing the Hugging Face export (")
    assert "\n" not in str(stop.value) and (tmp_path / "kept.txt").exists() and (tmp_path / "part").exists()
    with pytest.raises(ValueError), stops_when_disk_full("x", tmp_path):  # anything else passes through
        raise ValueError("not a disk problem")


REAL_FILL = """
import os, subprocess, sys, torch
import jpmoe.train.dcp_checkpoint as ckpt_mod
from jpmoe.train import CheckpointManager, DiskFullError, TrainState, build_scheduler
root = sys.argv[1]
torch.manual_seed(0)
model = torch.nn.Linear(64, 64)
opt = torch.optim.AdamW(model.parameters(), lr=0.01)
sched = build_scheduler(opt, kind="constant", warmup=1, total=10)
mgr = CheckpointManager(root + "/ckpt", fingerprint={"m": 1})
mgr.save(TrainState(step=1), model, opt, sched)

def filling(fn, leave):  # another process takes the space after the free-space check, just before `fn`
    def run(*args, **kwargs):
        subprocess.run(["sh", "-c", f"cat /dev/zero > {root}/filler 2>/dev/null; truncate -s -{leave} {root}/filler"])
        return fn(*args, **kwargs)
    return run

for name, leave in (("dcp", "8K"), ("_rng_state", "0")):  # fills inside DCP's writer, then inside torch.save
    real = getattr(ckpt_mod, name) if name != "dcp" else ckpt_mod.dcp.save
    if name == "dcp":
        ckpt_mod.dcp.save = filling(real, leave)
    else:
        ckpt_mod._rng_state = filling(real, leave)
    try:
        mgr.save(TrainState(step=2), model, opt, sched)
    except DiskFullError as e:
        print("DISKFULL", e, "| cause:", repr(e.__cause__)[:300].replace("\\n", " "))
    if name == "dcp":
        ckpt_mod.dcp.save = real
    else:
        ckpt_mod._rng_state = real
    os.remove(root + "/filler")
    print("LEFT", sorted(os.listdir(root + "/ckpt")))
print("RESUMED", mgr.load(mgr.latest(), model, opt, sched).step, mgr.save(TrainState(step=2), model, opt, sched).name)
"""


def test_a_real_tmpfs_filling_during_the_save(tmp_path):
    """A 1 MB tmpfs in a private mount namespace; a filler process takes all but 8 KB after the check."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode:
        pytest.skip("unshare -rm (a private mount namespace for a small tmpfs) is not available here")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = tmp_path / "fill.py"
    script.write_text(textwrap.dedent(REAL_FILL))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    run = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=1m tmpfs {mnt} && "
                          f"{sys.executable} {script} {mnt}"], capture_output=True, text=True, env=env, timeout=120)
    if "mount" in run.stderr and run.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {run.stderr.strip()[:200]}")
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.count("DISKFULL not enough free disk to save checkpoint step-00000002: the disk filled") == 2
    assert run.stdout.count("LEFT ['step-00000001']") == 2 and "RESUMED 1 step-00000002" in run.stdout


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("log", ["metrics", "samples"])
def test_a_full_disk_under_the_training_log_stops_with_one_line(tmp_path, log):
    """The metrics and samples logs are written every few steps: a full disk there ended training in a traceback,
    where the checkpoint writes gave one line. /dev/full answers every write with a real ENOSPC."""
    from jpmoe.train.monitor import SAMPLE_PROMPTS, Monitor

    mon = Monitor(tmp_path, enabled=True, total_steps=4, tensorboard=False)
    mon.log(1, {"loss": 2.0})
    setattr(mon, f"{log}_path", Path("/dev/full"))
    with pytest.raises(SystemExit) as stop:
        mon.log(2, {"loss": 1.5}) if log == "metrics" else mon.samples(2, ["x"] * len(SAMPLE_PROMPTS))
    assert "the disk filled while writing /dev/full" in str(stop.value) and "rerun the same command" in str(stop.value)
    assert (tmp_path / "metrics.jsonl").read_text().count("\n") == 1  # what was written before is kept
