"""Bad input end to end through `jpcurate filter`: every record is kept, rejected or quarantined, none lost."""

import json

import pyarrow.parquet as pq
import pytest
from curate_helpers import PROSE, read_jsonl_dir, write_jsonl

from jpcurate.cli import main
from jpcurate.engines.local import RunOptions, run_local, shard_done_path, shard_tasks
from jpcurate.presets import build_preset


def _filter(inp, out, *extra):
    assert main(["filter", "--input", str(inp), "--output", str(out), "--quiet", *extra]) == 0
    return json.loads((out / "stats.json").read_text())


def test_an_integer_past_pythons_digit_limit_is_quarantined_and_the_file_goes_on(tmp_path, capsys):
    # json.loads raises a plain ValueError (not JSONDecodeError) for a > 4300-digit integer
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "text": PROSE}, '{"id": "big", "text": "x", "n": '
                                              + "1" * 5000 + "}", {"id": "b", "text": PROSE}])
    s = _filter(inp, tmp_path / "o")
    assert s["documents"] == {"input": 3, "kept": 2, "rejected": 0, "quarantined": 1, "identity_holds": True}
    assert [r["id"] for r in read_jsonl_dir(tmp_path / "o" / "kept")] == ["a", "b"]
    (q,) = read_jsonl_dir(tmp_path / "o" / "quarantine")
    assert q["position"] == 2 and q["reason"].startswith("malformed JSON: Exceeds the limit")


def test_parquet_output_keeps_every_field_whatever_the_first_record_holds(tmp_path):
    inp = write_jsonl(tmp_path / "in.jsonl", [
        {"id": "a", "text": PROSE, "score": 1},
        {"id": "b", "text": PROSE, "score": "high", "url": "https://example.jp/b"},  # url only here
        json.dumps({"id": "c", "text": PROSE, "score": None, "extra": {}, "title": "\ud800"}),  # {}, lone surrogate
    ])
    s = _filter(inp, tmp_path / "o", "--format", "parquet")
    assert s["documents"]["kept"] == 3
    (part,) = (tmp_path / "o" / "kept").glob("*.parquet")
    rows = pq.read_table(part).to_pylist()
    assert [r["url"] for r in rows] == [None, "https://example.jp/b", None]
    assert [r["score"] for r in rows] == ["1", '"high"', None]  # a type that varies: JSON text
    assert rows[2]["extra"] == "{}" and rows[2]["title"] == '"\\ud800"'
    assert rows[0]["jpcurate"]["values"]["lang"] == "ja"


def test_a_write_error_stops_the_shard_and_is_not_taken_for_an_unreadable_file(tmp_path, monkeypatch):
    """A failing write (disk full) must not be quarantined as 'unreadable input' with the batch written twice:
    the shard stays unfinished, and the resumed run equals an uninterrupted one."""
    from jpcurate.io import writers

    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": str(i), "text": PROSE} for i in range(5)])
    real_write, calls = writers.ShardWriter.write, []

    def flaky_write(self, record):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_write(self, record)

    opts = RunOptions(output=tmp_path / "o", progress=False)
    monkeypatch.setattr(writers.ShardWriter, "write", flaky_write)
    with pytest.raises(OSError, match="No space left"):
        run_local(build_preset("ja-web"), [inp], opts)
    assert not shard_done_path(opts, shard_tasks([inp])[0]).exists()
    monkeypatch.setattr(writers.ShardWriter, "write", real_write)
    stats = run_local(build_preset("ja-web"), [inp], opts)
    assert (stats.input, stats.kept, stats.quarantined) == (5, 5, 0)
    assert [r["id"] for r in read_jsonl_dir(tmp_path / "o" / "kept")] == ["0", "1", "2", "3", "4"]


def _dedup(out, *inputs):
    assert main(["dedup", "--input", *map(str, inputs), "--output", str(out), "--quiet"]) == 0
    return json.loads((out / "stats.json").read_text())


def test_dedup_of_inputs_without_a_single_valid_document_finishes(tmp_path):
    bad = write_jsonl(tmp_path / "bad.jsonl", ['{"broken', "[1, 2]", {"id": "n", "text": None}])
    (tmp_path / "empty.jsonl").write_bytes(b"")
    s = _dedup(tmp_path / "o", bad, tmp_path / "empty.jsonl")
    assert s["documents"] == {"input": 3, "kept": 0, "rejected": 0, "quarantined": 3, "identity_holds": True}
    assert pq.read_table(tmp_path / "o" / "clusters.parquet").num_rows == 0


