"""The Python blocks of docs/jpalign.md run, in order, in one namespace (the page stays true)."""

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "jpalign.md"


def test_doc_examples_run(monkeypatch, capsys):
    pytest.importorskip("transformers")
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text("utf-8"), re.S)
    assert len(blocks) >= 4
    monkeypatch.chdir(DOC.parents[1])  # the examples read data/ relative to the repository root
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)
    out = capsys.readouterr().out
    assert "東京です。</s>" in out and "dropped 1 (empty_response=1)" in out
    assert abs(float(out.strip().splitlines()[-1]) - 0.6931472) < 1e-5  # DPO with policy = reference
