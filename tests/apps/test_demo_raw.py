"""make demo's raw stage (jpmoe.data.raw_mix): held-out text never in a training source, every junk kind present,
the same output for the same seed, and bad input named."""

from __future__ import annotations

import json

import pytest

from jpmoe.data import raw_mix


def read(path):
    # not splitlines(): mojibake junk holds U+0085, a line break to splitlines
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line]


@pytest.fixture(scope="module")
def mix(tmp_path_factory):
    out = tmp_path_factory.mktemp("raw")
    return out, raw_mix.write_raw_mix(out, junk_share=0.35, seed=0)


def test_held_out_text_is_in_neither_source(mix):
    out, summary = mix
    heldout = {d["text"] for d in read(out / "heldout.jsonl")}
    assert len(heldout) == summary["heldout_docs"] > 50
    train = " ".join(d["text"] for s in ("classics", "general") for d in read(out / f"{s}.jsonl"))
    # any 30-character stretch of a held-out document found in the training text would be a leak
    probes = [t[i:i + 30] for t in heldout for i in range(0, max(1, len(t) - 30), 400)]
    leaked = [p for p in probes if len(p) == 30 and p in train]
    assert not leaked, leaked[:3]


def test_every_junk_kind_is_mixed_in_at_the_asked_share(mix):
    out, summary = mix
    for source, s in summary["sources"].items():
        kinds = s["kinds"]
        assert set(kinds) >= {"clean", "menu", "repeated_ads", "keyword_spam", "english", "mojibake", "exact_copy",
                              "near_copy", "footer"}, kinds
        assert (s["docs"] - kinds["clean"]) / s["docs"] == pytest.approx(0.35, abs=0.01)
        assert [d["kind"] for d in read(out / f"{source}.jsonl")].count("clean") == kinds["clean"]


def test_the_same_seed_gives_the_same_files_and_another_seed_other_ones(mix, tmp_path):
    out, _ = mix
    raw_mix.write_raw_mix(tmp_path / "a", junk_share=0.35, seed=0)
    raw_mix.write_raw_mix(tmp_path / "b", junk_share=0.35, seed=1)
    assert (tmp_path / "a/classics.jsonl").read_bytes() == (out / "classics.jsonl").read_bytes()
    assert (tmp_path / "b/classics.jsonl").read_bytes() != (out / "classics.jsonl").read_bytes()


def test_a_bad_junk_share_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="--junk_share must be in"):
        raw_mix.write_raw_mix(tmp_path, junk_share=1.0)
    assert raw_mix.main(["--out_dir", str(tmp_path / "cli"), "--junk_share", "0"]) == 0
    assert not any(d["kind"] != "clean" for d in read(tmp_path / "cli/general.jsonl"))
