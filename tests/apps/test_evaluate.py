"""apps/evaluate.py end to end on two tiny random models with a chat-template tokenizer, against a fake
OpenAI-compatible judge on a free 127.0.0.1 port: every suite, counted judge failures, the report, resume after a
kill (a partial items file: only the rest is generated, nothing judged twice), contamination and calibration."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch
from app_helpers import ROOT, load_app

from jpmoe.train import parse_args

ev = load_app("evaluate")
DATA = ROOT / "data"


class FakeJudge(BaseHTTPRequestHandler):
    """MT-Bench: "[[7]]", but unparseable for question 1 (both turns) and out of range ([[11]]) for question 11's
    first turn (a --limit 2 run takes coding 1 and extraction 11);
    ELYZA: a JSON grade 4; calibration answers: [[len(answer) % 10 + 1]]."""

    requests: list[str] = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        user = body["messages"][-1]["content"]
        type(self).requests.append(user)
        if "あなたは言語モデルの採点者です" in user:
            text = json.dumps({"reason": "良い", "grade": 4}, ensure_ascii=False)
        elif "[The Start of Assistant's Answer]\nCALIB" in user:
            answer = user.split("[The Start of Assistant's Answer]\n")[1].split("\n[The End")[0]
            text = f"評価：[[{len(answer) % 10 + 1}]]"
        elif "ディレクトリ内の全てのテキストファイル" in user:
            text = "評価できません"
        elif "映画のレビュー" in user and "### User:" not in user:
            text = "評価：[[11]]"
        else:
            text = "良い回答です。評価：[[7]]"
        out = json.dumps({"id": "x", "object": "chat.completion", "model": body["model"],
                          "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                       "finish_reason": "stop"}],
                          "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *a):
        pass


@pytest.fixture(scope="module")
def judge_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadingHTTPServer(("127.0.0.1", port), FakeJudge)
    server.timeout = 5
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def models(tiny_run, tmp_path_factory):
    """Two random debug models exported as HF directories with the tiny tokenizer (chat template included)."""
    from transformers import AutoTokenizer

    from jpmoe import ModelConfig, Transformer
    from jpmoe.hf import save_hf

    tok_dir, _ = tiny_run
    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    assert tok.chat_template
    base = tmp_path_factory.mktemp("models")
    config = ModelConfig.preset("debug", vocab_size=len(tok), max_seq_len=256)
    for i, name in enumerate(("base", "sft")):
        torch.manual_seed(i)
        save_hf(Transformer(config).state_dict(), config, base / name / "hf", tokenizer_dir=tok_dir)
    return base


def args(models, out, judge_url, *extra):
    return parse_args(ev.Args, ["--model", str(models / "base" / "hf"), "--model", str(models / "sft" / "hf"),
                                "--out_dir", str(out), "--limit", "2", "--num_few_shots", "1",
                                "--max_new_tokens", "6", "--data_dir", str(DATA), "--judge-url", judge_url,
                                "--judge-model", "fake", *extra])


def test_cli_repeated_list_flag_and_bare_bool():
    a = parse_args(ev.Args, ["--model", "a", "--model", "b=c", "--calibrate-judge", "--limit", "3"])
    assert a.model == ["a", "b=c"] and a.calibrate_judge is True and a.limit == 3
    assert parse_args(ev.Args, ["--model", "a,b"]).model == ["a", "b"]
    with pytest.raises(ValueError, match="--limit needs a value"):
        parse_args(ev.Args, ["--limit"])
    assert ev.model_names(["runs/demo/sft/hf", "x=runs/y"]) == {"sft": "runs/demo/sft/hf", "x": "runs/y"}
    with pytest.raises(ValueError, match="two models are named"):
        ev.model_names(["a/sft/hf", "b/sft/hf"])


def test_end_to_end_report_and_resume(models, judge_url, tmp_path, monkeypatch):
    import jpmoe.textgen

    out = tmp_path / "eval"
    corpus = tmp_path / "corpus.jsonl"  # a "training corpus" holding the JSQuAD paragraphs
    corpus.write_text((DATA / "jglue/jsquad_paragraphs.jsonl").read_text(encoding="utf-8"), encoding="utf-8")
    res = ev.main(args(models, out, judge_url, "--contamination", str(corpus), "--contaminated", "sft=jsquad"))
    recs = res["records"]
    assert {(r["kind"], r["model"]) for r in recs} >= {("llmjp", "base"), ("gen", "sft"), ("judge", "base")}
    llm = [r for r in recs if r["kind"] == "llmjp"]
    assert len(llm) == 2 * 4 * 2  # models x tasks x limit
    assert all(r["prompt"].endswith("### 応答:\n") for r in llm)
    # as many shots as fit 256 positions: the prompt then holds shots + 1 inputs
    assert all(r["shots"] in (0, 1) and r["prompt"].count("### 入力:") == r["shots"] + 1 for r in llm)
    assert all(r["mc_logprobs"] and len(r["mc_logprobs"]) == (5 if r["task"] == "jcommonsenseqa" else 3)
               for r in llm if r["task"] in ("jcommonsenseqa", "jnli"))
    gens = [r for r in recs if r["kind"] == "gen"]
    assert len(gens) == 2 * (2 * 2 + 2)  # MT-Bench 2 questions x 2 turns, ELYZA 2
    assert all(r["finish"] in ("stop", "length") and "char_seq_rep_4" in r["rep"] for r in gens)
    mt = res["summary"]["base"]["mt_bench"]["judge"]
    # question 1 unparseable (2 turns), question 11 out of range on turn 1: only one valid score, never 11
    assert (mt["judged"], mt["unparseable"], mt["out_of_range"], mt["ok"], mt["mean"]) == (4, 2, 1, 1, 7.0)
    assert mt["per_category"] == {"extraction": 7.0} and (out / "mt_bench_categories.png").exists()
    assert res["summary"]["sft"]["elyza"]["judge"]["mean"] == 4.0
    assert res["contamination"][str(corpus)]["jsquad"]["share"] == 1.0
    assert res["contamination"][str(corpus)]["jnli"]["share"] == 0.0
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "sft ⚠ contaminated (jsquad)" in report and "## Contamination" in report
    assert (out / "llmjp_scores.png").exists() and (out / "repetition.png").exists()
    n_judge = len(FakeJudge.requests)

    # simulate a kill: keep the first half of the items file plus a torn line, then rerun
    lines = (out / "items.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    keep = len(lines) // 2
    (out / "items.jsonl").write_text("".join(lines[:keep]) + lines[keep][:20], encoding="utf-8")
    prompts = []
    real = jpmoe.textgen.generate_texts
    monkeypatch.setattr(jpmoe.textgen, "generate_texts",
                        lambda model, tok, ps, *a, **k: prompts.extend(ps) or real(model, tok, ps, *a, **k))
    res2 = ev.main(args(models, out, judge_url, "--contamination", str(corpus), "--contaminated", "sft=jsquad"))
    redone = [json.loads(x) for x in lines[keep:] if json.loads(x)["kind"] in ("llmjp", "gen")]
    assert len(prompts) == len(redone)  # only the missing items were generated again
    assert len(FakeJudge.requests) == n_judge  # every judgement came from the cache or the items file
    final = [json.loads(x) for x in (out / "items.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(final) == len(lines) and len({ev.key(r) for r in final}) == len(final)
    old = {ev.key(json.loads(x)): json.loads(x) for x in lines[:keep]}
    assert all(old[ev.key(r)] == r for r in res2["records"] if ev.key(r) in old)
    assert len(res2["records"]) == len(res["records"])


def test_calibrate_judge(judge_url, tmp_path, monkeypatch):
    data = tmp_path / "data"
    (data / "japanese_mt_bench").mkdir(parents=True)
    src = DATA / "japanese_mt_bench"
    for f in ("reference_answer_gpt4o_human_annotated.jsonl", "question.jsonl"):
        (data / "japanese_mt_bench" / f).write_text((src / f).read_text(encoding="utf-8"), encoding="utf-8")
    rows = [json.loads(x) for x in (src / "judged_answers_turn1.jsonl").read_text(encoding="utf-8").splitlines()[:6]]
    for i, r in enumerate(rows):  # answers whose fake-judge score is len % 10 + 1
        r["response"] = "CALIB" + "あ" * i
    (data / "japanese_mt_bench" / "judged_answers_turn1.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    a = parse_args(ev.Args, ["--out_dir", str(tmp_path / "cal"), "--data_dir", str(data), "--tasks", "jnli",
                             "--calibrate-judge", "--judge-url", judge_url, "--judge-model", "fake"])
    cal = ev.main(a)["calibration"]
    ours = [(len(r["response"]) % 10 + 1) for r in rows]
    assert cal["n"] == 6 and cal["failed"] == 0
    assert cal["mean_abs_diff"] == pytest.approx(sum(abs(o - r["gpt4_score"]) for o, r in zip(ours, rows)) / 6)
    assert "## Judge calibration" in (tmp_path / "cal" / "report.md").read_text(encoding="utf-8")


def test_bad_input_is_named(tmp_path):
    with pytest.raises(ValueError, match="nothing to do"):
        ev.main(parse_args(ev.Args, ["--out_dir", str(tmp_path)]))
    with pytest.raises(ValueError, match="unknown tasks"):
        ev.main(parse_args(ev.Args, ["--tasks", "jcola", "--out_dir", str(tmp_path)]))
    with pytest.raises(ValueError, match="--judge-url and --judge-model"):
        ev.main(parse_args(ev.Args, ["--calibrate-judge", "--out_dir", str(tmp_path)]))
    with pytest.raises(ValueError, match="--contaminated names"):
        ev.main(parse_args(ev.Args, ["--model", "a=x", "--contaminated", "b", "--out_dir", str(tmp_path)]))


def test_generation_through_an_endpoint(judge_url, tmp_path):
    """--endpoint: the same prompts go to the served model (here the fake, which answers with a judgement text)."""
    a = parse_args(ev.Args, ["--endpoint", judge_url, "--model", "served=fake-model", "--out_dir", str(tmp_path),
                             "--tasks", "jnli,mt_bench", "--limit", "2", "--data_dir", str(DATA)])
    res = ev.main(a)
    llm = [r for r in res["records"] if r["kind"] == "llmjp"]
    assert len(llm) == 2 and all("mc_logprobs" not in r and r["finish"] == "stop" for r in llm)
    assert all(r["pred"] == "良い回答です。評価:[[7]]" and r["format_ok"] is False for r in llm)  # NFKC'd
    gens = [r for r in res["records"] if r["kind"] == "gen"]
    assert len(gens) == 4 and all(g["token_ids"] is None for g in gens)
    assert {g["output"] for g in gens} == {"評価できません", "評価：[[11]]", "良い回答です。評価：[[7]]"}
    assert "endpoint" in (tmp_path / "report.md").read_text(encoding="utf-8")
