"""apps/ablate.py: perplexity and repetition on a tiny model against direct formulas, arm reuse by arguments with
the training steps stubbed, the table and plot, bad arguments; a real (slow) run on a tiny budget."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
from app_helpers import ENV, ROOT, load_app

from jpmoe.config import ModelConfig
from jpmoe.model import Transformer


class CharTokenizer:
    """Enough of a tokenizer for perplexity(): ids 0..2 special, characters from 3."""
    bos_token_id, eos_token_id, pad_token_id = 1, 2, 0

    def encode(self, text, add_special_tokens=False):
        return [3 + (ord(c) % 60) for c in text]


def test_perplexity_is_exp_of_the_mean_next_token_nll_over_windows():
    app = load_app("ablate")
    torch.manual_seed(0)
    model = Transformer(ModelConfig.preset("debug", vocab_size=64)).eval()
    tok = CharTokenizer()
    texts = ["吾輩は猫である。名前はまだ無い。", "どこで生れたかとんと見当がつかぬ。"]
    ppl, n = app.perplexity(model, tok, texts, seq_len=8, max_tokens=30)
    stream = [1, *tok.encode(texts[0]), 2, 1, *tok.encode(texts[1]), 2][:31]
    nll = []
    with torch.no_grad():
        for i in range(0, 30, 8):
            w = torch.tensor(stream[i:i + 9])
            logp = torch.log_softmax(model(w[None, :-1]).logits[0].float(), -1)
            nll += [-logp[j, w[j + 1]].item() for j in range(len(w) - 1)]
    assert n == 30 == len(nll)
    assert ppl == pytest.approx(math.exp(sum(nll) / len(nll)), rel=1e-5)


def test_repetition_metrics_follow_their_definitions():
    app = load_app("ablate")
    assert app.seq_rep_n([1, 2, 3, 4, 1, 2, 3, 4], 4) == pytest.approx(1 - 4 / 5)
    assert app.seq_rep_n([1, 2, 3], 4) == 0.0
    assert app.distinct_n([[1, 2, 1, 2], [3, 4]], 2) == pytest.approx(3 / 6)  # {12, 21, 34} / 6 tokens


@pytest.fixture
def stubbed(monkeypatch, tmp_path):
    """apps/ablate.py with prepare_data/pretrain stubbed (they write an HF marker and metrics) and evaluation
    replaced by fixed numbers; returns (app, Args, the commands run)."""
    app = load_app("ablate")
    calls = []

    def fake_run(cmd):
        calls.append(cmd)
        if "apps/pretrain.py" in cmd:
            out = cmd[cmd.index("--out_dir") + 1]
            (tmp_path / out).mkdir(parents=True, exist_ok=True)
    monkeypatch.setattr(app, "run", lambda cmd: fake_run(cmd))
    monkeypatch.setattr(app, "evaluate_arm", lambda hf, args, texts: {
        "heldout_ppl": 90.0 if "curated" in str(hf) else 120.0, "heldout_tokens": 500, "final_train_loss": 4.0,
        "seq_rep_4": 0.2 if "curated" in str(hf) else 0.5, "looping_share": 0.1, "distinct_2": 0.3,
        "samples": [{"prompt": "日本の首都は", "continuation": "東京です。"}]})
    for name in ("raw.jsonl", "heldout.jsonl"):
        (tmp_path / name).write_text(json.dumps({"text": "本文です。"}, ensure_ascii=False) + "\n")
    (tmp_path / "kept").mkdir()
    (tmp_path / "tok").mkdir()
    args = app.Args(raw=[str(tmp_path / "raw.jsonl")], curated=[str(tmp_path / "kept")],
                    heldout=str(tmp_path / "heldout.jsonl"), tokenizer=str(tmp_path / "tok"),
                    out_dir=str(tmp_path / "abl"), steps=5)
    return app, args, calls


def test_both_arms_train_on_the_same_budget_then_are_reused_until_an_argument_changes(stubbed, tmp_path):
    app, args, calls = stubbed
    results = app.main(args)
    pretrains = [c for c in calls if "apps/pretrain.py" in c]
    assert len(pretrains) == 2 and len(calls) == 4  # shards + pretraining per arm
    for c in pretrains:
        assert c[c.index("--max_steps") + 1] == "5" and c[c.index("--micro_batch") + 1] == "16"
    for arm in ("raw", "curated"):
        mixture = (tmp_path / "abl" / arm / "mixture.toml").read_text()
        assert f"tokens = {5 * 16 * 128}" in mixture
    assert results["curated"]["heldout_ppl"] < results["raw"]["heldout_ppl"]
    report = (tmp_path / "abl/report.md").read_text()
    assert "| raw | 120.0 | 0.500 |" in report and "| curated | 90.0 | 0.200 |" in report
    assert (tmp_path / "abl/ablation.png").stat().st_size > 1000
    assert json.loads((tmp_path / "abl/results.json").read_text())["curated"]["seq_rep_4"] == 0.2

    calls.clear()
    app.main(args)
    assert calls == []  # same arguments: both arms reused
    args.steps = 6
    app.main(args)
    assert len([c for c in calls if "apps/pretrain.py" in c]) == 2


@pytest.mark.parametrize(("change", "match"), [({"heldout": ""}, "--heldout is required"),
                                               ({"tokenizer": "/nonexistent/tok"}, "no such file"),
                                               ({"steps": 0}, "--steps must be >= 1")])
def test_bad_arguments_stop_before_any_work(stubbed, change, match):
    app, args, calls = stubbed
    for k, v in change.items():
        setattr(args, k, v)
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        app.main(args)
    assert calls == []


@pytest.mark.slow
def test_ablation_runs_for_real_on_a_tiny_budget(tmp_path):
    """Raw text with junk vs its curated part, 20 steps each, on a tokenizer trained here."""
    pytest.importorskip("sentencepiece")
    from jpmoe.data.raw_mix import write_raw_mix

    raw = tmp_path / "raw"
    write_raw_mix(raw)
    subprocess.run([sys.executable, "-m", "jpcurate", "filter", "--input", str(raw / "general.jsonl"), "--output",
                    str(tmp_path / "cur"), "--quiet"], cwd=ROOT, env=ENV, check=True)
    subprocess.run([sys.executable, "apps/train_tokenizer.py", "--input", str(tmp_path / "cur/kept"), "--out_dir",
                    str(tmp_path / "tok"), "--vocab_size", "4000"], cwd=ROOT, env=ENV, check=True,
                   capture_output=True)
    run = subprocess.run([sys.executable, "apps/ablate.py", "--raw", str(raw / "general.jsonl"), "--curated",
                          str(tmp_path / "cur/kept"), "--heldout", str(raw / "heldout.jsonl"), "--tokenizer",
                          str(tmp_path / "tok"), "--out_dir", str(tmp_path / "abl"), "--steps", "20",
                          "--heldout_tokens", "2000", "--openings", "2"],
                         cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    results = json.loads((tmp_path / "abl/results.json").read_text())
    for arm in ("raw", "curated"):
        # better than a uniform guess over the 4,000-piece vocabulary after 20 steps
        assert 1 < results[arm]["heldout_ppl"] < 4000 and results[arm]["heldout_tokens"] == 2000
        assert len(results[arm]["samples"]) == 7  # 5 fixed prompts + 2 held-out openings


def test_a_killed_arm_resumes_with_the_same_arguments_and_starts_over_with_others(stubbed, tmp_path):
    app, args, calls = stubbed
    app.main(args)
    for arm in ("raw", "curated"):  # as if killed during pretraining: started, not finished
        (tmp_path / "abl" / arm / "arm.json").unlink()
        (tmp_path / "abl" / arm / "checkpoint-marker").write_text("step 3")
    app.main(args)
    assert (tmp_path / "abl/raw/checkpoint-marker").exists()  # kept: apps/pretrain.py resumes from it
    (tmp_path / "abl/raw/arm.json").unlink()
    args.lr = 5e-3
    app.main(args)
    assert not (tmp_path / "abl/raw/checkpoint-marker").exists()  # other arguments: the old run is removed
