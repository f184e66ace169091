"""Checkpoints with torch.distributed.checkpoint (DCP): atomic, bounded in number, checked against the disk.

Layout of `<dir>/step-00000100/`: DCP files (model and optimiser, sharded as trained), `rng-rank<r>.pt`
(each rank's RNG states), `trainer.pt` (scheduler state), `state.json` (step, data position, stage, run
fingerprint; written last). A checkpoint is written to `step-N.tmp/` and renamed once every rank has finished,
so a directory without `.tmp` is complete unless damaged; a damaged one (no state.json or DCP metadata, or
unreadable) is skipped with a warning and the one before it is used. Loading never runs code from the files
(`jpmoe.train.safe_read`): a file that asks for it stops the load with an error that names it.
"""

from __future__ import annotations

import json
import random
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

from jpmoe.train.disk import DiskFullError, disk_full_message, free_mb, is_disk_full
from jpmoe.train.dist import barrier, broadcast_object
from jpmoe.train.safe_read import UnsafeCheckpointError, dcp_load, torch_load

PREFIX = "step-"
SAFETY = 1.2  # bytes needed = last checkpoint's size (or the estimate) x SAFETY


class ConfigMismatchError(ValueError):
    """The checkpoint directory belongs to a run with another model or data configuration."""


@dataclass
class TrainState:
    step: int = 0  # optimiser steps done
    samples: int = 0  # global sample index of the next batch (the data position)
    stage: int = 0
    spikes: int = 0  # loss spikes since the last good checkpoint
    extra: dict = field(default_factory=dict)  # JSON-able app state (e.g. the spike detector's window)


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _estimate_bytes(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> int:
    """Model bytes plus AdamW's two moments in fp32 (a first save has nothing to measure)."""
    model_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    return model_bytes + 2 * 4 * sum(p.numel() for p in model.parameters())


def _all_ranks(value) -> list:
    """Every rank's `value` (one process: [value])."""
    if torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
        out = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(out, value)
        return out
    return [value]


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]), "python_pos": random.getstate()[2]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((3, tuple(state["python"]), state["python_pos"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class CheckpointManager:
    """Save, find and load checkpoints of one run directory; `fingerprint` identifies the run's configuration."""

    def __init__(self, directory: str | Path, *, fingerprint: dict, keep: int = 3, rank: int = 0,
                 world_size: int = 1) -> None:
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.dir = Path(directory)
        self.fingerprint, self.keep, self.rank, self.world_size = fingerprint, keep, rank, world_size
        if rank == 0:
            self.dir.mkdir(parents=True, exist_ok=True)
            for tmp in self.dir.glob(f"{PREFIX}*.tmp"):
                warnings.warn(f"removing half-written checkpoint {tmp} (a save was interrupted)", stacklevel=2)
                shutil.rmtree(tmp, ignore_errors=True)
        barrier()

    # ---- finding -------------------------------------------------------------------------------------------
    def _complete(self, path: Path) -> str | None:
        """None when `path` looks like a complete checkpoint, else why not."""
        if not (path / ".metadata").is_file():
            return "no DCP .metadata"
        if not (path / "trainer.pt").is_file():
            return "no trainer.pt"
        try:
            record = json.loads((path / "state.json").read_text())
        except (OSError, ValueError) as e:
            return f"state.json unreadable ({e})"
        keys = record if isinstance(record, dict) else {}
        lacking = [k for k in ("step", "samples", "stage", "fingerprint") if k not in keys]
        if lacking:  # else a KeyError stops the resume instead of falling back to the previous checkpoint
            return f"state.json lacks {lacking}"
        # the ranks that wrote it (a run may resume on another world size); older checkpoints lack the field
        saved_world = record.get("world_size", self.world_size)
        missing = [r for r in range(saved_world) if not (path / f"rng-rank{r}.pt").is_file()]
        if missing:
            return f"no RNG state for ranks {missing}"
        return None

    def checkpoints(self) -> list[Path]:
        """Complete checkpoints, oldest first; damaged ones are skipped with a warning."""
        return self._scan()[0]

    def _scan(self) -> tuple[list[Path], list[Path]]:
        """(complete, damaged) step directories, oldest first; each damaged one is warned about."""
        found, damaged = [], []
        for path in sorted(p for p in self.dir.glob(f"{PREFIX}*") if p.is_dir() and not p.name.endswith(".tmp")):
            why = self._complete(path)
            if why is None:
                found.append(path)
                continue
            damaged.append(path)
            if self.rank == 0:
                warnings.warn(f"skipping damaged checkpoint {path}: {why}", stacklevel=3)
        return found, damaged

    def latest(self) -> Path | None:
        ckpts = self.checkpoints()
        return ckpts[-1] if ckpts else None

    def check_fingerprint(self, path: Path) -> None:
        saved = json.loads((path / "state.json").read_text())["fingerprint"]
        diff = {k: (saved.get(k), v) for k, v in self.fingerprint.items() if saved.get(k) != v}
        diff.update({k: (v, None) for k, v in saved.items() if k not in self.fingerprint})
        if diff:
            lines = ", ".join(f"{k}: checkpoint {a!r} vs run {b!r}" for k, (a, b) in sorted(diff.items()))
            raise ConfigMismatchError(f"{path} was written by a run with another configuration ({lines}); "
                                      "use a new output directory or the matching config")

    # ---- saving --------------------------------------------------------------------------------------------
    def _needed_bytes(self, model, optimizer) -> int:
        ckpts = self.checkpoints()
        return int(SAFETY * (_dir_bytes(ckpts[-1]) if ckpts else _estimate_bytes(model, optimizer)))

    def save(self, state: TrainState, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler) -> Path:
        """Write checkpoint `state.step`. A disk too full for it, found before the save or while writing it, is a
        DiskFullError on every rank (the partial step removed, the previous checkpoint intact)."""
        final = self.dir / f"{PREFIX}{state.step:08d}"
        tmp = final.with_name(final.name + ".tmp")
        verdict = None
        if self.rank == 0:
            need, free = self._needed_bytes(model, optimizer), shutil.disk_usage(self.dir).free
            if free < need:
                verdict = disk_full_message(final.name, self.dir,
                                            f"need about {need / 1e6:.1f} MB, {free / 1e6:.1f} MB free")
            else:
                shutil.rmtree(tmp, ignore_errors=True)
                tmp.mkdir(parents=True)
        verdict = broadcast_object(verdict)
        if verdict:
            raise DiskFullError(verdict)
        barrier()
        self._agreed(final, tmp, lambda: self._write_shards(tmp, model, optimizer, scheduler))
        self._agreed(final, tmp, lambda: self._write_state(tmp, state))  # last: its presence marks completeness
        if self.rank == 0:
            shutil.rmtree(final, ignore_errors=True)
            tmp.rename(final)
            for old in self.checkpoints()[: -self.keep]:
                # renamed first: a kill mid-delete leaves a .tmp (removed at the next start), not a damaged
                # step-N that is warned about and never pruned again
                doomed = old.rename(old.with_name(old.name + ".tmp"))
                shutil.rmtree(doomed, ignore_errors=True)
        barrier()
        return final

    def _agreed(self, final: Path, tmp: Path, write) -> None:
        """Run `write` on every rank; when any rank failed, remove `tmp` and raise on every rank (a DiskFullError
        when any failure was a full disk), so that no rank waits for another at the next collective."""
        failure = None
        try:
            write()
        except (Exception, CheckpointException) as e:  # DCP wraps its writers' errors in a CheckpointException
            failure = e
        outcomes = _all_ranks(None if failure is None else "disk" if is_disk_full(failure) else repr(failure))
        if all(o is None for o in outcomes):
            return
        if self.rank == 0:
            shutil.rmtree(tmp, ignore_errors=True)
        if "disk" in outcomes:
            detail = f"the disk filled while writing it (removed it; {free_mb(self.dir):.1f} MB free now)"
            raise DiskFullError(disk_full_message(final.name, self.dir, detail)) from failure
        if failure is not None:
            raise failure
        raise RuntimeError(f"saving {final.name} failed on another rank ({next(o for o in outcomes if o)}); removed "
                           "it, the previous checkpoint is intact")

    def _write_shards(self, tmp: Path, model, optimizer, scheduler) -> None:
        model_sd, optim_sd = get_state_dict(model, optimizer)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="torch.distributed is disabled")
            dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=str(tmp))
        torch.save(_rng_state(), tmp / f"rng-rank{self.rank}.pt")
        if self.rank == 0:
            torch.save({"scheduler": scheduler.state_dict()}, tmp / "trainer.pt")

    def _write_state(self, tmp: Path, state: TrainState) -> None:
        if self.rank == 0:
            record = {**state.__dict__, "world_size": self.world_size, "fingerprint": self.fingerprint}
            (tmp / "state.json").write_text(json.dumps(record, indent=2) + "\n")

    # ---- loading -------------------------------------------------------------------------------------------
    def load_latest(self, model, optimizer, scheduler) -> tuple[Path, TrainState] | None:
        """Resume from the newest checkpoint that loads; one that fails to read (corrupt shard) is skipped with a
        warning and the one before it used. None when there is none; an error when every one is unreadable."""
        ckpts, damaged = self._scan()
        if damaged and not ckpts:  # starting over would empty the metrics log and later prune these
            names = ", ".join(sorted(p.name for p in damaged))
            raise RuntimeError(f"every checkpoint in {self.dir} is damaged ({names}; see the warnings); move the "
                               "directory away to start over")
        for path in reversed(ckpts):
            self.check_fingerprint(path)  # another run's directory is an error, never skipped
            try:
                return path, self.load(path, model, optimizer, scheduler)
            except UnsafeCheckpointError:  # planted, not damaged: falling back would hide it
                raise
            except (Exception, CheckpointException) as e:  # DCP's wrapper of read errors is a BaseException
                warnings.warn(f"skipping unreadable checkpoint {path}: {type(e).__name__}: {e}", stacklevel=2)
        if ckpts:
            raise RuntimeError(f"no checkpoint in {self.dir} could be read ({len(ckpts)} tried); move the directory "
                               "away to start over")
        return None

    def load(self, path: Path, model, optimizer, scheduler, *, restore_rng: bool = True) -> TrainState:
        """Restore model, optimiser, scheduler and (by default) RNG from `path`; returns the trainer state."""
        self.check_fingerprint(path)
        model_sd, optim_sd = get_state_dict(model, optimizer)
        sd = {"model": model_sd, "optim": optim_sd}
        dcp_load(sd, path)
        set_state_dict(model, optimizer, model_state_dict=sd["model"], optim_state_dict=sd["optim"])
        scheduler.load_state_dict(torch_load(path / "trainer.pt")["scheduler"])
        rng = path / f"rng-rank{self.rank}.pt"
        if restore_rng and rng.is_file():
            _set_rng_state(torch_load(rng))
        elif restore_rng:  # this rank did not exist when it was saved: weights, optimiser and data position resume
            warnings.warn(f"{path} was saved by fewer ranks; rank {self.rank} keeps its seeded RNG", stacklevel=2)
        record = json.loads((path / "state.json").read_text())
        return TrainState(step=record["step"], samples=record["samples"], stage=record["stage"],
                          spikes=record.get("spikes", 0), extra=record.get("extra", {}))


def checkpoint_model_config(path: str | Path) -> dict:
    """The model config (ModelConfig fields) a checkpoint was trained with, from its state.json."""
    file = Path(path) / "state.json"
    try:
        return json.loads(file.read_text())["fingerprint"]["model"]
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{file} holds no model config ({type(e).__name__}: {e})") from None


def load_model_weights(path: str | Path, model: torch.nn.Module) -> None:
    """Load only the model weights of a training checkpoint into `model` (any world size it was saved with),
    e.g. to evaluate or export an intermediate step; the optimiser state is not read."""
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, set_model_state_dict

    sd = {"model": get_model_state_dict(model)}
    dcp_load(sd, path)
    set_model_state_dict(model, sd["model"])
