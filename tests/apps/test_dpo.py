"""apps/dpo.py on a tiny HF Llama (CPU): DPO starts at log 2 with policy = reference and its reward accuracy rises,
every loss type starts at its known value, the reference log-probs are computed once and reused on a rerun, a
stopped run resumed equals an uninterrupted one, ORPO stays finite as the chosen log-probs reach 0, and bad pairs
are counted by reason."""

from __future__ import annotations

import json
import math

import pytest
import torch
from app_helpers import load_app
from posttrain_helpers import SFT_FACTS, build_bases, dpo_records, write_jsonl

from jpmoe.train import parse_args, read_metrics

dpo = load_app("dpo")


@pytest.fixture(scope="module")
def llama(tmp_path_factory, data_dir):
    return build_bases(tmp_path_factory.mktemp("post_base"), data_dir)[1]


def cmd(base, data, out, *extra: str) -> list[str]:
    return ["--base", str(base), "--data", str(data), "--out_dir", str(out), "--seq_len", "160", "--micro_batch", "4",
            "--lr", "2e-3", "--eval_frac", "0", "--log_every", "1000", "--tensorboard", "false", "--sample_tokens",
            "4", "--export", "false", *extra]


def run(base, tmp_path, *extra: str, records=None, out_name="run"):
    tmp_path.mkdir(parents=True, exist_ok=True)
    data = write_jsonl(tmp_path / "dpo.jsonl", records or dpo_records())
    out = tmp_path / out_name
    dpo.main(parse_args(dpo.Args, cmd(base, data, out, *extra)))
    return out, read_metrics(out / "metrics.jsonl")


def test_dpo_starts_at_log_2_and_learns_its_pairs(llama, tmp_path, capsys):
    out, m = run(llama, tmp_path, "--max_steps", "6", "--loss", "dpo", "--ckpt_every", "3")
    assert m[0]["loss"] == pytest.approx(math.log(2), abs=1e-5)  # policy = reference: every margin is 0
    for k in ("rewards/chosen", "rewards/rejected", "rewards/margins"):
        assert m[0][k] == pytest.approx(0.0, abs=1e-5)
    assert m[0]["rewards/accuracies"] == 0.0  # no margin is > 0 yet
    assert m[-1]["rewards/accuracies"] > 0.5 and m[-1]["rewards/margins"] > 0 and m[-1]["loss"] < m[0]["loss"]
    for k in ("logps/chosen", "logps/rejected", "grad_norm", "lr"):
        assert all(math.isfinite(r[k]) for r in m), k
    assert "reference log-probs: 8/8" in capsys.readouterr().err
    cache = out / "reference_logps.pt"
    stamp = cache.stat().st_mtime_ns
    # a rerun (here: extended to more steps) resumes and reuses the cached reference, never the trained policy
    _, m2 = run(llama, tmp_path, "--max_steps", "8", "--loss", "dpo", "--ckpt_every", "3")
    assert "reference log-probs" not in capsys.readouterr().err and cache.stat().st_mtime_ns == stamp
    assert [r["loss"] for r in m2[:6]] == [r["loss"] for r in m] and len(m2) == 8


@pytest.mark.parametrize(("loss", "start"), [("ipo", 1.0), ("hinge", 1.0), ("robust", math.log(2))])
def test_each_dpo_loss_type_starts_at_its_known_value(llama, tmp_path, loss, start):
    # beta 0.5 at zero margins: ipo (0 - 1/(2 beta))^2 = 1, hinge relu(1 - 0) = 1, robust (eps 0) log 2
    _, m = run(llama, tmp_path, "--max_steps", "2", "--loss", loss)
    assert m[0]["loss"] == pytest.approx(start, abs=1e-5)
    assert math.isfinite(m[1]["loss"]) and m[1]["loss"] != m[0]["loss"]


def test_simpo_starts_at_its_formula(llama, tmp_path):
    _, m = run(llama, tmp_path, "--max_steps", "1", "--loss", "simpo", "--simpo_gamma", "0.3")
    # SimPO: -log sigmoid(beta (avg_c - avg_r) - gamma), beta 2; rewards/* are beta * average log-probs
    z = m[0]["rewards/chosen"] - m[0]["rewards/rejected"]
    assert m[0]["logps/chosen"] * 2.0 == pytest.approx(m[0]["rewards/chosen"], abs=1e-5)
    assert math.isfinite(m[0]["loss"]) and m[0]["loss"] > 0
    assert not (tmp_path / "run" / "reference_logps.pt").exists()  # reference-free
    if abs(z) < 1e-6:
        assert m[0]["loss"] == pytest.approx(-math.log(1 / (1 + math.exp(0.3))), abs=1e-5)


def test_stopped_and_resumed_equals_uninterrupted(llama, tmp_path):
    whole = run(llama, tmp_path / "a", "--max_steps", "6", "--schedule", "constant", "--ckpt_every", "3")[1]
    run(llama, tmp_path / "b", "--max_steps", "3", "--schedule", "constant", "--ckpt_every", "3")
    resumed = run(llama, tmp_path / "b", "--max_steps", "6", "--schedule", "constant", "--ckpt_every", "3")[1]
    assert [r["loss"] for r in resumed] == [r["loss"] for r in whole]
    assert [r["rewards/margins"] for r in resumed] == [r["rewards/margins"] for r in whole]