def test_dedup_quarantines_a_truncated_gzip_and_a_broken_parquet_like_filter_does(tmp_path):
    """The records before the break are deduplicated (a near-duplicate pair among them is verified from the
    truncated file), then one quarantine record names the file; the other inputs go on."""
    import gzip
    import random

    rng = random.Random(0)
    kana = [chr(c) for c in range(ord("あ"), ord("ん"))]
    texts = ["".join(rng.choice(kana) for _ in range(300)) + "。" for _ in range(40)]
    lines = [json.dumps({"id": f"g{i}", "text": t}, ensure_ascii=False) for i, t in enumerate(texts)]
    lines.insert(1, json.dumps({"id": "near", "text": texts[0][:-3] + "。"}, ensure_ascii=False))
    data = gzip.compress(("\n".join(lines) + "\n").encode())
    (tmp_path / "cut.jsonl.gz").write_bytes(data[: len(data) // 2])
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    good = write_jsonl(tmp_path / "good.jsonl", [{"id": "ok", "text": PROSE}])
    f = _filter(tmp_path / "cut.jsonl.gz", tmp_path / "f")  # the records read before the break, then one
    n_read = f["documents"]["input"] - 1
    assert f["documents"]["quarantined"] == 1 and 2 <= n_read < len(lines)
    s = _dedup(tmp_path / "o", tmp_path / "cut.jsonl.gz", tmp_path / "bad.parquet", good)
    assert s["documents"]["input"] == n_read + 3 and s["documents"]["quarantined"] == 2
    assert s["reasons"] == {"near_duplicate": 1}
    q = read_jsonl_dir(tmp_path / "o" / "quarantine")
    assert [(r["source"], r["position"]) for r in q] == [("cut.jsonl.gz", -1), ("bad.parquet", -1)]
    assert all(r["reason"].startswith("unreadable input: ") for r in q)


def test_a_utf8_byte_order_mark_does_not_quarantine_the_record_after_it(tmp_path):
    rec = [json.dumps({"id": i, "text": PROSE}, ensure_ascii=False).encode() for i in ("a", "b", "c")]
    inp = tmp_path / "bom.jsonl"  # a file saved with a BOM, then another one appended (cat a b > c)
    inp.write_bytes(b"\xef\xbb\xbf" + rec[0] + b"\r\n" + rec[1] + b"\r\n\xef\xbb\xbf" + rec[2] + b"\r\n")
    s = _filter(inp, tmp_path / "o")
    assert s["documents"] == {"input": 3, "kept": 3, "rejected": 0, "quarantined": 0, "identity_holds": True}
    s = _dedup(tmp_path / "d", inp)
    assert s["documents"]["quarantined"] == 0 and s["reasons"] == {"exact_duplicate": 2}


def test_python_dash_m_jpcurate_runs_the_command_line():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "jpcurate", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("jpcurate ")


@pytest.mark.parametrize("cmd", ["filter", "dedup"])
def test_unusable_inputs_and_outputs_are_one_line_errors_naming_the_path(tmp_path, capsys, cmd):
    ok = write_jsonl(tmp_path / "ok.jsonl", [{"id": "a", "text": PROSE}])
    (tmp_path / "notes.txt").write_text("x")
    cases = [([str(tmp_path / "missing.jsonl")], str(tmp_path / "o"), "missing.jsonl does not exist"),
             ([str(tmp_path / "notes.txt")], str(tmp_path / "o"), "notes.txt: unknown input format"),
             ([str(ok)], str(ok), "ok.jsonl")]  # the output path is a file
    for inputs, out, message in cases:
        with pytest.raises(SystemExit) as e:
            main([cmd, "--input", *inputs, "--output", out, "--quiet"])
        text = str(e.value.code) + capsys.readouterr().err
        assert e.value.code != 0 and message in text and "Traceback" not in text


def test_a_bad_pipeline_config_is_an_error_naming_the_file_and_the_problem(tmp_path):
    cfg = tmp_path / "p.toml"
    cfg.write_text('[[steps]]\ntype = "NoSuchRule"\n')
    with pytest.raises(SystemExit, match="p.toml: unknown step type 'NoSuchRule'"):
        main(["run", "--config", str(cfg), "--input", str(cfg), "--output", str(tmp_path / "o")])


@pytest.mark.parametrize("args, message", [
    (["dedup", "--split-mb", "0"], "split_bytes must be >= 1"),
    (["dedup", "--num-perm", "0"], "num_perm, ngram and split_bytes must be >= 1"),
    (["dedup", "--bands", "3"], "bands and rows must be given together"),  # was silently ignored
    (["filter", "--max-shard-mb", "0"], "--max-shard-mb must be positive"),
])
def test_out_of_range_options_are_refused_before_the_output_is_touched(tmp_path, args, message):
    ok = write_jsonl(tmp_path / "ok.jsonl", [{"id": "a", "text": PROSE}])
    out = tmp_path / "o"
    with pytest.raises(SystemExit) as e:
        main([args[0], "--input", str(ok), "--output", str(out), "--quiet", *args[1:]])
    assert message in str(e.value.code)
    assert not out.exists()  # a run.json left behind would refuse the corrected command as a changed resume


class _DieOn:
    """A step that kills its own process (as the OOM killer would) on one document."""

    name = "die_on"

    def apply(self, doc):
        if doc.id == "boom":
            import os
            import signal

            os.kill(os.getpid(), signal.SIGKILL)
        return None


@pytest.mark.timeout(120)
def test_a_worker_killed_mid_run_stops_the_run_with_a_message_instead_of_hanging(tmp_path):
    from concurrent.futures.process import BrokenProcessPool

    a = write_jsonl(tmp_path / "a.jsonl", [{"id": "ok", "text": PROSE}])
    b = write_jsonl(tmp_path / "b.jsonl", [{"id": "boom", "text": PROSE}])
    opts = RunOptions(output=tmp_path / "o", workers=2, progress=False)
    with pytest.raises(BrokenProcessPool, match="run the same command again to resume"):
        run_local(build_preset("ja-web")[:2] + [_DieOn()], [a, b], opts)
    assert not shard_done_path(opts, shard_tasks([a, b])[1]).exists()


def test_dedup_shows_progress_per_task_not_only_per_phase(tmp_path, capsys):
    from jpcurate.dedup.local import run_dedup
    from jpcurate.dedup.stages import DedupConfig

    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": str(i), "text": PROSE + "猫" * i} for i in range(300)])
    run_dedup([inp], tmp_path / "o", DedupConfig(split_bytes=40_000), progress=True)
    err = capsys.readouterr().err
    n_tasks = len(list((tmp_path / "o" / "_dedup" / "scan" / "done").glob("*.json")))
    assert n_tasks > 1
    for phase in ("scan", "buckets", "write"):
        assert err.count(f"dedup: {phase} task ") == n_tasks
    assert "dedup: scan task 00001 (in.jsonl bytes " in err


def test_run_with_dedup_steps_writes_the_final_output_in_the_requested_format(tmp_path):
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "text": PROSE}, {"id": "b", "text": PROSE}])
    cfg = tmp_path / "p.toml"
    cfg.write_text('[[steps]]\ntype = "Normalize"\n[[steps]]\ntype = "ExactDedup"\n')
    out = tmp_path / "o"
    assert main(["run", "--config", str(cfg), "--input", str(inp), "--output", str(out), "--quiet",
                 "--format", "jsonl.gz"]) == 0
    assert [p.name for p in (out / "filtered" / "kept").iterdir()] == ["00000-in-00000.jsonl.gz"]
    assert [p.name for p in (out / "kept").iterdir()] == ["00000-00000.jsonl.gz"]  # was .jsonl: --format ignored
    assert [p.name for p in (out / "removed").iterdir()] == ["00000-00000.jsonl.gz"]


