"""Issue 19 item 5: the shipped naturalness model is trained on no evaluation set, and the quality set's documents
come from text it never saw."""

import json
import os
from pathlib import Path

import pytest

from jpcurate.lm import load_default_model
from jpcurate.lm.build_default import GSD_SPLIT, HELD_OUT_AUTHORS, TRAINING_SOURCES

# the repository root; the jpcurate-alone isolation run copies tests/ elsewhere and names data/ in JPLLM_DATA
ROOT = Path(os.environ.get("JPLLM_DATA") or Path(__file__).resolve().parents[2] / "data").resolve().parent
QUALITY_SET = ROOT / "benchmarks" / "quality_set" / "natural.jsonl"
# files (of the shared data snapshot and of data/) that hold evaluation sets or test-only text
EVALUATION = ("jglue/", "web_ja/", "web_en/", "elyza_tasks_100/", "japanese_mt_bench/", "near_duplicates/")


def test_training_sources_contain_no_evaluation_file():
    files = [f for f, _ in TRAINING_SOURCES]
    assert files and not [f for f in files if f.startswith(EVALUATION)]
    assert "jglue/jsquad_paragraphs.jsonl" not in " ".join(files)
    assert GSD_SPLIT == "dev"  # the quality set's news sentences are the test split


def test_the_shipped_model_says_what_it_was_trained_on():
    meta = load_default_model().meta
    assert meta["sources"] == [f"{f} ({what})" for f, what in TRAINING_SOURCES]
    assert meta["held_out_authors"] == list(HELD_OUT_AUTHORS)
    assert not [s for s in meta["sources"] if any(e in s for e in EVALUATION)]


def test_quality_set_literature_is_by_held_out_authors_only():
    records = [json.loads(line) for line in QUALITY_SET.open(encoding="utf-8")]
    aozora = [r for r in records if r["source"].startswith(("aozora_corpus/", "aozora_more/", "aozora/"))]
    assert len(aozora) > 300
    authors = {r["source"].split(" ", 1)[1].split("「", 1)[0] for r in aozora}
    assert authors <= set(HELD_OUT_AUTHORS), authors - set(HELD_OUT_AUTHORS)
    gsd = [r for r in records if r["source"].startswith("ud_japanese_gsd/")]
    assert gsd and all("test split" in r["source"] for r in gsd)


def test_no_quality_set_text_is_in_the_training_text():
    """Text level, where the shared data snapshot is present: no natural document of the quality set (first 200
    characters, normalised) occurs in the training documents."""
    from jpcurate.lm.build_default import training_texts
    from jpcurate.steps.normalize import normalize_text

    shared = next((up / "shared" / "data" for up in (ROOT.parent, ROOT.parents[1])
                   if (up / "shared" / "data" / TRAINING_SOURCES[0][0]).exists()), None)
    if shared is None:
        pytest.skip("shared data snapshot not present")
    corpus = "\x00".join(training_texts(shared)[0])
    records = [json.loads(line) for line in QUALITY_SET.open(encoding="utf-8")]
    probes = [normalize_text(r["text"])[50:250] for r in records if r["kind"] != "verse_lyrics"]
    leaked = [p[:30] for p in probes if len(p) >= 100 and p in corpus]
    assert not leaked, leaked
