"""13-gram contamination overlap, the resumable record store, and importing jpalign.eval without torch."""

import json
import subprocess
import sys

import pytest

from jpalign.eval.contamination import char_ngrams, contamination_report, corpus_texts, overlap
from jpalign.eval.store import RecordStore, key

PARA = "梅雨は、北海道と小笠原諸島を除く日本、朝鮮半島南部、中国の南部から長江流域にかけての沿海部でみられる。"


def test_char_13grams_ignore_whitespace_and_width():
    assert char_ngrams("a" * 12) == set()
    assert char_ngrams("ＡＢＣＤＥＦＧＨＩＪＫＬＭ") == {"ABCDEFGHIJKLM"}
    assert char_ngrams("ABCDEF GHIJKLM") == {"ABCDEFGHIJKLM"}


def test_overlap_shares():
    corpus = ["前置き。" + PARA + "後書き。", "無関係な文章がここにあります。"]
    scores = overlap({"copied": PARA, "half": PARA[:30] + "まったく別の内容が続いていく文章になっています。",
                      "clean": "今日は天気が良いので公園に散歩に行きました。", "short": "短い"}, corpus)
    assert scores["copied"] == 1.0 and scores["clean"] == 0.0 and scores["short"] == 0.0
    assert 0.2 < scores["half"] < 0.8


def test_contamination_report_reads_jsonl_files_and_directories(tmp_path):
    d = tmp_path / "corpus"
    d.mkdir()
    (d / "a.jsonl").write_text(json.dumps({"text": PARA}, ensure_ascii=False) + "\n\n", encoding="utf-8")
    rep = contamination_report({"jsquad": {"1": PARA, "2": "今日は天気が良いので公園に散歩に行きました。"}}, [d])
    assert rep["jsquad"]["examples"] == 2 and rep["jsquad"]["contaminated"] == 1 and rep["jsquad"]["share"] == 0.5
    (d / "b.jsonl").write_text('{"txt": "x"}\n', encoding="utf-8")  # no text field: an error naming file and line
    with pytest.raises(ValueError, match="b.jsonl:1"):
        list(corpus_texts([d]))
    with pytest.raises(FileNotFoundError, match="no JSONL"):
        list(corpus_texts([tmp_path / "missing"]))


def test_contamination_reads_the_training_record_shapes(tmp_path):
    """SFT (messages, instruction/input/output) and preference (prompt/chosen/rejected) records count as corpus text."""
    half = len(PARA) // 2
    rows = [{"messages": [{"role": "user", "content": "要約して"}, {"role": "assistant", "content": PARA[:half]}]},
            {"instruction": "続けて", "input": "", "output": "x"},
            {"prompt": "問い", "chosen": PARA[half:], "rejected": ["a", "b"]}]
    f = tmp_path / "sft.jsonl"
    f.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    texts = list(corpus_texts([f]))
    assert texts == [f"要約して\n{PARA[:half]}", "続けて\n\nx", f"問い\n{PARA[half:]}\na\nb"]
    clean = "今日は天気が良いので公園に散歩に行きました。"
    rep = contamination_report({"jsquad": {"1": PARA[:half], "2": PARA[half:], "3": clean}}, [f])
    assert rep["jsquad"]["contaminated"] == 2


def test_store_skips_done_items_and_drops_a_torn_line(tmp_path):
    path = tmp_path / "items.jsonl"
    s = RecordStore(path)
    a = {"kind": "llmjp", "model": "m", "task": "jnli", "id": "1", "score": 1.0}
    s.add(a)
    s.add(dict(a, score=0.0))  # same key: ignored
    with path.open("a", encoding="utf-8") as f:
        f.write('{"kind": "llmjp", "model": "m", "task": "jnli", "id": "2", "sco')  # killed mid-write
    s2 = RecordStore(path)
    assert s2.dropped == 1 and len(s2.records) == 1 and key(a) in s2 and s2.get(key(a))["score"] == 1.0
    s2.add(dict(a, id="2"))
    assert [json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines()] == ["1", "2"]


def test_import_jpalign_eval_leaves_torch_out():
    code = ("import sys, jpalign.eval, jpalign.eval.report, jpalign.eval.summary, jpalign.eval.judge, "
            "jpalign.eval.llmjp, jpalign.eval.contamination, jpalign.eval.store, jpalign.eval.repetition; "
            "bad = [m for m in ('torch', 'jpmoe', 'jpcurate', 'transformers') if m in sys.modules]; "
            "print(bad); assert not bad")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
