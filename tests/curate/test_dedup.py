"""End-to-end deduplication: the labelled near-duplicate set, determinism, resume, bad input, repeated lines."""

from __future__ import annotations

import itertools
import json
import random
from collections import defaultdict

import pyarrow.parquet as pq
import pytest

from jpcurate.dedup.local import run_dedup
from jpcurate.dedup.stages import DedupConfig
from jpcurate.dedup.tasks import plan_tasks, read_task
from jpcurate.io.readers import read_documents


def _records(out):
    recs = {}
    for sub in ("kept", "removed"):
        for f in sorted((out / sub).glob("*.jsonl")):
            for line in f.read_text(encoding="utf-8").splitlines():
                r = json.loads(line)
                recs[r["id"]] = (sub, r.get("cluster_id"), r.get("cluster_size"), r.get("duplicate_of"),
                                 r.get("reason"), r["text"])
    return recs


@pytest.fixture(scope="module")
def labelled(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("nd") / "out"
    stats = run_dedup([data_dir / "near_duplicates" / "documents.jsonl"], out, progress=False)
    return out, stats


def test_labelled_set_recall_and_no_false_merges(labelled, data_dir):
    out, stats = labelled
    nd = data_dir / "near_duplicates"
    label = {r["id"]: r["cluster_id"] for r in map(json.loads, (nd / "labels.jsonl").read_text().splitlines())}
    pairs = [json.loads(x) for x in (nd / "pairs.jsonl").read_text().splitlines()]
    positive = {frozenset((p["id_a"], p["id_b"])) for p in pairs}
    cl = pq.read_table(out / "clusters.parquet").to_pydict()
    pred = dict(zip(cl["id"], cl["cluster_id"]))
    assert len(pred) == 375
    high = [p for p in pairs if p["jaccard_char5"] >= 0.8]
    recall = sum(pred[p["id_a"]] == pred[p["id_b"]] for p in high) / len(high)
    assert recall >= 0.95
    groups = defaultdict(list)
    for doc, c in pred.items():
        groups[c].append(doc)
    merged = [frozenset(x) for g in groups.values() for x in itertools.combinations(g, 2)]
    false = [x for x in merged if x not in positive and len({label[i] for i in x}) > 1]
    assert merged and not false
    assert stats["documents"]["identity_holds"]


def test_every_record_has_cluster_fields_and_removed_point_to_kept(labelled):
    out, stats = labelled
    recs = _records(out)
    kept = {i for i, r in recs.items() if r[0] == "kept"}
    sizes = defaultdict(int)
    for i, (sub, cid, _size, dup_of, reason, _) in recs.items():
        sizes[cid] += 1
        if sub == "kept":
            assert cid == i and dup_of is None
        else:
            assert dup_of == cid and cid in kept and reason in ("exact_duplicate", "near_duplicate")
    assert all(recs[i][2] == sizes[recs[i][1]] for i in recs)
    assert stats["documents"]["kept"] == len(kept) == len(sizes)


def _write(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def test_output_independent_of_input_order_and_workers(data_dir, tmp_path):
    lines = (data_dir / "near_duplicates" / "documents.jsonl").read_text(encoding="utf-8").splitlines()
    recs = [json.loads(x) for x in lines]
    ref_out = tmp_path / "ref"
    run_dedup([data_dir / "near_duplicates" / "documents.jsonl"], ref_out, progress=False)
    random.Random(3).shuffle(recs)
    _write(tmp_path / "a.jsonl", recs[:200])
    _write(tmp_path / "b.jsonl", recs[200:])
    out = tmp_path / "shuffled"
    run_dedup([tmp_path / "b.jsonl", tmp_path / "a.jsonl"], out, workers=2, progress=False)
    assert _records(out) == _records(ref_out)


def test_kill_and_resume_equals_uninterrupted(data_dir, tmp_path):
    src = [data_dir / "near_duplicates" / "documents.jsonl"]
    cfg = DedupConfig(split_bytes=200_000)  # several byte-range tasks
    run_dedup(src, tmp_path / "full", cfg, progress=False)
    for phase in ("scan", "verify"):
        run_dedup(src, tmp_path / f"killed-{phase}", cfg, progress=False, stop_after=phase)
    # a kill inside the write phase: one task finished, the others not
    run_dedup(src, tmp_path / "killed-write", cfg, progress=False, stop_after="components")
    from jpcurate.dedup.phases import Context, write_task

    ctx = Context(out=str(tmp_path / "killed-write"), config=cfg)
    write_task(ctx, plan_tasks([str(s) for s in src], cfg.split_bytes)[0])  # parts written, marker missing
    for name in ("killed-scan", "killed-verify", "killed-write"):
        stats = run_dedup(src, tmp_path / name, cfg, progress=False)
        assert _records(tmp_path / name) == _records(tmp_path / "full")
        assert stats["documents"]["identity_holds"]
    with pytest.raises(SystemExit, match="other inputs or options"):
        run_dedup(src, tmp_path / "full", DedupConfig(threshold=0.7), progress=False)


def test_byte_range_tasks_read_every_record_once_with_reader_ids(data_dir, tmp_path):
    recs = [{"text": f"行{i} " + "あ" * (i % 50)} for i in range(500)]  # no ids: fallback ids carry line numbers
    path = tmp_path / "big.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in recs[:250]) + "\n\n"
                    + "\n".join(json.dumps(r, ensure_ascii=False) for r in recs[250:]) + "\n", encoding="utf-8")
    tasks = plan_tasks([str(path)], split_bytes=1000)
    assert len(tasks) > 5 and all(t.end > t.start for t in tasks)
    split = [d.id for t in tasks for d in read_task(t)]
    whole = [d.id for d in read_documents(path)]
    assert split == whole and len(whole) == 500


def test_bad_input_quarantined_short_docs_exact_only_identity(tmp_path):
    path = tmp_path / "in.jsonl"
    body = "これは重複判定のための十分に長い日本語の文章です。 " * 4
    path.write_text("\n".join([
        json.dumps({"id": "a", "text": body}, ensure_ascii=False),
        json.dumps({"id": "b", "text": "  " + body.replace(" ", " \n\t ") + "\n"}, ensure_ascii=False),
        # b equals a after normalisation (whitespace runs -> one space): exact duplicate, a has the smaller id
        json.dumps({"id": "c", "text": "短い"}, ensure_ascii=False),
        json.dumps({"id": "d", "text": "短い"}, ensure_ascii=False),  # short: exact duplicate of c
        json.dumps({"id": "e", "text": "短かい"}, ensure_ascii=False),  # short, not equal: kept (no MinHash)
        json.dumps({"id": "f", "text": ""}, ensure_ascii=False),
        json.dumps({"id": "g", "text": ""}, ensure_ascii=False),
        '{"id": "h", "text": ',  # malformed JSON
        json.dumps({"id": "i", "body": "no text"}),
        json.dumps({"id": "j", "text": 5}),
    ]) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    stats = run_dedup([path], out, progress=False)
    recs = _records(out)
    assert recs["b"][0] == "removed" and recs["b"][3] == "a" and recs["b"][4] == "exact_duplicate"
    assert recs["d"][3] == "c" and recs["e"][0] == "kept" and recs["g"][3] == "f"
    d = stats["documents"]
    assert (d["input"], d["kept"], d["rejected"], d["quarantined"]) == (10, 4, 3, 3)
    assert stats["reasons"] == {"exact_duplicate": 3}
    q = [json.loads(x) for f in (out / "quarantine").glob("*.jsonl") for x in f.read_text().splitlines()]
    assert sorted(r["position"] for r in q) == [8, 9, 10]


def test_repeated_lines_removed_and_emptied_documents_rejected(tmp_path):
    footer = "Copyright © 2024 サンプル株式会社 All Rights Reserved."
    recs = [{"id": f"d{i}", "text": f"記事{i}の本文です。内容は異なります{i * 7919}。\n{footer}"} for i in range(6)]
    recs.append({"id": "only-footer", "text": footer + "\n\n" + footer})
    path = tmp_path / "in.jsonl"
    _write(path, recs)
    out = tmp_path / "out"
    stats = run_dedup([path], out, DedupConfig(line_min_docs=3), progress=False)
    recs_out = _records(out)
    assert all(footer not in r[5] for i, r in recs_out.items() if r[0] == "kept")
    assert recs_out["d0"][0] == "kept" and recs_out["d0"][5].startswith("記事0")
    assert recs_out["only-footer"][4] == "repeated_lines.empty"
    assert stats["reasons"] == {"repeated_lines.empty": 1} and stats["documents"]["identity_holds"]
    # below the threshold nothing is removed
    stats = run_dedup([path], tmp_path / "out2", DedupConfig(line_min_docs=8), progress=False)
    assert stats["documents"]["kept"] == 7


def test_cli_dedup_and_pipeline_toml_dedup_steps(data_dir, tmp_path):
    from jpcurate.cli import main

    src = str(data_dir / "near_duplicates" / "documents.jsonl")
    assert main(["dedup", "--input", src, "--output", str(tmp_path / "cli"), "--threshold", "0.8", "--ngram", "5",
                 "--num-perm", "128", "--quiet"]) == 0
    stats = json.loads((tmp_path / "cli" / "stats.json").read_text())
    assert stats["documents"]["identity_holds"] and stats["dedup"]["config"]["bands"] * 7 <= 128
    toml = tmp_path / "p.toml"
    toml.write_text('name = "t"\n[[steps]]\ntype = "RepeatedLines"\nmin_docs = 50\n'
                    '[[steps]]\ntype = "NearDedup"\nthreshold = 0.8\n', encoding="utf-8")
    assert main(["run", "--config", str(toml), "--input", src, "--output", str(tmp_path / "toml"), "--quiet"]) == 0
    assert _records(tmp_path / "toml") == _records(tmp_path / "cli")


def test_in_memory_dedup_equals_engine(labelled, data_dir):
    from jpcurate.dedup.memory import dedup_texts

    out, _ = labelled
    recs = [json.loads(x) for x in (data_dir / "near_duplicates" / "documents.jsonl").read_text().splitlines()]
    mem = dedup_texts([r["text"] for r in recs], [r["id"] for r in recs])
    engine = _records(out)
    assert {i: (v["cluster_id"], v["cluster_size"], v["reason"]) for i, v in mem.items()} == {
        i: (r[1], r[2], r[4]) for i, r in engine.items()}
