"""A small stage runner for multi-step pipelines (`make demo`): run each stage's commands as subprocesses, stream
their output with a heartbeat, time them, and reuse a finished stage whose inputs did not change.

A stage's fingerprint hashes its command lines, the content of its input files (data, configs, the scripts it
runs) and the fingerprints of the stages it depends on; it is recorded in `<state_dir>/<stage>.json` when the
stage succeeds. A rerun reuses a stage whose fingerprint matches and whose outputs still exist. A stage that is
rerun with a *different* fingerprint has its outputs removed first (a pretraining run would otherwise try to
resume from checkpoints of another run); one that was interrupted with the same fingerprint keeps them, so the
apps resume where they stopped. A failure raises `StageFailed` naming the stage, its log and the exact command
that reruns it alone. Torch-free.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Stage:
    name: str
    commands: list[list[str]] = field(default_factory=list)  # run in order, each must exit 0
    inputs: list[Path] = field(default_factory=list)  # files or directories outside the graph (hashed)
    outputs: list[Path] = field(default_factory=list)  # must exist after a success; removed before a changed rerun
    after: list[str] = field(default_factory=list)  # upstream stage names
    action: Callable[[], str] | None = None  # in-process work after the commands; returns a summary line
    summary: Callable[[], str] | None = None  # one line after a success (e.g. the loss, the kept share)
    rerun: str = ""  # how to rerun an in-process stage alone (commands stages use their own command lines)

    def rerun_command(self) -> str:
        if self.commands:
            return " && ".join(shlex.join(c) for c in self.commands)
        return self.rerun


class StageFailed(RuntimeError):
    def __init__(self, stage: str, rerun: str, detail: str, log: Path | None):
        self.stage, self.rerun, self.detail, self.log = stage, rerun, detail, log
        where = f"; log: {log}" if log else ""
        super().__init__(f"stage '{stage}' failed: {detail}{where}\nrerun it alone:\n    {rerun}")


@dataclass
class StageResult:
    name: str
    status: str  # "ran" | "reused" | "earlier" (not selected this time; finished in an earlier run)
    wall_s: float  # this run's time, or the recorded one of a reused stage
    summary: str
    fingerprint: str


def hash_inputs(paths: list[Path], root: Path) -> dict[str, str]:
    """{path relative to root: sha256 of the content} for every file of every input (a missing one: 'missing')."""
    out = {}
    for p in paths:
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        for f in files:
            key = os.path.relpath(f, root)
            out[key] = hashlib.sha256(f.read_bytes()).hexdigest() if f.is_file() else "missing"
    return out


class StageRunner:
    def __init__(self, root: Path, state_dir: Path, *, env: dict | None = None, heartbeat_s: float = 5.0,
                 echo: Callable[[str], None] = lambda s: print(s, flush=True)):
        self.root, self.state_dir, self.env, self.heartbeat_s, self.echo = root, state_dir, env, heartbeat_s, echo
        self.fingerprints: dict[str, str | None] = {}  # None: not selected and never finished

    def fingerprint(self, stage: Stage) -> str:
        missing = [a for a in stage.after if a not in self.fingerprints]
        if missing:
            raise ValueError(f"stage '{stage.name}' depends on {missing}, which come later or do not exist")
        if unfinished := [a for a in stage.after if self.fingerprints[a] is None]:
            raise StageFailed(stage.name, stage.rerun_command(), f"needs {unfinished}, which never finished "
                              "(run the whole pipeline once, or include those stages)", None)
        blob = {"commands": stage.commands, "rerun": stage.rerun, "inputs": hash_inputs(stage.inputs, self.root),
                "after": {a: self.fingerprints[a] for a in stage.after}}
        return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]

    def record(self, name: str) -> dict | None:
        path = self.state_dir / f"{name}.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def _write(self, name: str, rec: dict) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_dir / f"{name}.json.tmp"
        tmp.write_text(json.dumps(rec, ensure_ascii=False, indent=1) + "\n")
        tmp.replace(self.state_dir / f"{name}.json")

    def run(self, stages: list[Stage], *, fresh: bool = False, selected: set[str] | None = None) -> list[StageResult]:
        """Run the stages in order. `selected`: only these run (or are reused); the others must have finished
        before (their recorded fingerprints feed the selected ones). `fresh`: rerun every selected stage."""
        results = []
        for stage in stages:
            rec = self.record(stage.name)
            done = rec is not None and rec.get("status") == "done"
            if selected is not None and stage.name not in selected:  # its recorded fingerprint feeds the others
                self.fingerprints[stage.name] = rec["fingerprint"] if done else None
                if done:
                    results.append(StageResult(stage.name, "earlier", rec["wall_s"], rec.get("summary", ""),
                                               rec["fingerprint"]))
                continue
            fp = self.fingerprint(stage)
            self.fingerprints[stage.name] = fp
            outputs_there = all(p.exists() for p in stage.outputs)
            if done and not fresh and rec["fingerprint"] == fp and outputs_there:
                self.echo(f"== [{stage.name}] reused: inputs unchanged since {rec['finished']} "
                          f"({rec['wall_s']:.1f} s then): {rec.get('summary', '')}")
                results.append(StageResult(stage.name, "reused", rec["wall_s"], rec.get("summary", ""), fp))
                continue
            results.append(self._run_stage(stage, fp, resume=not fresh and rec is not None and
                                           rec.get("status") == "started" and rec["fingerprint"] == fp))
        return results

    def _run_stage(self, stage: Stage, fp: str, *, resume: bool) -> StageResult:
        if not resume:  # outputs of another run (other inputs) are removed; an interrupted identical run resumes
            for p in stage.outputs:
                if p.is_dir():
                    shutil.rmtree(p)
                else:
                    p.unlink(missing_ok=True)
        self._write(stage.name, {"status": "started", "fingerprint": fp, "started": time.strftime("%F %T")})
        log = self.state_dir / f"{stage.name}.log"
        t0 = time.perf_counter()
        self.echo(f"\n== [{stage.name}]{' (resuming)' if resume else ''}")
        with log.open("w", encoding="utf-8") as logf:
            for cmd in stage.commands:
                self._run_command(stage, cmd, logf, t0, log)
        try:
            summary = stage.action() if stage.action else ""
            missing = [str(p) for p in stage.outputs if not p.exists()]
            if missing:
                raise RuntimeError(f"finished without writing {missing}")
            if stage.summary:
                summary = stage.summary()
        except Exception as e:  # an in-process step or a check: named like a failed command
            raise StageFailed(stage.name, stage.rerun_command(), f"{type(e).__name__}: {e}", log) from e
        wall = time.perf_counter() - t0
        self._write(stage.name, {"status": "done", "fingerprint": fp, "finished": time.strftime("%F %T"),
                                 "wall_s": round(wall, 2), "summary": summary, "rerun": stage.rerun_command()})
        self.echo(f"== [{stage.name}] done in {wall:.1f} s{': ' + summary if summary else ''}")
        return StageResult(stage.name, "ran", wall, summary, fp)

    def _run_command(self, stage: Stage, cmd: list[str], logf, t0: float, log: Path) -> None:
        """Stream the command's output (and a heartbeat line when it is quiet); stop it if we are interrupted."""
        self.echo(f"$ {shlex.join(cmd)}")
        logf.write(f"$ {shlex.join(cmd)}\n")
        try:
            proc = subprocess.Popen(cmd, cwd=self.root, env=self.env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1)
        except OSError as e:
            raise StageFailed(stage.name, stage.rerun_command(), f"cannot start {cmd[0]!r}: {e}", log) from e
        lines: queue.Queue = queue.Queue()
        reader = threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout] + [lines.put(None)], daemon=True)
        reader.start()
        tail: list[str] = []
        try:
            while True:
                try:
                    line = lines.get(timeout=self.heartbeat_s)
                except queue.Empty:
                    self.echo(f"   [{stage.name}] running, {time.perf_counter() - t0:.0f} s")
                    continue
                if line is None:
                    break
                logf.write(line)
                tail = (tail + [line.rstrip()])[-5:]
                self.echo(f"   {line.rstrip()}")
            code = proc.wait()
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        if code != 0:
            last = " | ".join(t for t in tail if t)[-400:]
            raise StageFailed(stage.name, stage.rerun_command(), f"exit status {code} from {shlex.join(cmd)!r}"
                              f"{' (last lines: ' + last + ')' if last else ''}", log)
