"""docs/pipeline.md cannot rot: every fenced command is parsed by the program it runs (app flags and configs by
jpmoe.train.parse_args, jpcurate's by its argparse parser), every pretraining command is dry-run (the model built
on the meta device, the plan printed), the arithmetic table holds the dry runs' numbers, and every config block is
the file it names."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from app_helpers import ROOT, load_app

from jpmoe.train import parse_args

DOC = (ROOT / "docs/pipeline.md").read_text()
ENV = {"NODE_RANK": "0", "MASTER_ADDR": "node0", "HEAD_IP": "10.0.0.1", "SLURM_JOB_ID": "4242",
       "SLURM_JOB_NODELIST": "node[0-7]"}
# commands of other programs, shown for completeness and not checked here
NOT_CHECKED = ("ray ", "tensorboard ", "tail ", "make ", "python -m jpmoe.hf ", "#!")
WORLD_FLAGS = {"--nnodes": "nodes", "--nproc-per-node": "per_node", "--num_processes": "world"}


def fenced(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", DOC, re.S)


def bash_commands() -> list[tuple[str, dict]]:
    """(command, environment) for every command of every bash block: continuations joined, comments and
    assignments dropped, #SBATCH --nodes turned into SLURM_NNODES."""
    out = []
    for block in fenced("bash"):
        env = dict(ENV)
        if m := re.search(r"#SBATCH --nodes=(\d+)", block):
            env["SLURM_NNODES"] = m.group(1)
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if not line or (line.startswith("#") and not line.startswith("#!")) or line.startswith("export "):
                continue
            out.append((line, env))
    return out


def expand(cmd: str, env: dict) -> list[str]:
    def var(m):
        name = m.group(1) or m.group(2)
        assert name in env, f"docs/pipeline.md uses ${name}; add it to the test's environment or the docs"
        return env[name]
    return shlex.split(re.sub(r"\$\{(\w+)\}|\$(\w+)", var, cmd))


def split_launcher(argv: list[str]) -> tuple[dict, int, list[str]]:
    """(env assignments, world size, [script, args...]) of `[VAR=x] [srun] [torchrun|accelerate launch] ...`."""
    env, world, sizes = {}, 1, {}
    while argv and re.match(r"^\w+=", argv[0]):
        k, v = argv.pop(0).split("=", 1)
        env[k] = v
    if argv[0] == "srun":
        argv = argv[1:]
    if argv[0] in ("torchrun", "accelerate"):
        argv = argv[2:] if argv[0] == "accelerate" else argv[1:]
        while not argv[0].endswith(".py"):
            flag = argv.pop(0)
            if flag in WORLD_FLAGS:
                sizes[WORLD_FLAGS[flag]] = int(argv[0])
            if not argv[0].endswith(".py"):
                argv.pop(0)
        world = sizes.get("world") or sizes.get("nodes", 1) * sizes.get("per_node", 1)
    elif argv[0] == "python":
        argv = argv[1:]
    world = int(env.get("WORLD_SIZE", world))
    return env, world, argv


COMMANDS = bash_commands()


@pytest.mark.parametrize(("cmd", "env"), COMMANDS, ids=[c[:60] for c, _ in COMMANDS])
def test_every_documented_command_parses(cmd, env, monkeypatch, capsys):
    if cmd.startswith(NOT_CHECKED):
        return
    argv = expand(cmd, env)
    if argv[0] == "jpcurate":
        from jpcurate.cli import build_parser

        args = build_parser().parse_args(argv[1:])  # a bad flag or choice exits 2
        assert args.command == argv[1]
        return
    run_env, world, argv = split_launcher(argv)
    assert argv[0].startswith("apps/") and argv[0].endswith(".py"), f"unrecognised command: {cmd}"
    name = Path(argv[0]).stem
    if not (ROOT / argv[0]).is_file():
        pytest.skip(f"{argv[0]} is not on this branch yet")
    app = load_app(name)
    args = parse_args(app.Args, argv[1:])  # unknown flags or config keys, bad values: an error here
    if name != "pretrain":
        return
    monkeypatch.setenv("WORLD_SIZE", str(world))
    args.dry_run = True
    app.main(args)
    plan = capsys.readouterr().out
    assert plan.startswith("dry run: ") and "built on the meta device" in plan, plan
    assert f"world size {world}," in plan
    assert "unresolved: steps" not in plan and "unresolved: mixture" not in plan, plan
    steps = re.search(r"steps ([\d,]+), tokens", plan).group(1)
    hours = re.search(r"= ([\d,]+) H100 GPU-hours", plan).group(1)
    disk = re.search(r"disk needed ([\d,.]+ GB)", plan).group(1)
    for number in (steps, hours, disk):  # the arithmetic table shows the dry run's own numbers
        assert number in DOC, f"{number} (dry run of {cmd!r}) is not in docs/pipeline.md"


def test_the_commands_cover_every_stage_and_launcher():
    text = " ".join(c for c, _ in COMMANDS)
    for needle in ("jpcurate filter", "--engine ray", "jpcurate dedup", "apps/train_tokenizer.py",
                   "apps/prepare_data.py", "torchrun --nnodes 2", "srun torchrun", "accelerate launch",
                   "apps/sft.py", "apps/dpo.py", "apps/serve.py", "apps/evaluate.py", "--dry_run true"):
        assert needle in text, needle
    assert "pretrain_2b_moe_200b.toml" in text and "pretrain_8b_dense_200b.toml" in text


@pytest.mark.parametrize("block", fenced("toml"), ids=lambda b: b.split(":")[0][2:])
def test_every_config_block_is_the_file_it_names(block):
    m = re.match(r"# (apps/configs/\S+\.toml)", block)
    assert m, f"a toml block must start with '# apps/configs/NAME.toml': {block[:80]!r}"
    assert (ROOT / m.group(1)).read_text() == block, f"{m.group(1)} differs from its copy in docs/pipeline.md"


def test_a_dry_run_names_what_it_cannot_resolve(tmp_path, capsys):
    app = load_app("pretrain")
    app.main(parse_args(app.Args, ["--model", "debug", "--mixture", str(tmp_path / "none.toml"), "--out_dir",
                                   str(tmp_path / "run"), "--dry_run", "true"]))
    plan = capsys.readouterr().out
    assert "unresolved: mixture" in plan and "unresolved: steps and tokens" in plan
    assert not (tmp_path / "run").exists()  # a dry run writes nothing


def test_a_dry_run_rejects_a_bad_mixture(tmp_path):
    bad = tmp_path / "mix.toml"
    bad.write_text('[sources]\na = "x"\n\n[[stages]]\nname = "s"\ntokens = 100\nweights = { a = 0.5 }\n')
    app = load_app("pretrain")
    with pytest.raises(ValueError, match="weights add up to 0.5"):
        app.main(parse_args(app.Args, ["--mixture", str(bad), "--dry_run", "true", "--out_dir", str(tmp_path)]))
