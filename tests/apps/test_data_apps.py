"""apps/train_tokenizer.py and apps/prepare_data.py on a few bundled documents."""

from __future__ import annotations

import json

import numpy as np
import pytest
from app_helpers import load_app

pytest.importorskip("sentencepiece")


@pytest.fixture(scope="module")
def docs(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("docs")
    lines = (data_dir / "jglue/jsquad_paragraphs.jsonl").read_text(encoding="utf-8").splitlines()[:240]
    (out / "part-00000.jsonl").write_text("\n".join(lines[:120]) + "\n", encoding="utf-8")
    (out / "part-00001.jsonl").write_text("\n".join(lines[120:]) + "\n", encoding="utf-8")
    (out / ".part-00002.jsonl.tmp").write_text("{not json", encoding="utf-8")  # a writer's unfinished part
    return out, [json.loads(line)["text"] for line in lines]


def test_train_tokenizer_app(tmp_path, docs, data_dir):
    from transformers import AutoTokenizer

    from jpalign import CHAT_TEMPLATES

    app = load_app("train_tokenizer")
    out = app.main(app.Args(input=[str(docs[0])], out_dir=str(tmp_path / "tok"), vocab_size=2500,
                            held_out_docs=10, held_out_en=[str(data_dir / "web_en/dolma_test_cc_en.jsonl")]))
    report = json.loads((out / "report.json").read_text())
    assert report["train_docs"] == 230 and report["vocab_size"] == 2500
    assert report["chars_per_token"]["ja_held_out"] > 1.0 and 0 < report["chars_per_token"]["en_held_out"]
    tok = AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    assert tok.chat_template == CHAT_TEMPLATES["instruction-ja"].jinja
    held = docs[1][-1]
    assert tok.decode(tok.encode(held, add_special_tokens=False)) == held
    with pytest.raises(ValueError, match="--chat_template 'chatml'"):
        app.main(app.Args(input=[str(docs[0])], out_dir=str(tmp_path / "x"), vocab_size=2500, chat_template="chatml"))


def test_prepare_data_app(tmp_path, docs):
    from transformers import AutoTokenizer

    from jpmoe.data import TokenSource

    tok_app, prep = load_app("train_tokenizer"), load_app("prepare_data")
    tok_dir = tok_app.main(tok_app.Args(input=[str(docs[0])], out_dir=str(tmp_path / "tok"), vocab_size=2500))
    out = prep.main(prep.Args(input=[str(docs[0])], tokenizer=str(tok_dir), out_dir=str(tmp_path / "shards"),
                              batch_docs=50))
    src = TokenSource(out)
    texts = docs[1]
    assert src.meta["num_docs"] == len(texts) and src.shards[0].dtype == np.uint16
    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    starts = list(src.doc_starts()) + [len(src)]
    for i in (0, 119, 120, 239):  # documents at the file boundary too
        ids = src.read(int(starts[i]), int(starts[i + 1] - starts[i])).tolist()
        assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
        assert tok.decode(ids[1:-1]) == texts[i]
    with pytest.raises(ValueError, match=r"no non-empty documents.*240 documents rejected \(missing_text_field=240\)"):
        prep.main(prep.Args(input=[str(docs[0])], tokenizer=str(tok_dir), out_dir=str(tmp_path / "s2"),
                            text_key="body"))
