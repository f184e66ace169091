"""report.md: every reason any preset can produce is explained; --plots draws and links the PNGs; without
matplotlib the report says how to get them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jpcurate.dedup.lines import EMPTY_REASON
from jpcurate.dedup.phases import EXACT, NEAR
from jpcurate.presets import PRESETS, build_preset
from jpcurate.report import explain, render_report

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("JPLLM_DATA", ROOT / "data"))  # the isolation run copies the tests elsewhere
SRC = ROOT / "src"  # this checkout's code when there is one, else the installed jpcurate
WEB = DATA / "web_ja" / "fineweb2_edu_ja_sample.jsonl"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("mecab", [False, True])
def test_every_reason_of_every_preset_is_explained(preset, mecab):
    reasons = [r for step in build_preset(preset, mecab=mecab) for r in step.reasons()]
    assert reasons
    assert [r for r in reasons if not explain(r)] == []


def test_dedup_and_error_reasons_are_explained():
    assert explain("dup_10gram") == explain("dup_ngrams") != ""  # the ja-web code the old table missed
    for code in (EXACT, NEAR, EMPTY_REASON, "perplexity.error"):
        assert explain(code), code


def _env(**extra) -> dict:
    env = {**os.environ, **extra}
    if (SRC / "jpcurate").is_dir():
        env["PYTHONPATH"] = str(SRC)
    return env


def _jpcurate(*args: str, hide_matplotlib: bool = False) -> subprocess.CompletedProcess:
    code = ("import sys; " + ("sys.modules['matplotlib'] = None; " if hide_matplotlib else "") +
            "from jpcurate.cli import main; raise SystemExit(main(sys.argv[1:]))")
    return subprocess.run([sys.executable, "-c", code, *args], env=_env(), capture_output=True, text=True)


def test_filter_with_plots_writes_and_links_them(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "out"
    r = _jpcurate("filter", "--preset", "ja-web", "--input", str(WEB), "--output", str(out), "--quiet", "--plots")
    assert r.returncode == 0, r.stderr
    report = (out / "report.md").read_text(encoding="utf-8")
    for name in ("removals", "values"):
        assert f"![{name}](plots/{name}.png)" in report
        assert (out / "plots" / f"{name}.png").read_bytes().startswith(PNG)
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert stats["thresholds"]["kana_frac"] == {"lo": 0.12} and stats["thresholds"]["ppl"]["hi"] > 0
    assert set(stats["reason_bytes"]) == set(stats["reasons"]) and all(v > 0 for v in stats["reason_bytes"].values())
    assert "| `dup_10gram` |" not in report or explain("dup_10gram") in report


def test_without_matplotlib_the_report_says_how(tmp_path):
    out = tmp_path / "out"
    r = _jpcurate("filter", "--preset", "ja-web", "--input", str(WEB), "--output", str(out), "--quiet", "--plots",
                  hide_matplotlib=True)
    assert r.returncode == 0, r.stderr  # the run itself is fine
    assert 'pip install "jpcurate[plots]"' in (out / "report.md").read_text(encoding="utf-8")
    assert not (out / "plots").exists()
    r = _jpcurate("report", str(out), "--plots", hide_matplotlib=True)
    assert r.returncode != 0 and r.stderr.strip().splitlines() == [
        'jpcurate report --plots needs matplotlib: pip install "jpcurate[plots]"']


def test_report_plots_later_and_dedup_cluster_sizes(tmp_path):
    pytest.importorskip("matplotlib")
    lines = WEB.read_text(encoding="utf-8").splitlines()
    inp = tmp_path / "in.jsonl"
    inp.write_text("\n".join(lines + lines[:7]) + "\n", encoding="utf-8")  # 7 exact copies: clusters of size 2
    out = tmp_path / "dd"
    r = _jpcurate("dedup", "--input", str(inp), "--output", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    sizes = stats["dedup"]["cluster_sizes"]
    assert sizes.get("2", 0) >= 7
    assert sum(sizes.values()) == stats["documents"]["kept"]  # one cluster per kept document
    assert sum(int(k) * v for k, v in sizes.items()) == stats["documents"]["input"]
    assert "jpcurate report DIR --plots" in (out / "report.md").read_text(encoding="utf-8")
    r = _jpcurate("report", str(out), "--plots")
    assert r.returncode == 0, r.stderr
    assert "![cluster_sizes](plots/cluster_sizes.png)" in r.stdout
    assert (out / "plots" / "cluster_sizes.png").read_bytes().startswith(PNG)
    assert "![cluster_sizes](plots/cluster_sizes.png)" in (out / "report.md").read_text(encoding="utf-8")


def test_render_report_links_given_plots():
    stats = {"documents": {"input": 1, "kept": 1, "rejected": 0, "quarantined": 0, "identity_holds": True},
             "bytes": {"input": 3, "kept": 3}, "reasons": {}, "steps": []}
    assert "![values](plots/values.png)" in render_report(stats, ["plots/values.png"])
