"""A full disk, in every form it reaches Python, is one clean stop with one message.

ENOSPC / EDQUOT arrive as an OSError, as an OSError without an errno (only its text), inside DCP's
CheckpointException (any rank's failure), chained under another exception, or as torch's zip writer's
`RuntimeError: [enforce fail at inline_container.cc:...] . unexpected pos ...` / `file write failed` (a short write:
the disk filled under it). `is_disk_full` recognises each; `stops_when_disk_full` turns one into a one-line exit.
"""

from __future__ import annotations

import errno
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from torch.distributed.checkpoint.api import CheckpointException

DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
# what the errors say when only their text carries it (torch's zip writer, safetensors' Rust IoError, wrapped OSErrors)
DISK_FULL_TEXT = re.compile(r"No space left on device|Disk quota exceeded|inline_container\.cc.*unexpected pos|"
                            r"file write failed|StorageFull|QuotaExceeded")


class DiskFullError(RuntimeError):
    """A checkpoint did not fit (before the save, or the disk filled during it); the previous checkpoints are
    untouched."""


def is_disk_full(e: BaseException | None, _seen: frozenset = frozenset()) -> bool:
    if e is None or id(e) in _seen:
        return False
    seen = _seen | {id(e)}
    if isinstance(e, DiskFullError):
        return True
    if isinstance(e, CheckpointException):  # failures: rank -> (error, traceback)
        return any(is_disk_full(f[0] if isinstance(f, tuple) else f, seen) for f in e.failures.values())
    if isinstance(e, OSError) and e.errno in DISK_FULL_ERRNOS:
        return True
    if isinstance(e, (OSError, RuntimeError)) and DISK_FULL_TEXT.search(str(e)):
        return True
    return is_disk_full(e.__cause__, seen) or is_disk_full(e.__context__, seen)


def free_mb(path: str | Path) -> float:
    return shutil.disk_usage(path).free / 1e6


def disk_full_message(checkpoint: str, directory: Path, detail: str) -> str:
    """The one message of a checkpoint that did not fit, before or during its save."""
    return (f"not enough free disk to save checkpoint {checkpoint}: {detail} in {directory}; the previous "
            "checkpoint is intact. Free space or lower `keep`, then rerun to resume.")


@contextmanager
def stops_when_disk_full(what: str, directory: str | Path) -> Iterator[None]:
    """Run the body; a full disk ends the program with one line (SystemExit) naming what was being written.
    Nothing already written is removed."""
    try:
        yield
    except (Exception, CheckpointException) as e:
        if not is_disk_full(e):
            raise
        raise SystemExit(f"stopped: the disk filled while writing {what} ({free_mb(directory):.1f} MB free in "
                         f"{directory}); everything written before is kept. Free space, then rerun the same "
                         "command to finish.") from None
