"""Bad app arguments stop with an error naming the flag before any work (no traceback from deep inside a run,
no run that 'succeeds' having trained on nothing)."""

from __future__ import annotations

import pytest
from app_helpers import load_app


@pytest.mark.parametrize(
    ("flag", "value"),
    [("ckpt_every", 0), ("log_every", 0), ("micro_batch", 0), ("grad_accum", 0), ("seq_len", 0), ("max_steps", -1),
     ("sample_every", -1)],
)
def test_pretrain_rejects_bad_values_up_front(tmp_path, flag, value):
    app = load_app("pretrain")
    args = app.Args(tokenizer=str(tmp_path / "no-tokenizer"), mixture=str(tmp_path / "no.toml"),
                    out_dir=str(tmp_path / "run"), **{flag: value})
    with pytest.raises(ValueError, match=f"--{flag} must be"):
        app.main(args)
    assert not (tmp_path / "run").exists()


def test_pretrain_names_a_missing_tokenizer_directory(tmp_path):
    app = load_app("pretrain")
    with pytest.raises(FileNotFoundError, match="--tokenizer .*no-tokenizer: no such directory"):
        app.main(app.Args(tokenizer=str(tmp_path / "no-tokenizer"), out_dir=str(tmp_path / "run")))


@pytest.mark.parametrize(("extra", "match"), [({"tokenizer": "/nonexistent/tok"}, "no such directory"),
                                              ({"batch_docs": 0}, "--batch_docs must be"),
                                              ({"max_docs": -1}, "--max_docs >= 0")])
def test_prepare_data_rejects_bad_arguments_up_front(tmp_path, data_dir, extra, match):
    app = load_app("prepare_data")
    tok = tmp_path / "tok"
    tok.mkdir()  # existence is checked before loading, so an empty directory passes that check
    args = app.Args(input=[str(data_dir / "aozora/works.jsonl")], out_dir=str(tmp_path / "shards"),
                    **{"tokenizer": str(tok), **extra})
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        app.main(args)
    assert not (tmp_path / "shards").exists()


@pytest.mark.parametrize(("extra", "match"), [({"vocab_size": 0}, "--vocab_size must be"),
                                              ({"held_out_docs": 0}, "--held_out_docs must be"),
                                              ({"max_docs": -1}, "--max_docs must be"),
                                              ({"held_out_en": ["/nonexistent/en.jsonl"]}, "/nonexistent/en.jsonl")])
def test_train_tokenizer_rejects_bad_arguments_before_training(tmp_path, data_dir, extra, match):
    app = load_app("train_tokenizer")
    args = app.Args(input=[str(data_dir / "jglue/jsquad_paragraphs.jsonl")], out_dir=str(tmp_path / "tok"),
                    vocab_size=500, max_docs=40, held_out_docs=2)
    for key, value in extra.items():
        setattr(args, key, value)
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        app.main(args)
    assert not (tmp_path / "tok").exists()


@pytest.mark.parametrize(("flag", "value"), [("steps", 0), ("steps", 19), ("micro_batch", 0), ("seq_len", 0),
                                             ("vocab_size", 0)])
def test_demo_rejects_bad_values_before_curating(tmp_path, flag, value):
    app = load_app("demo")
    with pytest.raises(ValueError, match=f"--{flag} must be"):  # steps < 20: the first/last-10 loss check is void
        app.main(app.Args(out_dir=str(tmp_path / "demo"), **{flag: value}))
    assert not (tmp_path / "demo").exists()


@pytest.mark.parametrize("app_name", ["prepare_data", "train_tokenizer"])
def test_a_stray_comma_in_input_is_an_error_not_the_working_directory(tmp_path, data_dir, app_name):
    from jpmoe.train import parse_args

    app = load_app(app_name)
    tok = tmp_path / "tok"
    tok.mkdir()
    args = parse_args(app.Args, ["--input", f"{data_dir / 'aozora/works.jsonl'},", "--out_dir", str(tmp_path / "o"),
                                 "--tokenizer" if app_name == "prepare_data" else "--held_out_docs",
                                 str(tok) if app_name == "prepare_data" else "2"])
    with pytest.raises(ValueError, match="empty path"):  # Path("") would read every JSONL under the cwd
        app.main(args)
    assert not (tmp_path / "o").exists()


def test_prepare_data_counts_untokenisable_documents(tmp_path, tiny_run, capsys):
    from jpmoe.data import TokenSource

    src = tmp_path / "docs.jsonl"  # a null and a numeric text, a lone surrogate (valid JSON, invalid UTF-8),
    src.write_text('{"text": "吾輩は猫である。"}\n{"text": null}\n{"text": 5}\n{"text": "\\ud800壊れ"}\n'  # a broken
                   '{not json\n{"body": "x"}\n{"text": "名前はまだ無い。"}\n', encoding="utf-8")  # line, no text
    app = load_app("prepare_data")
    out = app.main(app.Args(input=[str(src)], tokenizer=str(tiny_run[0]), out_dir=str(tmp_path / "s"), batch_docs=8))
    assert TokenSource(out).meta["num_docs"] == 2
    assert ("5 documents rejected (invalid_unicode=1, malformed_json=1, missing_text_field=1, non_string_text=1, "
            "null_text=1)" in capsys.readouterr().out)


def test_train_tokenizer_counts_untrainable_documents(tmp_path, data_dir):
    import json

    lines = (data_dir / "jglue/jsquad_paragraphs.jsonl").read_text(encoding="utf-8").splitlines()[:120]
    src = tmp_path / "docs.jsonl"
    src.write_text("\n".join([*lines[:100], '{"text": null}', '{"text": 5}', '{"text": "\\ud800壊れ"}', *lines[100:]])
                   + "\n", encoding="utf-8")
    app = load_app("train_tokenizer")
    out = app.main(app.Args(input=[str(src)], out_dir=str(tmp_path / "tok"), vocab_size=2000, held_out_docs=5))
    report = json.loads((out / "report.json").read_text())
    assert report["train_docs"] == 115 and report["rejected_docs"] == {"invalid_unicode": 1, "non_string_text": 1,
                                                               "null_text": 1}
