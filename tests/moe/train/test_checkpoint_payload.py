"""Loading a checkpoint never runs code from it: a pickle payload planted in any file a load reads (DCP
`.metadata`, a byte item and a tensor item of the DCP data file, the RNG state, the scheduler state) is refused with
an error naming the file, and the payload's marker file is never written (torch's own reader ran the one in
`.metadata` and in byte items)."""

from __future__ import annotations

import pickle
import warnings

import pytest
import torch
from torch.distributed.checkpoint.filesystem import _StorageInfo
from torch.distributed.checkpoint.metadata import MetadataIndex

from jpmoe import ModelConfig, Transformer
from jpmoe.hf.__main__ import main as cli
from jpmoe.train import CheckpointManager, TrainState, build_scheduler
from jpmoe.train.dcp_checkpoint import load_model_weights
from jpmoe.train.safe_read import CheckpointReadError, UnsafeCheckpointError, read_dcp_metadata

CFG = ModelConfig.preset("debug", vocab_size=64, hidden_size=16, intermediate_size=16, num_layers=1, num_heads=2,
                         num_kv_heads=1, num_experts=2, experts_per_token=1)


class Payload:
    """Unpickling this with plain pickle (or torch.load(weights_only=False)) writes `marker`."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('ran')",)


def _setup():
    torch.manual_seed(0)
    model = Transformer(CFG)
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    return model, opt, build_scheduler(opt, kind="constant", warmup=1, total=10)


def _plant_item(step, fqn, payload):
    """Point the DCP item `fqn` at the payload's bytes, appended to the data file (the attacker controls every
    file, so the metadata is rewritten too; it is read with the restricted unpickler and holds only metadata)."""
    with (step / ".metadata").open("rb") as f:
        md = pickle.load(f)  # our own file, not yet tampered with
    key = next(k for k in md.storage_data if k.fqn == fqn)
    data = step / md.storage_data[key].relative_path
    offset = data.stat().st_size
    with data.open("ab") as f:
        torch.save(payload, f)
    md.storage_data[key] = _StorageInfo(data.name, offset, data.stat().st_size - offset)
    assert isinstance(key, MetadataIndex)
    with (step / ".metadata").open("wb") as f:
        pickle.dump(md, f)
    return data


def _plant(step, where, payload):
    """Plant `payload` in the file `where` names; return that file."""
    if where == ".metadata":
        (step / ".metadata").write_bytes(pickle.dumps(payload))
        return step / ".metadata"
    if where == "byte item":  # an optimiser param_groups value: torch's planner unpickles these unrestricted
        return _plant_item(step, "optim.param_groups.0.lr", payload)
    if where == "tensor item":
        return _plant_item(step, "model.norm.weight", payload)
    torch.save(payload, step / where)
    return step / where


@pytest.fixture
def saved(tmp_path):
    model, opt, sched = _setup()
    mgr = CheckpointManager(tmp_path / "run", fingerprint={"model": CFG.to_dict()})
    return mgr, mgr.save(TrainState(step=1), model, opt, sched)


@pytest.mark.parametrize("where", [".metadata", "byte item", "tensor item", "rng-rank0.pt", "trainer.pt"])
def test_resume_and_rollback_refuse_a_planted_payload(saved, tmp_path, where):
    mgr, step = saved
    marker = tmp_path / "ran"
    planted = _plant(step, where, Payload(marker))
    model, opt, sched = _setup()
    # a resume, and a spike rollback (which keeps the RNG, so never reads the RNG file)
    for restore_rng in (True,) if where == "rng-rank0.pt" else (True, False):
        with pytest.raises(UnsafeCheckpointError, match=f"{planted}: refused to load it.*Nothing from it was run"):
            mgr.load(step, model, opt, sched, restore_rng=restore_rng)
    with pytest.raises(UnsafeCheckpointError, match=str(planted)):  # never skipped for an older checkpoint
        mgr.load_latest(model, opt, sched)
    assert not marker.exists()


@pytest.mark.parametrize("where", [".metadata", "tensor item"])
def test_weights_only_loads_and_to_hf_refuse_a_planted_payload(saved, tmp_path, where, capsys):
    _, step = saved
    marker = tmp_path / "ran"
    planted = _plant(step, where, Payload(marker))
    with pytest.raises(UnsafeCheckpointError, match=str(planted)):
        load_model_weights(step, Transformer(CFG))
    assert cli(["to-hf", str(step), str(tmp_path / "hf")]) == 2
    err = capsys.readouterr().err
    assert f"error: {planted}: refused to load it" in err and "Traceback" not in err
    assert not marker.exists()


def test_untampered_checkpoint_still_loads_exactly(saved):
    """The safe reader reads what DCP wrote: weights, Adam moments and param_groups come back."""
    mgr, step = saved
    model, opt, sched = _setup()
    model2, opt2, sched2 = _setup()
    for p in model2.parameters():
        p.data.normal_()
    opt2.param_groups[0]["lr"] = 0.5
    mgr.load(step, model2, opt2, sched2)
    for a, b in zip(model.parameters(), model2.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert opt2.param_groups[0]["lr"] == 0.01 and opt2.param_groups[0]["betas"] == (0.9, 0.999)


def test_metadata_pointing_outside_the_directory_is_refused(saved, tmp_path):
    _, step = saved
    with (step / ".metadata").open("rb") as f:
        md = pickle.load(f)
    key = next(iter(md.storage_data))
    md.storage_data[key] = _StorageInfo("../../secret", 0, 10)
    with (step / ".metadata").open("wb") as f:
        pickle.dump(md, f)
    with pytest.raises(UnsafeCheckpointError, match="outside the checkpoint directory"):
        read_dcp_metadata(step / ".metadata")


def test_truncated_files_are_named_but_not_called_unsafe(saved):
    """Damage (a truncated data file) is a CheckpointReadError, which a resume skips for the previous checkpoint."""
    mgr, step = saved
    data = next(step.glob("*.distcp"))
    data.write_bytes(data.read_bytes()[:100])
    model, opt, sched = _setup()
    with pytest.raises(CheckpointReadError, match=str(data)) as err:
        mgr.load(step, model, opt, sched)
    assert not isinstance(err.value, UnsafeCheckpointError)
    with warnings.catch_warnings(record=True) as caught, pytest.raises(RuntimeError, match="could be read"):
        warnings.simplefilter("always")
        mgr.load_latest(model, opt, sched)
    assert any(str(data) in str(w.message) for w in caught)
