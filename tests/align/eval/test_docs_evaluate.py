"""The Python block of docs/evaluate.md runs as written and prints the values the page claims."""

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[3] / "docs" / "evaluate.md"


def test_doc_example_runs(monkeypatch, capsys):
    (block,) = re.findall(r"```python\n(.*?)```", DOC.read_text("utf-8"), re.S)
    monkeypatch.chdir(DOC.parents[1])
    exec(compile(block, str(DOC), "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "1.0 0.6 0.6666666666666666"
    assert lines[1].endswith("### 応答:\\n' 東アジア 1.0 True")
    assert "Rating(score=8.0, status='ok')" in lines[2] and "out_of_range" in lines[2] and "unparseable" in lines[2]
    assert lines[3] == "2 True 0.75"
