"""The Ray Data engine gives exactly the local engine's output (dedup and filtering)."""

from __future__ import annotations

import json

import pytest

ray = pytest.importorskip("ray")

from jpcurate.dedup.local import run_dedup  # noqa: E402
from jpcurate.dedup.stages import DedupConfig  # noqa: E402


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray instance for the module (reused when another fixture already started one)."""
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, log_to_driver=False, include_dashboard=False)
    yield
    if started:
        ray.shutdown()


def _files(out, subs=("kept", "removed", "quarantine", "rejected")):
    return {str(p.relative_to(out)): p.read_bytes() for s in subs for p in sorted((out / s).glob("*")) if p.is_file()}


@pytest.mark.slow
def test_ray_dedup_equals_local(ray_session, data_dir, tmp_path):
    from jpcurate.engines.ray import run_dedup_ray

    src = tmp_path / "in.jsonl"
    lines = (data_dir / "near_duplicates" / "documents.jsonl").read_text(encoding="utf-8").splitlines()
    src.write_text("\n".join(lines[:200] + ['{"id": "broken", "text": '] + lines[200:]) + "\n", encoding="utf-8")
    cfg = DedupConfig(split_bytes=150_000)  # several byte-range tasks
    local = run_dedup([src], tmp_path / "local", cfg, progress=False)
    remote = run_dedup_ray([str(src)], tmp_path / "ray", cfg, progress=False)
    assert _files(tmp_path / "ray") == _files(tmp_path / "local")
    clusters = [(tmp_path / e / "clusters.parquet").read_bytes() for e in ("ray", "local")]
    assert clusters[0] == clusters[1]
    for key in ("documents", "reasons"):
        assert remote[key] == local[key]
    assert local["documents"]["quarantined"] == 1 and local["reasons"]["near_duplicate"] > 50


@pytest.mark.slow
def test_ray_filter_pipeline_equals_local(ray_session, data_dir, tmp_path, monkeypatch):
    from jpcurate.engines import ray as ray_engine
    from jpcurate.engines.local import RunOptions, run_local
    from jpcurate.engines.ray import run_ray
    from jpcurate.presets import build_preset

    lines = (data_dir / "web_ja" / "fineweb2_edu_ja_sample.jsonl").read_text(encoding="utf-8").splitlines()
    big = tmp_path / "ja.jsonl"  # split into byte ranges below; a blank line and a malformed one inside
    big.write_text("\n".join(lines[:40] + ["", '{"id": 1, "text": '] + lines[40:]) + "\n", encoding="utf-8")
    monkeypatch.setattr(ray_engine, "SPLIT_BYTES", 50_000)
    assert len(ray_engine.plan_tasks([str(big)], ray_engine.SPLIT_BYTES)) > 3
    src = [str(big), str(data_dir / "web_en" / "dolma_test_cc_en.jsonl")]
    pipe = build_preset("ja-web")
    a = run_local(pipe, src, RunOptions(output=tmp_path / "local", progress=False))
    b = run_ray(pipe, src, RunOptions(output=tmp_path / "ray", progress=False))
    assert _files(tmp_path / "ray") == _files(tmp_path / "local")
    assert json.dumps(a.to_dict(), sort_keys=True) == json.dumps(b.to_dict(), sort_keys=True)
    assert a.quarantined == 1 and a.kept > 0 and a.rejected > 0 and a.blank_lines == 1
