"""apps/chat.py: the one-shot answer equals jpmoe.generate's greedy output through the chat template; in a
pseudo-terminal, two turns carry the history, /save writes an SFT `messages` record, /reset forgets, Ctrl-C stops
an answer but not the session, and a conversation that would overflow the context is trimmed with a notice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from app_helpers import ENV, ROOT, load_app
from serve_helpers import tiny_chat_model

from jpmoe.generate import SamplingParams, generate
from jpmoe.serve import load_chat_model

FLAGS = ["--temperature", "0", "--repetition_penalty", "1.0", "--max_tokens", "12"]


@pytest.fixture(scope="module")
def chat_model(tmp_path_factory, data_dir):
    path = tiny_chat_model(tmp_path_factory.mktemp("chat_model"), data_dir)
    return path, load_chat_model(path)


def greedy(cm, messages: list[dict], max_tokens: int) -> tuple[str, int]:
    toks = generate(cm.model, [cm.encode_chat(messages)],
                    SamplingParams(max_new_tokens=max_tokens, stop_token_ids=cm.stop_ids))[0]
    return cm.decode([t for t in toks if t not in cm.stop_ids]), len(toks)


def test_one_shot_prompt_equals_greedy_generate(chat_model):
    path, cm = chat_model
    out = subprocess.run([sys.executable, str(ROOT / "apps/chat.py"), "--model", str(path), "--prompt", "こんにちは",
                          "--system", "丁寧に答えて", *FLAGS], capture_output=True, text=True, env=ENV, timeout=120)
    assert out.returncode == 0, out.stderr
    want, _ = greedy(cm, [{"role": "system", "content": "丁寧に答えて"}, {"role": "user", "content": "こんにちは"}], 12)
    assert out.stdout == want + "\n"


def test_damaged_config_and_missing_template_are_named(chat_model, tmp_path, capsys):
    import shutil

    path, _ = chat_model
    bad = tmp_path / "bad"
    shutil.copytree(path, bad)
    (bad / "config.json").write_text("{broken")
    app = load_app("chat")
    with pytest.raises(SystemExit) as e:
        app.main(app.Args(model=str(bad), prompt="x"))
    assert e.value.code == 2 and "config.json" in capsys.readouterr().err
    shutil.copy(path / "config.json", bad / "config.json")
    (bad / "chat_template.jinja").unlink()
    with pytest.raises(SystemExit) as e:
        app.main(app.Args(model=str(bad), prompt="x"))
    out = capsys.readouterr()
    assert e.value.code == 2 and "no chat_template" in out.err and out.out == ""


def test_terminal_session(chat_model, tmp_path):
    pexpect = pytest.importorskip("pexpect")
    path, cm = chat_model
    u1, u2 = {"role": "user", "content": "こんにちは"}, {"role": "user", "content": "梅雨について"}
    a1, _ = greedy(cm, [u1], 12)
    a2, _ = greedy(cm, [u1, {"role": "assistant", "content": a1}, u2], 12)
    # a message whose greedy answer runs long enough to be interrupted (the model is random, but fixed)
    long_msg = next(m for m in ("長い話をして", "物語を書いて", "台風", "歴史", "天気")
                    if greedy(cm, [{"role": "user", "content": m}], 900)[1] == 900)
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), ENV.get("PYTHONPATH", "")])}
    child = pexpect.spawn(sys.executable, [str(ROOT / "apps/chat.py"), "--model", str(path), *FLAGS], env=env,
                          encoding="utf-8", timeout=60, dimensions=(50, 2000))
    try:
        def turn(text: str) -> str:
            child.sendline(text)
            child.expect_exact("assistant> ")
            child.expect_exact("you> ")
            return child.before.replace("\r\n", "\n").strip("\n")

        child.expect_exact("you> ")
        assert turn("こんにちは") == a1
        assert turn("梅雨について") == a2  # the second turn sees the first
        saved = tmp_path / "chat.jsonl"
        child.sendline(f"/save {saved}")
        child.expect_exact("you> ")
        record = json.loads(saved.read_text(encoding="utf-8"))
        assert record == {"messages": [u1, {"role": "assistant", "content": a1}, u2,
                                       {"role": "assistant", "content": a2}]}
        child.sendline("/reset")
        child.expect_exact("[conversation reset]")
        child.expect_exact("you> ")
        assert turn("こんにちは") == a1  # nothing of the earlier conversation is left
        child.sendline("/set max_tokens 900")
        child.expect_exact("[max_tokens = 900]")
        child.expect_exact("you> ")
        child.sendline(long_msg)
        child.expect_exact("assistant> ")
        time.sleep(0.05)
        child.sendintr()
        child.expect_exact("[stopped]")
        child.expect_exact("you> ")  # the session goes on
        child.sendline("/set max_tokens 1000")  # 1000 of the 1024 positions leave no room for the history
        child.expect_exact("you> ")
        child.sendline("こんにちは")
        child.expect(r"\[history trimmed: dropped the \d+ oldest messages to fit the context of 1024 tokens\]")
        child.expect_exact("you> ")
        child.sendline("/exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
