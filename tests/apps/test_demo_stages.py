"""`make demo`'s stage graph with the heavy steps stubbed: order, reuse of finished stages, a rerun when an input
changes, --fresh, --only/--start/--stop, a failing stage named with its rerun command, the report; and the rule
that the demo trains on no evaluation set and no crawled page."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest
from app_helpers import ROOT, load_app

from jpmoe.data import raw_mix
from jpmoe.pipeline_stages import Stage, StageFailed, StageRunner

EVAL_SETS = ("data/jglue", "data/elyza_tasks_100", "data/japanese_mt_bench")


def touch_cmd(path: Path, log: Path, name: str) -> list[str]:
    """A stub stage command: append the stage name to log, write path."""
    code = (f"import pathlib; p = pathlib.Path({str(path)!r}); p.parent.mkdir(parents=True, exist_ok=True); "
            f"p.write_text('out'); open({str(log)!r}, 'a').write({name!r} + '\\n'); print('working on', {name!r})")
    return [sys.executable, "-c", code]


def chain(tmp_path: Path, data: Path) -> tuple[list[Stage], Path]:
    log = tmp_path / "order.log"
    a, b, c = (tmp_path / "out" / n for n in ("a.txt", "b.txt", "c.txt"))
    return [Stage("a", [touch_cmd(a, log, "a")], inputs=[data], outputs=[a]),
            Stage("b", [touch_cmd(b, log, "b")], outputs=[b], after=["a"]),
            Stage("c", [touch_cmd(c, log, "c")], outputs=[c], after=["b"])], log


def run(tmp_path, stages, **kw):
    lines = []
    results = StageRunner(tmp_path, tmp_path / "state", echo=lines.append, heartbeat_s=0.5).run(stages, **kw)
    return results, lines


def ran(log: Path) -> list[str]:
    names = log.read_text().split() if log.exists() else []
    log.unlink(missing_ok=True)
    return names


def test_stages_run_in_order_and_are_reused_until_an_input_changes(tmp_path):
    data = tmp_path / "data.txt"
    data.write_text("one")
    stages, log = chain(tmp_path, data)
    results, lines = run(tmp_path, stages)
    assert ran(log) == ["a", "b", "c"] and [r.status for r in results] == ["ran"] * 3
    assert any("working on" in line for line in lines)  # the subprocess output is streamed
    assert all(json.loads((tmp_path / "state" / f"{n}.json").read_text())["status"] == "done" for n in "abc")

    results, lines = run(tmp_path, chain(tmp_path, data)[0])
    assert ran(log) == [] and [r.status for r in results] == ["reused"] * 3
    assert all("reused" in line for line in lines)

    data.write_text("two")  # a's input changed: a reruns, and b and c (their upstream fingerprint changed)
    results, _ = run(tmp_path, chain(tmp_path, data)[0])
    assert ran(log) == ["a", "b", "c"]

    (tmp_path / "out" / "c.txt").unlink()  # a missing output is rebuilt
    run(tmp_path, chain(tmp_path, data)[0])
    assert ran(log) == ["c"]

    run(tmp_path, chain(tmp_path, data)[0], fresh=True)
    assert ran(log) == ["a", "b", "c"]


def test_a_changed_command_reruns_and_removes_the_old_outputs(tmp_path):
    data = tmp_path / "data.txt"
    data.write_text("x")
    stages, log = chain(tmp_path, data)
    run(tmp_path, stages)
    ran(log)
    stray = tmp_path / "out" / "b-extra"
    stages[1].outputs.append(stray)
    stray.mkdir()
    (stray / "old-checkpoint").write_text("from another run")
    stages[1].commands[0] = stages[1].commands[0] + ["--changed"]
    code = f"import pathlib; pathlib.Path({str(stray)!r}).mkdir()"
    stages[1].commands.append([sys.executable, "-c", code])
    run(tmp_path, stages)
    assert ran(log) == ["b", "c"]
    assert stray.is_dir() and not (stray / "old-checkpoint").exists()


def test_a_failing_stage_is_named_with_its_rerun_command_and_later_stages_do_not_run(tmp_path):
    data = tmp_path / "data.txt"
    data.write_text("x")
    stages, log = chain(tmp_path, data)
    stages[1].commands = [[sys.executable, "-c", "import sys; print('bad input'); sys.exit(3)"]]
    with pytest.raises(StageFailed) as info:
        run(tmp_path, stages)
    err = info.value
    assert err.stage == "b" and "exit status 3" in err.detail and "bad input" in err.detail
    assert err.rerun == shlex.join(stages[1].commands[0])
    assert "rerun it alone" in str(err) and "\nbad input\n" in err.log.read_text()
    assert ran(log) == ["a"]
    assert json.loads((tmp_path / "state" / "b.json").read_text())["status"] == "started"  # not reusable


def test_an_in_process_check_that_raises_fails_its_stage(tmp_path):
    def bad_summary():
        raise ValueError("the loss did not fall")

    stage = Stage("check", action=lambda: "ok", summary=bad_summary, rerun="python apps/demo.py --only check")
    with pytest.raises(StageFailed, match="the loss did not fall") as info:
        run(tmp_path, [stage])
    assert info.value.rerun == "python apps/demo.py --only check"


def test_selected_stages_use_the_recorded_fingerprints_of_the_others(tmp_path):
    data = tmp_path / "data.txt"
    data.write_text("x")
    stages, log = chain(tmp_path, data)
    with pytest.raises(StageFailed, match="needs \\['a'\\], which never finished"):
        run(tmp_path, stages, selected={"b"})
    run(tmp_path, stages)
    ran(log)
    results, _ = run(tmp_path, stages, selected={"b"}, fresh=True)
    assert ran(log) == ["b"] and [r.status for r in results] == ["earlier", "ran", "earlier"]


@pytest.fixture
def demo(monkeypatch):
    """apps/demo.py with every stage's work replaced by a stub that writes the stage's outputs."""
    app = load_app("demo")
    real = app.build_stages

    def stubbed(args, out, py=sys.executable):
        stages = real(args, out, py)
        log = out / "order.log"
        for s in stages:
            code = ("import pathlib, sys\nfor p in map(pathlib.Path, sys.argv[1:]):\n"
                    "    p.parent.mkdir(parents=True, exist_ok=True)\n    p.write_text('stub')\n")
            s.commands = [[sys.executable, "-c", code] + [str(p) for p in s.outputs],
                          touch_cmd(out / "order" / s.name, log, s.name)]
            s.action = None
            s.summary = None
            s.inputs = [p for p in s.inputs if p.exists()]  # the other branches' apps may not be here yet
        if fail := getattr(args, "_fail", None):
            next(s for s in stages if s.name == fail).commands.append([sys.executable, "-c", "raise SystemExit(5)"])
        return stages

    monkeypatch.setattr(app, "build_stages", stubbed)
    return app


def test_demo_runs_every_stage_in_order_then_reuses_them_and_writes_the_report(tmp_path, demo, capsys):
    out = tmp_path / "demo"
    args = demo.Args(out_dir=str(out), heartbeat_s=0.5)
    demo.main(args)
    order = ["raw", "curate", "tokenizer", "shards", "pretrain", "sft", "dpo", "chat", "eval", "ablate"]
    assert ran(out / "order.log") == order
    report = (out / "report.md").read_text()
    for name in order:
        assert f"| {name} | ran |" in report
    demo.main(args)
    assert ran(out / "order.log") == []
    assert "| pretrain | reused |" in (out / "report.md").read_text()
    assert "10 reused" in capsys.readouterr().out

    demo.main(demo.Args(out_dir=str(out), heartbeat_s=0.5, only="chat,eval"))
    assert ran(out / "order.log") == []  # finished and unchanged: --only alone reuses them
    demo.main(demo.Args(out_dir=str(out), heartbeat_s=0.5, only="chat,eval", fresh=True))
    assert ran(out / "order.log") == ["chat", "eval"]
    demo.main(demo.Args(out_dir=str(out), heartbeat_s=0.5, steps=40))  # other steps: pretraining and after rerun
    assert ran(out / "order.log") == ["pretrain", "sft", "dpo", "chat", "eval"]
    demo.main(demo.Args(out_dir=str(out), heartbeat_s=0.5, steps=40, fresh=True, start="dpo", stop="eval"))
    assert ran(out / "order.log") == ["dpo", "chat", "eval"]


def test_a_failing_demo_stage_exits_naming_the_stage_and_its_command(tmp_path, demo, capsys):
    args = demo.Args(out_dir=str(tmp_path / "demo"), heartbeat_s=0.5)
    args._fail = "sft"
    with pytest.raises(SystemExit) as info:
        demo.main(args)
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert "stage 'sft' failed: exit status 5" in err and "rerun it alone" in err
    # sft's stub ran before its failing command; nothing after sft ran
    assert ran(tmp_path / "demo" / "order.log") == ["raw", "curate", "tokenizer", "shards", "pretrain", "sft"]


def test_demo_refuses_bad_selections_and_a_directory_it_did_not_make(tmp_path, demo):
    with pytest.raises(ValueError, match="--only \\['nope'\\]: no such stage"):
        demo.main(demo.Args(out_dir=str(tmp_path / "d"), only="nope"))
    with pytest.raises(ValueError, match="--start 'later': no such stage"):
        demo.main(demo.Args(out_dir=str(tmp_path / "d"), start="later"))
    other = tmp_path / "other"
    other.mkdir()
    (other / "precious.txt").write_text("keep")
    with pytest.raises(ValueError, match="was not made by apps/demo.py"):
        demo.main(demo.Args(out_dir=str(other)))
    assert (other / "precious.txt").exists()


def test_demo_commands_follow_the_agreed_app_interfaces(tmp_path):
    app = load_app("demo")
    out = tmp_path / "demo"
    stages = {s.name: s for s in app.build_stages(app.Args(out_dir=str(out)), out, py="python")}
    o = Path(__import__("os").path.relpath(out, ROOT))
    assert stages["sft"].commands == [["python", "apps/sft.py", "--base", f"{o}/pretrain", "--data",
                                       "data/posttrain/sft.jsonl", "--out_dir", f"{o}/sft", "--config",
                                       "apps/configs/sft_demo.toml"]]
    assert stages["dpo"].commands == [["python", "apps/dpo.py", "--base", f"{o}/sft/hf", "--data",
                                       "data/posttrain/dpo.jsonl", "--loss", "dpo", "--out_dir", f"{o}/dpo",
                                       "--config", "apps/configs/dpo_demo.toml"]]
    assert stages["eval"].commands == [["python", "apps/evaluate.py", "--model", f"{o}/pretrain/hf", "--model",
                                        f"{o}/sft/hf", "--model", f"{o}/dpo/hf", "--out_dir", f"{o}/eval",
                                        "--limit", "20", "--contamination", f"{o}/deduped/classics/kept",
                                        "--contamination", f"{o}/deduped/general/kept", "--contamination",
                                        "data/posttrain/sft.jsonl", "--contamination", "data/posttrain/dpo.jsonl"]]
    assert stages["chat"].rerun == "python apps/demo.py --only chat"


def test_the_demo_trains_on_no_evaluation_set_and_no_crawled_page(tmp_path):
    """Every data file a stage reads (its inputs, and every --input/--data/--raw/--curated value) is checked."""
    app = load_app("demo")
    out = tmp_path / "demo"
    stages = app.build_stages(app.Args(out_dir=str(out)), out, py="python")
    read = [p for s in stages for p in s.inputs]
    for s in stages:
        for cmd in s.commands:
            read += [ROOT / v for k, val in zip(cmd, cmd[1:], strict=False)
                     if k in ("--input", "--data", "--raw", "--curated", "--heldout") for v in val.split(",")]
    data_files = [Path(p).resolve().relative_to(ROOT).as_posix() for p in read
                  if Path(p).resolve().is_relative_to(ROOT / "data")]
    assert "data/aozora/works.jsonl" in data_files and "data/ud_japanese_gsd/sentences.jsonl" in data_files
    bad = [f for f in data_files if f.startswith(EVAL_SETS) or f.startswith("data/web_")]
    assert not bad, bad
    # the raw stage's module reads exactly the files it declares as the stage's inputs
    declared = {p.resolve() for p in next(s for s in stages if s.name == "raw").inputs}
    assert {p.resolve() for p in raw_mix.SOURCES.values()} <= declared


def test_the_report_inlines_stage_reports_with_their_links_and_lists_stages_that_did_not_run(tmp_path):
    from jpmoe.pipeline_report import write_report
    from jpmoe.pipeline_stages import StageResult

    (tmp_path / "ablate").mkdir()
    (tmp_path / "ablate/report.md").write_text("# Curated vs raw\n\n![plot](ablation.png) [web](https://x.org/a)\n")
    (tmp_path / "ablate/ablation.png").write_bytes(b"png")
    results = [StageResult("pretrain", "ran", 12.5, "loss 8.00 -> 5.00", "fp"),
               StageResult("ablate", "reused", 30.0, "raw | curated", "fp2")]
    report = write_report(tmp_path, results, 12.5, ["pretrain", "sft", "ablate"]).read_text()
    assert "| pretrain | ran | 12.5 | loss 8.00 -> 5.00 |" in report
    assert "| ablate | reused | 30.0 | raw / curated |" in report  # a '|' would break the table
    assert "| sft | not run |" in report and "**42.5**" in report
    assert "### Curated vs raw" in report and "![plot](ablate/ablation.png)" in report
    assert "[web](https://x.org/a)" in report and "[ablate/ablation.png](ablate/ablation.png)" in report
    assert "The chat stage has not run." in report


def test_post_training_summaries_report_the_loss_without_judging_it(tmp_path):
    from jpmoe.pipeline_report import loss_line, loss_summary

    assert loss_line(tmp_path) == ""
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps({"step": i, "loss": 3.0 - i / 100}) + "\n"
                                                    for i in range(40)))
    assert loss_line(tmp_path) == f"loss {3 - 0.045:.2f} -> {3 - 0.345:.2f} (40 steps)"  # means of 10 steps
    with pytest.raises(ValueError, match="the loss did not fall clearly"):  # the pretraining check is stricter
        loss_summary(tmp_path)
