"""The batching scheduler: one thread owns the model and a `Decoder`; requests from any thread queue up as Jobs
and join the running batch between decoding steps (continuous batching at step granularity), so every running
row shares one forward per step. A row leaves as soon as it stops, reaches its length or its client goes away.

Events reach the caller through `Job.emit(event)`: ("delta", choice, text), ("done", choice, finish_reason,
completion_tokens), ("error", message). By default `emit` runs on the engine thread; with `deliver` set, the events
of one step go out together as one `deliver([(job, event), ...])` call (the HTTP layer hands that list to its event
loop once per step instead of waking it once per token).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from jpmoe.decoder import Decoder, Row
from jpmoe.sampling import SamplingParams
from jpmoe.serve.textstream import TextStream

log = logging.getLogger("jpmoe.serve")


class QueueFull(Exception):
    pass


@dataclass(eq=False)
class Job:
    """One request: `prompts[i]` runs as `n` rows; choice index = i * n + j (OpenAI's order)."""

    prompts: list[list[int]]
    params: SamplingParams
    n: int
    emit: Callable[[tuple], None]
    stops: tuple[str, ...] = ()
    seed: int | None = None
    cancelled: bool = False  # set by the client side; the engine drops the rows before its next step
    rows: list[Row] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.prompts) * self.n

    def cancel(self) -> None:
        self.cancelled = True


@dataclass(eq=False)
class Choice:
    job: Job
    index: int
    stream: TextStream


class Engine:
    def __init__(self, model, tokenizer, *, max_batch: int = 16, max_queue: int = 64, max_len: int | None = None):
        self.tokenizer = tokenizer
        self.decoder = Decoder(model, max_batch=max_batch, max_len=max_len)  # the KV cache: max_batch x max_len
        self.max_batch, self.max_queue = max_batch, max_queue
        self.pending: deque[Job] = deque()
        self.cv = threading.Condition()
        self.stopping = False
        self.admitting = 0  # rows running or being prefilled, counted under cv for submit's limit
        self.thread: threading.Thread | None = None
        self.deliver: Callable[[list[tuple[Job, tuple]]], None] | None = None
        self.outbox: list[tuple[Job, tuple]] = []
        self.stats = Counter()  # steps, rows per finish reason, peak batch: GET /health shows them

    @property
    def max_len(self) -> int:
        return self.decoder.max_len

    def status(self) -> dict:
        with self.cv:
            waiting = sum(j.size for j in self.pending)
        return {"running": len(self.decoder.rows), "waiting": waiting, **self.stats}

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="jpmoe-engine", daemon=True)
        self.thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Finish every queued and running request, then end the thread."""
        with self.cv:
            self.stopping = True
            self.cv.notify()
        if self.thread is not None:
            self.thread.join(timeout)

    def submit(self, job: Job) -> None:
        if job.size > self.max_batch:
            raise ValueError(f"{job.size} rows (prompts x n) exceed the batch limit {self.max_batch}")
        with self.cv:
            if self.stopping:
                raise QueueFull("the server is shutting down")
            queued = sum(j.size for j in self.pending)
            running = max(len(self.decoder.rows), self.admitting)
            if running + queued + job.size > self.max_batch + self.max_queue:
                raise QueueFull(f"{running} rows running, {queued} waiting (limits {self.max_batch} "
                                f"running + {self.max_queue} waiting)")
            self.pending.append(job)
            self.cv.notify()

    def _run(self) -> None:
        torch.set_grad_enabled(False)
        while True:
            with self.cv:
                while not self.pending and not self.decoder.rows:
                    if self.stopping:
                        return
                    self.cv.wait(0.5)
            try:
                self._drop_cancelled()
                self._admit()
                if self.decoder.rows:
                    self.stats["peak_batch"] = max(self.stats["peak_batch"], len(self.decoder.rows))
                    self._handle(self.decoder.step())
                    self.stats["steps"] += 1
            except Exception as e:  # a bug, not a client mistake: fail the running jobs, keep serving
                log.exception("decoding step failed")
                self._fail_all(f"internal error while decoding: {type(e).__name__}: {e}")
            self._flush()
            # Small torch ops keep the GIL: without a pause the HTTP thread only runs at the interpreter's 5 ms
            # forced switches, which delays every chunk written and every request admitted.
            time.sleep(0)

    def _drop_cancelled(self) -> None:
        for row in list(self.decoder.rows):
            if row.tag.job.cancelled:
                self.decoder.finish(row, "cancelled")
                self.stats["cancelled"] += 1
        with self.cv:
            for job in [j for j in self.pending if j.cancelled]:
                self.pending.remove(job)

    def _admit(self) -> None:
        """Move whole queued jobs (FIFO) into the batch while their rows fit; prefill them together."""
        new: list[Row] = []
        with self.cv:
            while self.pending and self.pending[0].size <= self.decoder.free_slots - len(new):
                job = self.pending.popleft()
                new += self._rows(job)
            self.admitting = len(self.decoder.rows) + len(new)
        if new:
            try:
                self.decoder.add(new)
            except ValueError as e:  # checked by the HTTP layer already; never lose a request silently
                for job in {r.tag.job for r in new}:
                    self._emit(job, ("error", str(e)))
                return
            finally:
                with self.cv:
                    self.admitting = 0
            self._handle(new)

    def _rows(self, job: Job) -> list[Row]:
        for i, prompt in enumerate(job.prompts):
            for j in range(job.n):
                index = i * job.n + j
                gen = None
                if job.seed is not None and job.params.temperature > 0:
                    gen = torch.Generator(device=self.decoder.device).manual_seed(job.seed + index)
                job.rows.append(Row(list(prompt), job.params, gen, tag=Choice(job, index,
                                                                               TextStream(self.tokenizer, job.stops))))
        return job.rows

    def _handle(self, rows: list[Row]) -> None:
        """The newest token of each row: text deltas out, stop strings checked, finished rows reported."""
        for row in rows:
            choice: Choice = row.tag
            token = row.tokens[-1]
            delta = "" if (row.finish == "stop" and token in row.params.stop_token_ids) else choice.stream.push(token)
            if choice.stream.stopped and row.finish is None:
                self.decoder.finish(row, "stop")
            if row.finish is not None:
                delta += choice.stream.flush()
            if delta:
                self._emit(choice.job, ("delta", choice.index, delta))
            if row.finish is not None:
                self.stats[row.finish] += 1
                self._emit(choice.job, ("done", choice.index, row.finish, len(row.tokens)))

    def _emit(self, job: Job, event: tuple) -> None:
        if self.deliver is None:
            job.emit(event)
        else:
            self.outbox.append((job, event))

    def _flush(self) -> None:
        if self.outbox:
            out, self.outbox = self.outbox, []
            self.deliver(out)

    def _fail_all(self, message: str) -> None:
        jobs = {r.tag.job for r in self.decoder.rows}
        for row in list(self.decoder.rows):
            self.decoder.finish(row, "error")
        for job in jobs:
            self._emit(job, ("error", message))
