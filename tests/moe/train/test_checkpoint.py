"""CheckpointManager: exact round trip, disk-full stops keep the previous checkpoint, damaged ones are skipped,
the last K are kept, and another run's directory is refused."""

from __future__ import annotations

import errno
import random
import shutil
import warnings
from collections import namedtuple

import pytest
import torch

import jpmoe.train.dcp_checkpoint as ckpt_mod
from jpmoe.train import CheckpointManager, ConfigMismatchError, DiskFullError, TrainState, build_scheduler

FP = {"model": {"hidden": 8}, "seq_len": 16}


def setup(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Linear(8, 2))
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    return model, opt, build_scheduler(opt, kind="cosine", warmup=2, total=20)


def train(model, opt, sched, steps):
    for _ in range(steps):
        model(torch.randn(4, 8)).square().mean().backward()
        opt.step()
        sched.step()
        opt.zero_grad()


def test_round_trip_is_exact(tmp_path):
    """Save after 3 steps, train 2 more; a fresh model loaded from the save trains the same 2 steps bit-exactly
    (weights, Adam moments, the schedule and the RNG that draws the inputs all come back)."""
    model, opt, sched = setup()
    train(model, opt, sched, 3)
    mgr = CheckpointManager(tmp_path, fingerprint=FP)
    mgr.save(TrainState(step=3, samples=24, stage=1, extra={"k": [1.0]}), model, opt, sched)
    py_next = random.random()
    train(model, opt, sched, 2)

    model2, opt2, sched2 = setup(seed=1)
    state = mgr.load(mgr.latest(), model2, opt2, sched2)
    assert (state.step, state.samples, state.stage, state.extra) == (3, 24, 1, {"k": [1.0]})
    assert random.random() == py_next
    train(model2, opt2, sched2, 2)
    for a, b in zip(model.parameters(), model2.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert sched.get_last_lr() == sched2.get_last_lr()


def test_disk_full_stops_before_writing_and_keeps_the_previous(tmp_path, monkeypatch):
    model, opt, sched = setup()
    mgr = CheckpointManager(tmp_path, fingerprint=FP)
    first = mgr.save(TrainState(step=1), model, opt, sched)
    size = sum(f.stat().st_size for f in first.rglob("*") if f.is_file())
    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(ckpt_mod.shutil, "disk_usage", lambda _: Usage(10**9, 10**9, size // 2))
    with pytest.raises(DiskFullError, match="not enough free disk to save checkpoint step-00000002.*intact"):
        mgr.save(TrainState(step=2), model, opt, sched)
    assert [p.name for p in tmp_path.iterdir()] == ["step-00000001"]
    assert mgr.latest() == first


def test_disk_full_during_the_write_removes_the_partial(tmp_path, monkeypatch):
    model, opt, sched = setup()
    mgr = CheckpointManager(tmp_path, fingerprint=FP)
    first = mgr.save(TrainState(step=1), model, opt, sched)

    def full(state_dict, checkpoint_id):
        (tmp_path / "step-00000002.tmp" / "__0_0.distcp").write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt_mod.dcp, "save", full)
    with pytest.raises(DiskFullError, match="the disk filled while writing it"):
        mgr.save(TrainState(step=2), model, opt, sched)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000001"]
    model2, opt2, sched2 = setup(seed=3)
    assert mgr.load(mgr.latest(), model2, opt2, sched2).step == 1
    for a, b in zip(model.parameters(), model2.parameters()):
        torch.testing.assert_close(a, b)
    assert first.exists()


@pytest.mark.parametrize("damage", ["state.json", ".metadata", "rng-rank0.pt", "garble", "no-fingerprint"])
def test_half_written_checkpoint_is_skipped_with_a_warning(tmp_path, damage):
    model, opt, sched = setup()
    mgr = CheckpointManager(tmp_path, fingerprint=FP)
    good = mgr.save(TrainState(step=1), model, opt, sched)
    bad = mgr.save(TrainState(step=2), model, opt, sched)
    if damage == "garble":
        (bad / "state.json").write_text('{"step": 2, "sampl')
    elif damage == "no-fingerprint":  # valid JSON without the fields: was a KeyError in load_latest
        (bad / "state.json").write_text('{"step": 2}')
    else:
        (bad / damage).unlink()
    with pytest.warns(UserWarning, match="skipping damaged checkpoint .*step-00000002"):
        assert mgr.latest() == good


def test_every_checkpoint_damaged_is_an_error_not_a_fresh_start(tmp_path):
    """Starting from step 0 would empty the run's metrics log and later prune the damaged checkpoints."""
    model, opt, sched = setup()
    mgr = CheckpointManager(tmp_path, fingerprint=FP)
    for step in (1, 2):
        (mgr.save(TrainState(step=step), model, opt, sched) / ".metadata").unlink()
    with pytest.warns(UserWarning, match="skipping damaged checkpoint"), \
            pytest.raises(RuntimeError, match=r"every checkpoint .* is damaged \(step-00000001, step-00000002"):
        mgr.load_latest(model, opt, sched)
    assert CheckpointManager(tmp_path / "fresh", fingerprint=FP).load_latest(model, opt, sched) is None


def test_interrupted_save_directory_is_removed(tmp_path):
    model, opt, sched = setup()
    CheckpointManager(tmp_path, fingerprint=FP).save(TrainState(step=1), model, opt, sched)
    shutil.copytree(tmp_path / "step-00000001", tmp_path / "step-00000002.tmp")
    with pytest.warns(UserWarning, match="removing half-written checkpoint"):
        mgr = CheckpointManager(tmp_path, fingerprint=FP)
    assert [p.name for p in tmp_path.iterdir()] == ["step-00000001"] and mgr.latest().name == "step-00000001"


def test_keeps_the_last_k(tmp_path):
    model, opt, sched = setup()
    mgr = CheckpointManager(tmp_path, fingerprint=FP, keep=2)
    for step in (1, 2, 3, 4):
        mgr.save(TrainState(step=step), model, opt, sched)
    assert [p.name for p in mgr.checkpoints()] == ["step-00000003", "step-00000004"]



def test_kill_while_pruning_leaves_no_damaged_checkpoint(tmp_path, monkeypatch):
    """A kill halfway through deleting the oldest checkpoint must not leave a damaged step-N behind (skipped with a
    warning at every start and never pruned again): the next start removes the leftovers."""
    model, opt, sched = setup()
    mgr = CheckpointManager(tmp_path, fingerprint=FP, keep=2)
    for step in (1, 2):
        mgr.save(TrainState(step=step), model, opt, sched)
    real = shutil.rmtree

    def killed_midway(path, *args, **kwargs):
        if "step-00000001" in str(path):
            (path / ".metadata").unlink()
            raise KeyboardInterrupt("killed")
        real(path, *args, **kwargs)

    monkeypatch.setattr(ckpt_mod.shutil, "rmtree", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        mgr.save(TrainState(step=3), model, opt, sched)
    monkeypatch.undo()
    with pytest.warns(UserWarning, match="removing half-written"):
        mgr = CheckpointManager(tmp_path, fingerprint=FP, keep=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 'skipping damaged checkpoint'
        assert [p.name for p in mgr.checkpoints()] == ["step-00000002", "step-00000003"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000002", "step-00000003"]

def test_checkpoint_from_another_config_is_refused(tmp_path):
    model, opt, sched = setup()
    CheckpointManager(tmp_path, fingerprint=FP).save(TrainState(step=1), model, opt, sched)
    other = CheckpointManager(tmp_path, fingerprint={**FP, "seq_len": 32})
    with pytest.raises(ConfigMismatchError, match="seq_len: checkpoint 16 vs run 32"):
        other.load(other.latest(), model, opt, sched)


def test_corrupt_shard_falls_back_to_the_previous_checkpoint(tmp_path):
    model, opt, sched = setup()
    mgr = CheckpointManager(tmp_path, fingerprint=FP)
    mgr.save(TrainState(step=1), model, opt, sched)
    want = [p.detach().clone() for p in model.parameters()]
    train(model, opt, sched, 1)
    bad = mgr.save(TrainState(step=2), model, opt, sched)
    (shard,) = bad.glob("*.distcp")
    shard.write_bytes(shard.read_bytes()[:100])  # truncated: looks complete, cannot be read
    model2, opt2, sched2 = setup(seed=5)
    with pytest.warns(UserWarning, match="skipping unreadable checkpoint .*step-00000002"):
        path, state = mgr.load_latest(model2, opt2, sched2)
    assert path.name == "step-00000001" and state.step == 1
    for a, b in zip(want, model2.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    (path / "__0_0.distcp").write_bytes(b"")
    with pytest.warns(UserWarning), pytest.raises(RuntimeError, match="no checkpoint .* could be read"):
        mgr.load_latest(model2, opt2, sched2)


def test_model_weights_alone_load_from_a_training_checkpoint(tmp_path):
    from jpmoe.train.dcp_checkpoint import checkpoint_model_config, load_model_weights

    model, opt, sched = setup()
    train(model, opt, sched, 2)
    path = CheckpointManager(tmp_path, fingerprint=FP).save(TrainState(step=2), model, opt, sched)
    fresh, _, _ = setup(seed=9)
    load_model_weights(path, fresh)
    for a, b in zip(model.parameters(), fresh.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert checkpoint_model_config(path) == {"hidden": 8}


def test_disk_full_inside_dcp_is_a_disk_full_error(tmp_path, monkeypatch):
    """A real ENOSPC in DCP's file writer reaches save() wrapped in a CheckpointException (a BaseException): it
    must still become a DiskFullError with the partial directory removed."""
    import torch.distributed.checkpoint.filesystem as dcp_fs

    model, opt, sched = setup()
    mgr = CheckpointManager(tmp_path, fingerprint=FP)
    mgr.save(TrainState(step=1), model, opt, sched)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(dcp_fs, "_write_item", full)
    with pytest.raises(DiskFullError, match="the disk filled while writing it"):
        mgr.save(TrainState(step=2), model, opt, sched)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000001"]


def test_resume_on_more_ranks_finds_the_checkpoint(tmp_path):
    """A checkpoint written by 1 rank is complete for a run resuming on 2 ranks (DCP reshards); it used to be
    'damaged' (no rng-rank1.pt), so the run silently started over from step 0."""
    model, opt, sched = setup()
    train(model, opt, sched, 2)
    saved = CheckpointManager(tmp_path, fingerprint=FP).save(TrainState(step=2, samples=16), model, opt, sched)
    model2, opt2, sched2 = setup(seed=1)
    path, state = CheckpointManager(tmp_path, fingerprint=FP, world_size=2).load_latest(model2, opt2, sched2)
    assert (path, state.step, state.samples) == (saved, 2, 16)
    for a, b in zip(model.parameters(), model2.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.warns(UserWarning, match="saved by fewer ranks"):
        CheckpointManager(tmp_path, fingerprint=FP, rank=1, world_size=2).load(saved, model2, opt2, sched2)