def test_train_lm_reports_the_records_it_leaves_out_and_names_an_unreadable_file(tmp_path, capsys):
    import gzip

    recs = [{"id": str(i), "text": PROSE[i:]} for i in range(6)] + ['{"broken', {"id": "e", "text": ""}]
    inp = write_jsonl(tmp_path / "in.jsonl", recs)
    assert main(["train-lm", "--input", str(inp), "--output", str(tmp_path / "m.npz")]) == 0
    assert "records left out: {'malformed': 1, 'empty': 1}" in capsys.readouterr().err
    data = gzip.compress(inp.read_bytes())
    (tmp_path / "cut.jsonl.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(SystemExit, match="train-lm: cannot read .*cut.jsonl.gz"):
        main(["train-lm", "--input", str(tmp_path / "cut.jsonl.gz"), "--output", str(tmp_path / "m2.npz")])


def test_dedup_counts_quarantine_reasons_by_kind_as_filter_does(tmp_path):
    inp = tmp_path / "in.jsonl"
    inp.write_bytes(b'{"text": "\xff"}\n{"text": "ab\xfe"}\n{"text": \n[1\n' + json.dumps({"text": PROSE}).encode()
                    + b"\n")
    s = _dedup(tmp_path / "o", inp)
    f = _filter(inp, tmp_path / "f")
    assert s["quarantine_reasons"] == f["quarantine_reasons"] == {"invalid UTF-8": 2, "malformed JSON": 2}


def test_an_output_inside_the_input_directory_is_not_read_back_on_a_rerun(tmp_path):
    """--input d --output d/out: the rerun (a resume) sees the same inputs, not its own kept/ parts as new ones."""
    d = tmp_path / "d"
    d.mkdir()
    write_jsonl(d / "in.jsonl", [{"id": i, "text": PROSE} for i in "ab"])
    first = _filter(d, d / "out")
    again = _filter(d, d / "out")
    assert first["documents"] == again["documents"] == {"input": 2, "kept": 2, "rejected": 0, "quarantined": 0,
                                                        "identity_holds": True}
    e = tmp_path / "e"
    e.mkdir()
    write_jsonl(e / "in.jsonl", [{"id": i, "text": PROSE} for i in "ab"])
    assert _dedup(e / "out", e)["documents"]["input"] == _dedup(e / "out", e)["documents"]["input"] == 2
