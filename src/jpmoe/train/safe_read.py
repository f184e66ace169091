"""Reading training checkpoints without running code from them.

Checkpoints travel between people and machines, so every file a load reads is treated as untrusted:

- DCP's `.metadata` is a pickle (torch writes it with `pickle.dump`, and its `FileSystemReader` reads it back with
  plain `pickle.load`, which runs whatever the file asks for). `read_dcp_metadata` unpickles it with a restricted
  unpickler that admits only the classes DCP metadata is made of (`ALLOWED_GLOBALS`), and checks that every data
  file it points at is a plain file name inside the checkpoint directory.
- DCP's data items: tensors are read by torch with `weights_only=True`; non-tensor items (the optimiser's
  param_groups: lr, betas, ...) go through the load planner's `load_bytes`, which torch's `DefaultLoadPlanner`
  reads with `weights_only=False`. `SafeLoadPlanner` reads them with `weights_only=True`.
- Our own `.pt` files (RNG states, scheduler state) are read with `torch_load`, i.e. `weights_only=True`.

A file that cannot be read this way is a `CheckpointReadError` (a ValueError) naming the file; one that asks for
anything outside the allowed objects, which a checkpoint written by this code never does, is an
`UnsafeCheckpointError`, which stops a resume instead of falling back to an older checkpoint.
"""

from __future__ import annotations

import dataclasses
import io
import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint import DefaultLoadPlanner, FileSystemReader
from torch.distributed.checkpoint._traverse import set_element
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.checkpoint.metadata import Metadata, StorageMeta

METADATA_MODULE = "torch.distributed.checkpoint.metadata"
# every global a DCP .metadata pickle refers to (torch 2.4 - 2.13); constructing any of these runs no user code
ALLOWED_GLOBALS = {
    (METADATA_MODULE, name) for name in (
        "Metadata", "MetadataIndex", "ChunkStorageMetadata", "TensorStorageMetadata", "BytesStorageMetadata",
        "TensorProperties", "StorageMeta", "_MEM_FORMAT_ENCODING")
} | {
    ("torch.distributed.checkpoint.filesystem", "_StorageInfo"),
    ("torch", "Size"),
    ("torch.serialization", "_get_layout"),  # looks a layout up by name in torch's own table
    ("collections", "OrderedDict"),
    ("pathlib", "PosixPath"), ("pathlib", "PurePosixPath"), ("pathlib", "WindowsPath"),
    ("pathlib", "PureWindowsPath"),
}


class CheckpointReadError(ValueError):
    """A checkpoint file could not be read safely; the message names the file."""


class UnsafeCheckpointError(CheckpointReadError):
    """A checkpoint file asks to import or call something a checkpoint never holds (code could have run)."""


class _MetadataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        raise pickle.UnpicklingError(f"Unsupported global: GLOBAL {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("unsupported persistent id encountered")


def _refusal(file: Path, e: BaseException) -> CheckpointReadError:
    """The error for `file` failing to load with exception `e`."""
    if isinstance(e, CheckpointReadError):
        return e
    # a global outside tensors and plain data: asked for on purpose (damage does not spell a module and a name)
    found = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) (\S+)", str(e))
    if isinstance(e, pickle.UnpicklingError) and found:
        return UnsafeCheckpointError(f"{file}: refused to load it: it asks for {found.group(1)}, which a checkpoint "
                                     "written by jpmoe never does (the file may have been tampered with). Nothing "
                                     "from it was run.")
    return CheckpointReadError(f"{file}: not readable as a checkpoint file ({type(e).__name__}: "
                               f"{str(e).splitlines()[0] if str(e) else ''})")


def torch_load(file: str | Path) -> Any:
    """`torch.load(file, weights_only=True)` (tensors and plain Python data only) with errors that name the file
    (torch's own message would suggest `weights_only=False`, which runs code from the file)."""
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:
        raise _refusal(Path(file), e) from None


def read_dcp_metadata(file: str | Path) -> Metadata:
    """Unpickle a DCP `.metadata` file admitting only the metadata classes; check where it points."""
    file = Path(file)
    try:
        with file.open("rb") as f:
            md = _MetadataUnpickler(f).load()
    except Exception as e:
        raise _refusal(file, e) from None
    if not isinstance(md, Metadata) or not isinstance(md.storage_data, dict):
        raise CheckpointReadError(f"{file}: holds a {type(md).__name__}, not DCP metadata")
    for info in md.storage_data.values():
        rel = getattr(info, "relative_path", None)
        # a path outside the directory would read another file of this machine into the model
        if not isinstance(rel, str) or not rel or Path(rel).name != rel or rel in (".", ".."):
            raise UnsafeCheckpointError(f"{file}: refused to load it: a data item lives at {rel!r}, outside the "
                                        "checkpoint directory")
    return md


class SafeFileSystemReader(FileSystemReader):
    """torch's FileSystemReader, reading `.metadata` with `read_dcp_metadata` and naming the file a data item
    failed to load from."""

    def read_metadata(self, *args: Any, **kwargs: Any) -> Metadata:
        md = read_dcp_metadata(self._get_metadata_path(kwargs.get("rank")))
        if getattr(md, "storage_meta", None) is None:
            md.storage_meta = StorageMeta()
        md.storage_meta.load_id = self.load_id
        return md

    def read_data(self, plan, planner):
        if not isinstance(planner, SafeLoadPlanner):  # torch's default planner unpickles byte items unrestricted
            raise TypeError("SafeFileSystemReader reads only with a SafeLoadPlanner")
        per_file: dict[str, list] = {}
        for item in plan.items:
            per_file.setdefault(self.storage_data[item.storage_index].relative_path, []).append(item)
        for rel, items in per_file.items():  # one file at a time, so that an error can name it
            try:
                super().read_data(dataclasses.replace(plan, items=items), planner).wait()
            except Exception as e:
                raise _refusal(Path(self.path) / rel, e) from None
        done: torch.futures.Future = torch.futures.Future()
        done.set_result(None)
        return done


class SafeLoadPlanner(DefaultLoadPlanner):
    """DefaultLoadPlanner whose non-tensor items are read with `weights_only=True`."""

    def load_bytes(self, read_item, value: io.BytesIO) -> None:
        obj = torch.load(value, weights_only=True)
        if self.flatten_state_dict:
            set_element(self.original_state_dict, self.mappings[read_item.dest_index.fqn], obj)
        else:
            self.state_dict[read_item.dest_index.fqn] = obj


def _unwrap(e: CheckpointException) -> BaseException | None:
    """Our own error inside DCP's wrapper (failures: rank -> (error, traceback)), if any rank raised one."""
    for failure in e.failures.values():
        err = failure[0] if isinstance(failure, tuple) else failure
        if isinstance(err, CheckpointReadError):
            return err
    return None


def dcp_load(state_dict: dict, path: str | Path) -> None:
    """`dcp.load(state_dict, checkpoint_id=path)` reading only data (see the module docstring); a file that does
    not load is a CheckpointReadError naming it."""
    reader = SafeFileSystemReader(path)
    reader.read_metadata()  # a refused .metadata is named here (inside dcp.load it would be logged and wrapped)
    with warnings.catch_warnings():  # "assuming the intent is to load in a single process": it is
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        try:
            dcp.load(state_dict, storage_reader=reader, planner=SafeLoadPlanner())
        except CheckpointException as e:
            ours = _unwrap(e)
            if ours is None:
                raise
            raise ours from None
