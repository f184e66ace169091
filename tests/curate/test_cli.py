import json
import subprocess
import sys

import pytest
from curate_helpers import PROSE, read_jsonl_dir, write_jsonl

from jpcurate.cli import COMMANDS, main


@pytest.mark.parametrize("cmd", ["filter", "run", "report", "train-lm"])
def test_every_subcommand_has_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0 and "usage: jpcurate" in capsys.readouterr().out


def test_subcommands_are_registered_by_module():
    assert COMMANDS[:4] == ["jpcurate.cli.filter", "jpcurate.cli.run", "jpcurate.cli.report",
                            "jpcurate.cli.train_lm"]


def test_filter_then_report(tmp_path, capsys):
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": "1", "text": PROSE, "url": "https://example.jp/a"},
                                              {"id": "2", "text": "短い"}, "{oops"])
    out = tmp_path / "out"
    assert main(["filter", "--preset", "ja-web", "--input", str(inp), "--output", str(out), "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["input"], summary["kept"], summary["rejected"], summary["quarantined"]) == (3, 1, 1, 1)
    (kept,) = read_jsonl_dir(out / "kept")
    assert kept["url"] == "https://example.jp/a" and kept["jpcurate"]["values"]["lang"] == "ja"
    assert main(["report", str(out)]) == 0
    assert "`min_chars` | 1 |" in capsys.readouterr().out


def test_run_with_a_toml_config(tmp_path, capsys):
    inp = write_jsonl(tmp_path / "in.jsonl", [{"body": PROSE}, {"body": "カタカナバカリノブンショウデス。" * 10}])
    cfg = tmp_path / "p.toml"
    cfg.write_text(f'''
name = "mine"
[io]
input = ["{inp}"]
text_field = "body"
[[steps]]
type = "Normalize"
[[steps]]
type = "ClassFraction"
numer = ["hiragana"]
denom = ["hiragana", "katakana", "kanji", "ja_punct"]
lo = 0.2
name = "hiragana_frac"
''', encoding="utf-8")
    assert main(["run", "--config", str(cfg), "--output", str(tmp_path / "o"), "--quiet"]) == 0
    stats = json.loads((tmp_path / "o" / "stats.json").read_text())
    assert stats["reasons"] == {"hiragana_frac": 1} and stats["documents"]["kept"] == 1


def test_config_errors_name_the_problem(tmp_path):
    from jpcurate.config import load_config

    cfg = tmp_path / "bad.toml"
    cfg.write_text('[[steps]]\ntype = "NoSuchRule"\n')
    with pytest.raises(ValueError, match="unknown step type 'NoSuchRule'"):
        load_config(cfg)
    cfg.write_text('[[steps]]\ntype = "Length"\nbogus = 1\n')
    with pytest.raises(ValueError, match="step Length"):
        load_config(cfg)


def test_console_script_entry_point_runs():
    r = subprocess.run([sys.executable, "-m", "jpcurate.cli", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("jpcurate ")
