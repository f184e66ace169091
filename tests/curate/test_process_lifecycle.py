"""What a user meets around a run: kill -9 and Ctrl-C of a multi-worker run, a missing Ray, an input named twice.

The kill and Ctrl-C tests start the real command line in a subprocess on ~8 MB of bundled web text, 2 workers."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jpcurate.dedup.tasks import plan_tasks
from jpcurate.engines.local import RunOptions, run_local
from jpcurate.engines.workers import sigint_deferred
from jpcurate.presets import build_preset

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("JPLLM_DATA", ROOT / "data"))  # the isolation run copies the tests elsewhere
SRC = ROOT / "src"  # this checkout's code when there is one, else the installed jpcurate
linux_only = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(SRC)} if (SRC / "jpcurate").is_dir() else dict(os.environ)


def _inputs(tmp: Path, files: int = 4, copies: int = 10) -> list[str]:
    lines = (DATA / "web_ja" / "fineweb2_edu_ja_sample.jsonl").read_text(encoding="utf-8").splitlines()
    paths = []
    for f in range(files):
        p = tmp / f"in{f}.jsonl"
        with open(p, "w", encoding="utf-8") as out:
            for c in range(copies):
                for i, line in enumerate(lines):
                    rec = json.loads(line)
                    out.write(json.dumps({"id": f"{f}-{c}-{i}", "text": rec["text"]}, ensure_ascii=False) + "\n")
        paths.append(str(p))
    return paths


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(d.name))
    return out


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _sigint_default() -> None:
    """The command as started from a terminal: a suite run in the background (`cmd &`) has SIGINT ignored, which the
    child would inherit and keep, and then no Ctrl-C could reach it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(cmd: list[str], want_children: int) -> tuple[subprocess.Popen, list[int]]:
    proc = subprocess.Popen([sys.executable, "-m", "jpcurate", *cmd], env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, preexec_fn=_sigint_default)
    deadline = time.monotonic() + 60
    kids: list[int] = []
    while time.monotonic() < deadline and proc.poll() is None:
        kids = _children(proc.pid)
        if len(kids) >= want_children:  # resource tracker + workers
            return proc, kids
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"the run ended or stalled before its workers started: {proc.communicate()[1][-500:]}")


@linux_only
@pytest.mark.parametrize("command", ["filter", "dedup"])
def test_kill_9_leaves_nothing_running(tmp_path, command):
    inputs = _inputs(tmp_path)
    extra = ["--preset", "ja-web"] if command == "filter" else ["--split-mb", "1"]
    proc, kids = _start([command, "--input", *inputs, "--output", str(tmp_path / "out"), "--workers", "2",
                         "--quiet", *extra], want_children=3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(map(_alive, kids)):
        time.sleep(0.05)
    assert [k for k in kids if _alive(k)] == []  # workers and the resource tracker are gone


@linux_only
def test_a_ctrl_c_while_the_workers_start_is_held_not_lost():
    """The parent ignored SIGINT while its workers started (so they could not print tracebacks): a Ctrl-C in that
    window was dropped and the run went on to the end with exit 0. Now it waits, and the workers start deaf to it."""
    reached = False
    with pytest.raises(KeyboardInterrupt):
        with sigint_deferred():
            child = subprocess.run([sys.executable, "-c", "import signal; "
                                    "print(signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, []))"],
                                   capture_output=True, text=True, timeout=60)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            reached = True  # held back until the block ends
    assert reached and child.stdout.strip() == "True"  # a process started meanwhile inherits the block


@linux_only
@pytest.mark.parametrize("command", ["filter", "dedup"])
def test_ctrl_c_says_rerun_resumes_and_rerun_finishes(tmp_path, command):
    inputs = _inputs(tmp_path, copies=20)  # ~17 MB: the run is still going when the signal comes
    out = tmp_path / "out"
    extra = ["--preset", "ja-web"] if command == "filter" else ["--split-mb", "1"]
    cmd = [command, *extra, "--input", *inputs, "--output", str(out), "--workers", "2", "--quiet"]
    proc, kids = _start(cmd, want_children=3)
    time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.strip().splitlines() == [f"jpcurate {command}: interrupted; run the same command again to resume "
                                        "(finished work is kept)"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(map(_alive, kids)):
        time.sleep(0.05)
    assert [k for k in kids if _alive(k)] == []
    r = subprocess.run([sys.executable, "-m", "jpcurate", *cmd], env=_env(), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["input"] == sum(1 for p in inputs for _ in open(p, encoding="utf-8"))


@pytest.mark.parametrize("command", ["filter", "dedup"])
def test_engine_ray_without_ray_says_how_to_install(tmp_path, command):
    inp = _inputs(tmp_path, files=1, copies=1)
    code = ("import sys; sys.modules['ray'] = None; from jpcurate.cli import main; "
            "raise SystemExit(main(sys.argv[1:]))")  # ray hidden from imports
    extra = ["--preset", "ja-web"] if command == "filter" else []
    r = subprocess.run([sys.executable, "-c", code, command, "--input", *inp, "--output", str(tmp_path / "o"),
                        "--engine", "ray", "--quiet", *extra], env=_env(), capture_output=True, text=True)
    assert r.returncode != 0
    assert r.stderr.strip().splitlines() == [
        'jpcurate: --engine ray needs Ray, which is not installed: pip install "jpcurate[ray]"']


@pytest.mark.parametrize("command", ["filter", "dedup"])
def test_input_given_twice_is_read_once(tmp_path, command):
    (inp,) = _inputs(tmp_path, files=1, copies=1)
    same = str(Path(inp).parent / "." / Path(inp).name)  # another spelling of the same file
    extra = ["--preset", "ja-web"] if command == "filter" else []
    r = subprocess.run([sys.executable, "-m", "jpcurate", command, "--input", inp, same, str(tmp_path),
                        "--output", str(tmp_path / "out"), "--quiet", *extra], env=_env(), capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert f"input {same} given more than once (and 1 more): each file is read once" in r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["input"] == sum(1 for _ in open(inp, encoding="utf-8"))  # not twice or three times


def test_library_refuses_an_input_twice(tmp_path):
    (inp,) = _inputs(tmp_path, files=1, copies=1)
    with pytest.raises(ValueError, match="listed more than once"):
        run_local(build_preset("ja-web"), [inp, inp], RunOptions(output=tmp_path / "o", progress=False))
    with pytest.raises(ValueError, match="listed more than once"):
        plan_tasks([inp, str(Path(inp).resolve())])


def test_cli_does_not_load_pandas_but_a_library_process_may(tmp_path):
    """pyarrow would import pandas (0.2-0.4 s per process) on its first array; the command line keeps it out."""
    pytest.importorskip("pandas")
    (inp,) = _inputs(tmp_path, files=1, copies=1)
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "jpcurate", "dedup", "--input", inp, "--output",
                        str(tmp_path / "out"), "--workers", "1", "--quiet"], env=_env(), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    loaded = [ln for ln in r.stderr.splitlines() if re.search(r"\|\s+pandas\.", ln)]  # nested names are indented
    assert loaded == []  # (the refused attempt itself shows as a "pandas" line with no submodules)
    code = ("import sys; from jpcurate.dedup import run_dedup; run_dedup(sys.argv[1:2], sys.argv[2], progress=False); "
            "import pandas; print(pandas.__name__)")
    r = subprocess.run([sys.executable, "-c", code, inp, str(tmp_path / "lib")], env=_env(), capture_output=True,
                       text=True)
    assert r.returncode == 0 and r.stdout.strip() == "pandas", r.stderr[-2000:]
