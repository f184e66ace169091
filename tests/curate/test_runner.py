import json
import os
import signal
import subprocess
import sys
import time

import pytest
from curate_helpers import PROSE, read_jsonl_dir, tree_bytes, write_jsonl
from hypothesis import given, settings
from hypothesis import strategies as st

from jpcurate.document import Document
from jpcurate.engines.local import RunOptions, run_local
from jpcurate.pipeline import Pipeline, Step, run_pipeline
from jpcurate.steps.charstats import Length


class Boom(Step):
    name = "boom"

    def apply(self, doc):
        if "爆" in doc.text:
            raise ValueError("bad input")
        return None


def test_run_pipeline_accounts_for_everything_and_isolates_a_raising_step():
    from jpcurate.document import Malformed

    items = [Document("a", PROSE), Document("b", "爆発"), Document("c", "短い"), Malformed("f", 4, "bad", "{")]
    kept, rejected, st = run_pipeline(Pipeline([Boom(), Length(lo=10)]), items)
    assert [d.id for d in kept] == ["a"]
    assert {d.id: d.reason for d in rejected} == {"b": "boom.error", "c": "min_chars"}
    assert "ValueError: bad input" in rejected[0].detail
    assert (st.input, st.kept, st.rejected, st.quarantined) == (4, 1, 2, 1)
    st.check_identity()
    assert st.steps["boom"].docs_in == 3 and st.steps["min_chars"].docs_out == 1


def test_pipeline_rejects_duplicate_step_names():
    with pytest.raises(ValueError, match="unique"):
        Pipeline([Length(lo=1), Length(lo=2)])


def _inputs(tmp_path, n_files=3, n_docs=12):
    paths = []
    for f in range(n_files):
        recs = [{"id": f"{f}-{i}", "text": PROSE if i % 3 else "短い", "src": f} for i in range(n_docs)]
        recs.insert(5, '{"broken json')
        paths.append(write_jsonl(tmp_path / f"in{f}.jsonl", recs))
    return paths


def test_local_runner_outputs_stats_and_report(tmp_path):
    from jpcurate.presets import build_preset

    paths = _inputs(tmp_path)
    stats = run_local(build_preset("ja-web"), paths, RunOptions(output=tmp_path / "out", progress=False))
    out = tmp_path / "out"
    s = json.loads((out / "stats.json").read_text())
    d = s["documents"]
    assert d["input"] == 39 and d["quarantined"] == 3 and d["identity_holds"]
    assert d["input"] == d["kept"] + d["rejected"] + d["quarantined"] == stats.input
    kept = read_jsonl_dir(out / "kept")
    assert len(kept) == d["kept"] and all(r["src"] in (0, 1, 2) for r in kept)  # input fields preserved
    rejected = read_jsonl_dir(out / "rejected")
    assert {r["reason"] for r in rejected} == {"min_chars"}
    q = read_jsonl_dir(out / "quarantine")
    assert len(q) == 3 and all(r["reason"].startswith("malformed JSON") for r in q)
    report = (out / "report.md").read_text()
    assert "min_chars" in report and "holds" in report


def test_parallel_workers_give_the_same_bytes_as_one_worker(tmp_path):
    from jpcurate.presets import build_preset

    paths = _inputs(tmp_path, n_files=2)
    run_local(build_preset("ja-web"), paths, RunOptions(output=tmp_path / "a", workers=1, progress=False))
    run_local(build_preset("ja-web"), paths, RunOptions(output=tmp_path / "b", workers=2, progress=False))
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")


def test_resume_refuses_a_different_configuration(tmp_path):
    paths = _inputs(tmp_path, n_files=1)
    run_local(Pipeline([Length(lo=10)]), paths, RunOptions(output=tmp_path / "o", progress=False))
    with pytest.raises(SystemExit, match="different"):
        run_local(Pipeline([Length(lo=11)]), paths, RunOptions(output=tmp_path / "o", progress=False))


def test_resume_redoes_an_unfinished_shard_exactly(tmp_path):
    """Simulated kill: shard 1 left a partial part and a temporary but no done marker."""
    paths = _inputs(tmp_path)
    opts = RunOptions(output=tmp_path / "full", progress=False, max_shard_bytes=2000)
    run_local(Pipeline([Length(lo=10)]), paths, opts)
    killed = tmp_path / "killed"
    opts2 = RunOptions(output=killed, progress=False, max_shard_bytes=2000)
    run_local(Pipeline([Length(lo=10)]), paths, opts2)
    (killed / "shards" / "00001-in1.json").unlink()
    (killed / "stats.json").unlink()
    part = killed / "kept" / "00001-in1-00000.jsonl"
    part.write_text(part.read_text()[:50])  # a torn part under a final name
    (killed / "kept" / ".00001-in1-00001.jsonl.tmp").write_text("partial")
    run_local(Pipeline([Length(lo=10)]), paths, opts2)
    assert tree_bytes(tmp_path / "full") == tree_bytes(killed)
    assert json.loads((killed / "stats.json").read_text())["documents"]["identity_holds"]


SLOW_RUN = """
import sys, time
from jpcurate.pipeline import Pipeline, Step
from jpcurate.steps.charstats import Length
from jpcurate.engines.local import RunOptions, run_local

class Sleepy(Step):
    name = "sleepy"
    def apply(self, doc):
        time.sleep(float(sys.argv[3]))
        return None

run_local(Pipeline([Sleepy(), Length(lo=10)]), sys.argv[4:], RunOptions(output=sys.argv[1], progress=False,
          batch_size=int(sys.argv[2]), max_shard_bytes=1500))
"""


@pytest.mark.slow
def test_real_kill_and_resume_equals_uninterrupted(tmp_path):
    paths = [str(p) for p in _inputs(tmp_path, n_files=4, n_docs=10)]
    script = tmp_path / "slow_run.py"
    script.write_text(SLOW_RUN)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    subprocess.run([sys.executable, str(script), str(tmp_path / "ref"), "4", "0", *paths], check=True, env=env)
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(script), str(out), "4", "0.05", *paths], env=env)
    deadline = time.time() + 60
    while time.time() < deadline and not (out / "shards" / "00001-in1.json").exists():
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "stats.json").exists(), "the run finished before it could be killed"
    subprocess.run([sys.executable, str(script), str(out), "4", "0", *paths], check=True, env=env)
    assert tree_bytes(tmp_path / "ref") == tree_bytes(out)
    ref = json.loads((tmp_path / "ref" / "stats.json").read_text())
    got = json.loads((out / "stats.json").read_text())
    assert ref == got and got["documents"]["identity_holds"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(
    st.builds(lambda t: {"text": t}, st.text(max_size=80)),
    st.builds(lambda t: {"text": t, "id": "x"}, st.sampled_from([PROSE, "短い", "", "<b>", "ｱｲｳ"])),
    st.just({"no_text": 1}), st.just({"text": 3}), st.text(max_size=10)), max_size=25))
def test_accounting_identity_holds_for_any_mix(records):
    import json as _json

    from jpcurate.io.readers import parse_line
    from jpcurate.presets import build_preset

    items = [parse_line((r if isinstance(r, str) else _json.dumps(r)).encode("utf-8", "surrogatepass"),
                        source="h", position=i, text_field="text", id_field="id") for i, r in enumerate(records)]
    kept, rejected, stats = run_pipeline(build_preset("ja-web"), items)
    stats.check_identity()
    assert stats.input == len(records) == len(kept) + len(rejected) + stats.quarantined