def test_orpo_stays_finite_as_chosen_logps_reach_zero(llama, tmp_path):
    records = [{"prompt": q, "chosen": "はい。", "rejected": a} for q, a in SFT_FACTS]
    _, m = run(llama, tmp_path, "--max_steps", "80", "--loss", "orpo", "--lr", "1e-2", "--schedule", "constant",
               records=records)
    assert all(math.isfinite(r["loss"]) and math.isfinite(r["grad_norm"]) for r in m)
    assert m[-1]["logps/chosen"] > -0.05, m[-1]["logps/chosen"]  # average log-prob near 0: log(1 - p) near -inf
    assert m[-1]["skipped_steps"] == 0 and m[-1]["rewards/accuracies"] == 1.0


def test_bad_pairs_are_counted_by_reason(llama, tmp_path):
    bad = [
        {"prompt": "同じ", "chosen": "はい。", "rejected": "はい。"},
        {"prompt": "空", "chosen": "", "rejected": "いいえ。"},
        {"prompt": "長い質問。" * 200, "chosen": "はい。", "rejected": "いいえ。"},
        {"messages": [{"role": "robot", "content": "ピピ"}], "chosen": "はい。", "rejected": "いいえ。"},
        {"prompt": "答えなし", "chosen": "はい。"},
    ]
    out, _ = run(llama, tmp_path, "--max_steps", "1", records=dpo_records() + bad)
    report = json.loads((out / "data_report.json").read_text())
    assert report["read"] == 13 and report["used"] == {"train": 8, "eval": 0}
    assert report["dropped"] == {"empty_response": 1, "identical_responses": 1, "malformed_record": 1,
                                 "prompt_too_long": 1, "unknown_role": 1}


def test_unknown_loss_is_an_error(llama, tmp_path):
    with pytest.raises(ValueError, match="--loss"):
        run(llama, tmp_path, "--loss", "kto")
    assert torch.__version__  # nothing was written
    assert not (tmp_path / "run").exists()


def test_a_short_run_scores_only_the_pairs_it_will_train_on(llama, tmp_path, capsys):
    _, m = run(llama, tmp_path, "--max_steps", "1")  # 1 step x 4 pairs of the 8
    assert "reference log-probs: 4/4 pairs" in capsys.readouterr().err
    assert m[0]["loss"] == pytest.approx(math.log(2), abs=1e-5)


@pytest.mark.slow
def test_two_process_torchrun_equals_single_process(llama, tmp_path):
    """The reference pass runs before the optimiser exists: under FSDP2 that must leave the parameters sharded."""
    import subprocess
    import sys

    from app_helpers import ENV, ROOT

    data = write_jsonl(tmp_path / "dpo.jsonl", dpo_records())
    common = ("--max_steps", "4", "--ckpt_every", "2", "--micro_batch", "2", "--eval_frac", "0.25")
    one, two = tmp_path / "one", tmp_path / "two"
    subprocess.run([sys.executable, "apps/dpo.py", *cmd(llama, data, one, *common, "--grad_accum", "2")], cwd=ROOT,
                   env=ENV, check=True, capture_output=True)
    run2 = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "apps/dpo.py", *cmd(llama, data, two, *common, "--grad_accum", "1")], cwd=ROOT, env=ENV,
                          capture_output=True, text=True)
    assert run2.returncode == 0, run2.stderr[-3000:]
    a, b = read_metrics(one / "metrics.jsonl"), read_metrics(two / "metrics.jsonl")
    torch.testing.assert_close(torch.tensor([r["loss"] for r in b]), torch.tensor([r["loss"] for r in a]),
                               rtol=0, atol=1e-5)
    assert b[0]["loss"] == pytest.approx(math.log(2), abs=1e-5) and b[-1]["eval/loss"] == pytest.approx(
        a[-1]["eval/loss"], abs=1e-5)


def test_preference_records_in_every_accepted_shape(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from jpalign import DataError
    from jpalign.records import ReadReport, preference_record, read_records, sft_messages

    user = [{"role": "user", "content": "質問"}]
    plain = preference_record({"prompt": "質問", "chosen": "はい", "rejected": "いいえ"})
    chat = preference_record({"messages": user, "chosen": [{"role": "assistant", "content": "はい"}],
                              "rejected": [{"role": "assistant", "content": "いいえ"}]})
    assert plain == chat == {"prompt": user, "chosen": "はい", "rejected": "いいえ"}
    with pytest.raises(DataError, match="unknown_role"):
        preference_record({"prompt": "質問", "chosen": [{"role": "user", "content": "x"}], "rejected": "y"})
    roles = [m["role"] for m in sft_messages({"instruction": "訳せ", "input": "cat", "output": "猫"})]
    assert roles == ["user", "input", "assistant"]
    rows = [{"prompt": "質問", "chosen": "はい", "rejected": "いいえ"}] * 3
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "pairs.parquet")
    report = ReadReport()
    assert read_records(tmp_path / "pairs.parquet", report) == rows and report.read == 3
