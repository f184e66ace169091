"""Worker processes of the local engines: spawned, dying with their parent, deaf to Ctrl-C.

    with worker_pool(4, initializer=init, initargs=(pipeline,)) as ex:
        ...
    results = map_tasks(fn, items, workers=4)       # [fn(x) for x in items], in worker processes when workers > 1

A worker arms a parent-death signal (Linux `prctl(PR_SET_PDEATHSIG, SIGKILL)` through ctypes) before it takes work, so
that a `kill -9` of the command leaves no worker behind; when the last worker is gone, multiprocessing's resource
tracker reads the end of its pipe and exits too. Workers ignore SIGINT: Ctrl-C reaches the whole process group, and
the parent alone answers it (`stop_workers`, then one line saying that a rerun resumes). An executor, not
`mp.Pool`: a worker that dies (OOM killer) breaks the run with `WORKER_DIED` instead of hanging it.
"""

from __future__ import annotations

import ctypes
import importlib.abc
import multiprocessing as mp
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager

PR_SET_PDEATHSIG = 1  # linux/prctl.h
WORKER_DIED = ("a worker process died (killed, or out of memory); finished work is kept: run the same command "
               "again to resume")


NO_PANDAS = "JPCURATE_NO_PANDAS"


class _NoPandas(importlib.abc.MetaPathFinder):
    """An import finder that reports pandas as missing (see `without_pandas`)."""

    def find_spec(self, name, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(f"No module named {name!r} (not loaded in jpcurate's processes)", name=name)
        return None


def without_pandas() -> None:
    """pyarrow imports pandas on its first array (0.2-0.4 s of CPU per process) although jpcurate never uses it: have
    the import fail, so pyarrow's pandas shim records pandas as absent. For processes jpcurate owns (the command line
    and its workers, which see `JPCURATE_NO_PANDAS=1`), never for a library user's process, and not with Ray (Ray Data
    uses pandas). A pandas imported earlier is left alone."""
    if "pandas" not in sys.modules and not any(isinstance(f, _NoPandas) for f in sys.meta_path):
        sys.meta_path.insert(0, _NoPandas())
    os.environ[NO_PANDAS] = "1"  # spawned workers inherit it (`_init_worker`)


def die_with_parent(parent: int) -> None:
    """Have the kernel kill this process when its parent dies (Linux); exit now if the parent is already gone."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no libc prctl (musl builds without it): only the check below
            pass
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)


def _init_worker(parent: int, initializer, initargs: tuple) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(parent)
    if os.environ.get(NO_PANDAS) == "1":
        without_pandas()
    if initializer is not None:
        initializer(*initargs)


@contextmanager
def sigint_deferred():
    """Hold SIGINT back while worker processes start. It is blocked, so the workers inherit the block through fork
    and exec and set SIG_IGN before anything unblocks it (a pending ignored signal is discarded): a Ctrl-C while a
    worker is still importing cannot print its traceback. This process records it meanwhile (another thread may
    take it) and raises KeyboardInterrupt when the block ends. (Ignoring it here lost a Ctrl-C that came while the
    workers started: the run went on to the end.)"""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no process group gets the Ctrl-C
        yield
        return
    got = []
    old_handler = signal.signal(signal.SIGINT, lambda *_: got.append(True))
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)  # a pending Ctrl-C reaches the recorder now
        signal.signal(signal.SIGINT, old_handler)
    if got:
        raise KeyboardInterrupt


def worker_pool(workers: int, initializer=None, initargs: tuple = ()) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                               initargs=(os.getpid(), initializer, initargs))


def stop_workers(ex: ProcessPoolExecutor) -> None:
    """Kill the pool's workers now (Ctrl-C) and wait for the executor to notice; queued work fails with the broken
    pool. No `cancel_futures` here: the executor's manager thread then fails the pending futures itself, and a
    cancelled one would make it raise InvalidStateError (CPython 3.11)."""
    for p in list((getattr(ex, "_processes", None) or {}).values()):  # the executor has no public handle on them
        p.kill()
    ex.shutdown(wait=True)


def map_tasks(fn, items: list, workers: int) -> list:
    """`[fn(x) for x in items]`, in up to `workers` worker processes (in order)."""
    if workers <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    ex = worker_pool(min(workers, len(items)))
    try:
        with sigint_deferred():  # the executor starts its workers on the first submit
            futures = [ex.submit(fn, x) for x in items]  # not ex.map: its iterator cancels futures when interrupted
        out = [f.result() for f in futures]
    except BrokenProcessPool as e:
        ex.shutdown(wait=True, cancel_futures=True)
        raise BrokenProcessPool(WORKER_DIED) from e
    except KeyboardInterrupt:
        stop_workers(ex)
        raise
    ex.shutdown(wait=True)
    return out
