"""jpmoe.train.cli.parse_args: defaults < --config TOML < --flags; unknown keys are errors."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from jpmoe.train import parse_args


@dataclass
class Args:
    config: str = ""
    steps: int = 10
    lr: float = 1e-3
    name: str = "run"
    bf16: bool = True
    inputs: list[str] = field(default_factory=list)
    limit: int | None = None


def test_layering(tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text('steps = 20\nlr = 0.5\nname = "from-toml"\ninputs = ["a", "b"]\n')
    assert parse_args(Args, []) == Args()
    args = parse_args(Args, ["--config", str(cfg), "--steps", "30", "--bf16=false", "--limit", "4"])
    assert (args.steps, args.lr, args.name, args.bf16, args.inputs, args.limit) == (30, 0.5, "from-toml", False,
                                                                                   ["a", "b"], 4)
    assert args.config == str(cfg)
    assert parse_args(Args, ["--inputs", "x,y"]).inputs == ["x", "y"]


def test_unknown_keys_are_errors(tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text("stepz = 3\n")
    with pytest.raises(ValueError, match=r"unknown keys \['stepz'\]"):
        parse_args(Args, ["--config", str(cfg)])
    with pytest.raises(ValueError, match="unknown flags"):
        parse_args(Args, ["--lrr", "1"])
    with pytest.raises(ValueError, match="cannot read 'ten' as int"):
        parse_args(Args, ["--steps", "ten"])
    with pytest.raises(ValueError, match="needs a value"):
        parse_args(Args, ["--steps"])


@pytest.mark.parametrize(("toml", "match"), [("steps = 3.7", "--steps: expected int, got 3.7"),
                                             ("steps = true", "--steps: expected int, got True"),
                                             ("lr = false", "--lr: expected float, got False"),
                                             ("bf16 = 0", "--bf16: expected bool, got 0")])
def test_toml_values_of_the_wrong_type_are_errors(tmp_path, toml, match):
    """TOML values arrive typed: a float for an int flag was truncated (3.7 -> 3), a boolean read as 0/1."""
    cfg = tmp_path / "run.toml"
    cfg.write_text(toml + "\n")
    with pytest.raises(ValueError, match=match):
        parse_args(Args, ["--config", str(cfg)])
    cfg.write_text("steps = 4.0\nlr = 1\nbf16 = false\n")  # integral floats and ints for floats are fine
    assert (parse_args(Args, ["--config", str(cfg)]).steps, parse_args(Args, ["--config", str(cfg)]).lr) == (4, 1.0)


def test_help_lists_every_flag_and_exits_0(capsys):
    with pytest.raises(SystemExit) as e:
        parse_args(Args, ["--steps", "3", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--steps int (default: 10)" in out and "--inputs list[str] (default: [])" in out
    assert "--limit int | None (default: None)" in out


def test_own_command_line_errors_exit_2_without_traceback(monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["app.py", "--stepz", "3"])
    with pytest.raises(SystemExit) as e:
        parse_args(Args)
    assert e.value.code == 2 and capsys.readouterr().err.startswith("error: unknown flags ['--stepz']")
    monkeypatch.setattr("sys.argv", ["app.py", "--steps", "5"])
    assert parse_args(Args).steps == 5
