"""Bad input: each is quarantined or rejected with a reason in bounded time, and the run goes on."""

import json

import pytest
from curate_helpers import PROSE

from jpcurate.document import Document
from jpcurate.engines.local import RunOptions, run_local
from jpcurate.pipeline import run_pipeline
from jpcurate.presets import PRESETS, build_preset

# Inputs built to make naive regular expressions backtrack (nested/overlapping repetition with a failing tail).
ADVERSARIAL = {
    "tags": "<a " + "x " * 50_000,
    "entities": "&#" * 50_000 + "&amp" * 10_000,
    "ruby": "《" * 30_000 + "漢" + "》" * 30_000,
    "notes": "［＃" * 30_000,
    "email": "a." * 50_000 + "@" + "b-" * 50_000,
    "phone": "0-" * 50_000,
    "card": "1 " * 50_000 + "x",
    "ip": "1." * 50_000,
    "menu": ("ホーム | " * 10_000) + "\n",
    "boilerplate": ("シェア " * 20 + "\n") * 2000,
    "one_line": "あ" * 200_000,
    "sentences": "。" * 100_000,
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_adversarial_texts_finish_with_a_verdict(preset):
    docs = [Document(k, v, {"url": "http://" + "a." * 5000}) for k, v in ADVERSARIAL.items()]
    kept, rejected, stats = run_pipeline(build_preset(preset), docs)
    stats.check_identity()
    assert len(kept) + len(rejected) == len(ADVERSARIAL)
    assert not [d for d in rejected if d.reason.endswith(".error")]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_50_mb_document_and_broken_lines_do_not_stop_the_run(tmp_path):
    p = tmp_path / "bad.jsonl"
    with open(p, "wb") as f:
        f.write(json.dumps({"id": "huge", "text": "a" * 50_000_000}).encode() + b"\n")
        f.write(b'{"id": "cut", "text": "\xe3\x81"}\n')
        f.write(b'{"id": "nul\x00", \n')
        f.write(json.dumps({"id": "empty", "text": ""}).encode() + b"\n")
        f.write(json.dumps({"id": "ok", "text": PROSE}, ensure_ascii=False).encode() + b"\n")
        f.write(json.dumps({"id": "lone", "text": "\ud800" + PROSE}).encode() + b"\n")
    stats = run_local(build_preset("ja-web"), [p], RunOptions(output=tmp_path / "o", progress=False))
    s = json.loads((tmp_path / "o" / "stats.json").read_text())
    assert s["documents"] == {"input": 6, "kept": 2, "rejected": 2, "quarantined": 2, "identity_holds": True}
    assert s["reasons"] == {"empty": 1, "too_long": 1}
    assert stats.quarantine_reasons == {"invalid UTF-8": 1, "malformed JSON": 1}
    kept = [json.loads(x) for x in (tmp_path / "o" / "kept" / "00000-bad-00000.jsonl").read_text().splitlines()]
    assert [k["id"] for k in kept] == ["ok", "lone"] and kept[1]["text"].startswith("\ufffd")
