"""apps/sft.py on tiny models (CPU): the loss falls, only assistant tokens + EOS are supervised, packing equals no
packing, an HF Llama gives transformers' loss at step 0, bad records are counted by reason, LoRA merges on export,
and the export's chat template reproduces the training format."""

from __future__ import annotations

import json
import math

import pytest
import torch
from app_helpers import load_app
from posttrain_helpers import SFT_FACTS, build_bases, sft_cmd, sft_records, write_jsonl

from jpalign import INSTRUCTION_JA, collate, pack_examples, shift_labels
from jpalign.records import sample_prompts
from jpmoe.train import parse_args, read_metrics
from jpmoe.train.dist import DistInfo

sft = load_app("sft")
ONE = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


@pytest.fixture(scope="module")
def post_base(tmp_path_factory, data_dir):
    return build_bases(tmp_path_factory.mktemp("post_base"), data_dir)


def run(base, tmp_path, *extra: str, records=None):
    tmp_path.mkdir(parents=True, exist_ok=True)
    data = write_jsonl(tmp_path / "sft.jsonl", records or sft_records())
    out = tmp_path / "run"
    args = parse_args(sft.Args, sft_cmd(base, data, out, *extra)[1:])
    sft.main(args)
    return out, read_metrics(out / "metrics.jsonl")


def test_loss_falls_and_export_reproduces_the_training_format(post_base, tmp_path):
    from transformers import AutoTokenizer

    out, metrics = run(post_base[0], tmp_path, "--max_steps", "24", "--ckpt_every", "100", "--eval_frac", "0.2")
    first, last = metrics[0]["loss"], metrics[-1]["loss"]
    assert last < first - 1.0, (first, last)
    assert math.isfinite(metrics[-1]["eval/loss"]) and metrics[-1]["eval/loss"] < metrics[0]["loss"]
    samples = [json.loads(line) for line in (out / "samples.jsonl").open()]
    assert {s["step"] for s in samples} == {24} and len(samples) == 4
    tok = AutoTokenizer.from_pretrained(str(out / "hf"))
    msgs = [{"role": "user", "content": SFT_FACTS[0][0]}, {"role": "assistant", "content": SFT_FACTS[0][1]}]
    assert tok.chat_template == INSTRUCTION_JA.jinja
    text = tok.apply_chat_template(msgs, tokenize=False)
    assert text == INSTRUCTION_JA.text(msgs, bos=tok.bos_token, eos=tok.eos_token)
    questions, ids = sample_prompts(tok, INSTRUCTION_JA)  # the generation prompts, token for token
    for q, want in zip(questions, ids):
        got = tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True, return_dict=True)
        assert got["input_ids"] == want
    record = json.loads((out / "hf" / "training_data.json").read_text())
    assert record["contaminated_with"] == [] and record["template"] == "instruction-ja"
    report = json.loads((out / "data_report.json").read_text())
    assert report["read"] == 12 and report["used"] == {"train": 10, "eval": 2} and report["dropped"] == {}


def test_only_assistant_tokens_and_eos_are_supervised(post_base, tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(post_base[0]))
    data = write_jsonl(tmp_path / "sft.jsonl", sft_records())
    args = parse_args(sft.Args, sft_cmd(post_base[0], data, tmp_path / "o", "--eval_frac", "0")[1:])
    _, train, _ = sft.encode(args, tok, INSTRUCTION_JA, ONE)
    answers = {a for _, a in SFT_FACTS} | {a + "ございます。" for _, a in SFT_FACTS[:4]}
    for e in train:
        ids = [t for t in e.labels if t != -100]
        assert ids[-1] == tok.eos_token_id and ids.count(tok.eos_token_id) == 1
        assert tok.decode(ids[:-1]) in answers
        start = e.labels.index(ids[0])  # the supervised span is one contiguous block at the end
        assert e.labels[start:] == e.input_ids[start:] and all(t == -100 for t in e.labels[:start])


def test_packing_gives_the_same_step_0_loss_as_padding(post_base, tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(post_base[0]))
    data = write_jsonl(tmp_path / "sft.jsonl", sft_records())
    args = parse_args(sft.Args, sft_cmd(post_base[0], data, tmp_path / "o", "--eval_frac", "0")[1:])
    rows, _ = pack_examples(sft.encode(args, tok, INSTRUCTION_JA, ONE)[1], args.seq_len)
    assert len(rows) < len(sft_records())  # packing did put several examples in a row
    n = str(len(sft_records()))  # one step = every example once (unpacked: 12 rows, packed: all the rows)
    _, packed = run(post_base[0], tmp_path / "p", "--max_steps", "1", "--micro_batch", str(len(rows)),
                    "--export", "false")
    _, padded = run(post_base[0], tmp_path / "u", "--max_steps", "1", "--micro_batch", n, "--packing", "false",
                    "--export", "false")
    # the same supervised tokens, and no token sees another example: identical token-mean loss
    torch.testing.assert_close(packed[0]["ce"], padded[0]["ce"], rtol=0, atol=2e-5)


def test_hf_llama_loss_at_step_0_equals_transformers(post_base, tmp_path):
    from transformers import AutoTokenizer, LlamaForCausalLM

    llama = post_base[1]
    n = str(len(sft_records()))
    _, metrics = run(llama, tmp_path, "--max_steps", "1", "--micro_batch", n, "--packing", "false",
                     "--export", "false")
    tok = AutoTokenizer.from_pretrained(str(llama))
    args = parse_args(sft.Args, sft_cmd(llama, tmp_path / "sft.jsonl", tmp_path / "x", "--eval_frac", "0")[1:])
    _, train, _ = sft.encode(args, tok, INSTRUCTION_JA, ONE)
    batch = collate(train, tok.pad_token_id)
    model = LlamaForCausalLM.from_pretrained(str(llama)).eval()
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    labels = shift_labels(batch["labels"])
    ref = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100)
    torch.testing.assert_close(torch.tensor(metrics[0]["loss"]), ref, rtol=0, atol=1e-5)


def test_bad_records_are_counted_by_reason(post_base, tmp_path):
    bad = [
        {"messages": [{"role": "user", "content": "こんにちは"}]},  # no assistant turn
        {"messages": [{"role": "user", "content": "質問"}, {"role": "assistant", "content": "  "}]},
        {"messages": [{"role": "narrator", "content": "昔々"}, {"role": "assistant", "content": "はい"}]},
        {"instruction": "長い指示。" * 200, "output": "はい。"},  # prompt over seq_len
        {"text": "messages も instruction もない"},
    ]
    path = write_jsonl(tmp_path / "sft.jsonl", sft_records() + bad)
    with path.open("a") as f:
        f.write("{not json\n")
    out = tmp_path / "run"
    sft.main(parse_args(sft.Args, sft_cmd(post_base[0], path, out, "--max_steps", "1", "--export", "false")[1:]))
    report = json.loads((out / "data_report.json").read_text())
    assert report["read"] == 18 and report["used"] == {"train": 12, "eval": 0}
    assert report["dropped"] == {"bad_json": 1, "empty_response": 1, "malformed_record": 1, "no_response": 1,
                                 "prompt_too_long": 1, "unknown_role": 1}


def test_a_template_other_than_the_tokenizers_is_an_error_before_training(post_base, tmp_path):
    data = write_jsonl(tmp_path / "sft.jsonl", sft_records())
    args = parse_args(sft.Args, sft_cmd(post_base[0], data, tmp_path / "o", "--template", "llama2-ja")[1:])
    with pytest.raises(ValueError, match="differs from the chat template"):
        sft.main(args)
    assert not (tmp_path / "o" / "checkpoints").exists()


def test_lora_export_equals_the_peft_merge_and_loads_cleanly(post_base, tmp_path):
    from peft.tuners.lora import LoraLayer
    from transformers import AutoModelForCausalLM

    from jpmoe.hf.convert import load_hf
    from jpmoe.load import load_pretrained
    from jpmoe.train.dcp_checkpoint import load_model_weights
    from jpmoe.train.lora import apply_lora

    llama = post_base[1]
    out, metrics = run(llama, tmp_path, "--max_steps", "4", "--lora", "true", "--lora_r", "4", "--lr", "1e-2")
    assert metrics[-1]["loss"] < metrics[0]["loss"]
    trained = apply_lora(load_pretrained(llama).model.train(), r=4, alpha=32.0)
    (step,) = (out / "checkpoints").glob("step-*")
    load_model_weights(step, trained)
    for m in trained.modules():
        if isinstance(m, LoraLayer):
            m.merge()  # peft's own merge: W + scaling * B @ A
    merged = {k.replace(".base_layer.", "."): v for k, v in trained.state_dict().items() if ".lora_" not in k}
    _, exported = load_hf(out / "hf")
    assert merged.keys() == exported.keys()
    for k in merged:
        torch.testing.assert_close(exported[k], merged[k], rtol=0, atol=1e-6, msg=k)
    base = load_pretrained(llama).model.state_dict()
    assert not torch.equal(exported["layers.0.attn.wq.weight"], base["layers.0.attn.wq.weight"])
    torch.testing.assert_close(exported["tok_embeddings.weight"], base["tok_embeddings.weight"], rtol=0, atol=0)
    _, info = AutoModelForCausalLM.from_pretrained(str(out / "hf"), output_loading_info=True)
    assert all(not v for v in info.values()), info


@pytest.mark.parametrize(("config", "app"), [("sft_demo.toml", "sft"), ("dpo_demo.toml", "dpo")])
def test_demo_configs_parse_and_fit_the_debug_model(config, app):
    from app_helpers import ROOT

    from jpmoe.config import ModelConfig

    args = parse_args(load_app(app).Args, ["--config", str(ROOT / "apps/configs" / config)])
    assert args.seq_len <= ModelConfig.preset("debug").max_seq_len and args.max_steps > 0


def test_a_non_finite_loss_skips_the_update_and_is_counted(tmp_path, capsys):
    from jpmoe.config import ModelConfig
    from jpmoe.model import Transformer
    from jpmoe.train.posttrain import Loop, PostTrainArgs, run_loop

    torch.manual_seed(0)
    model = Transformer(ModelConfig.preset("debug-dense"))
    ids = torch.randint(0, 500, (2, 16))
    calls = []

    def loss_fn(batch):
        calls.append(1)
        out = model(ids, return_hidden=True)
        loss = out.hidden.float().pow(2).mean()
        return (loss * float("nan") if len(calls) == 2 else loss), {}

    snapshots = []

    def evaluate():
        snapshots.append(model.layers[0].attn.wq.weight.detach().clone())
        return {}

    args = PostTrainArgs(base="x", data="x", out_dir=str(tmp_path), max_steps=3, eval_every=1, lr=1e-2,
                         tensorboard=False, micro_batch=1)
    loop = Loop(args, ONE, model, 4, lambda g, mine: ([None] * len(mine), 32), loss_fn, evaluate, lambda: [], {})
    state = run_loop(loop)
    m = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["skipped"] for r in m] == [0.0, 1.0, 0.0] and m[-1]["skipped_steps"] == 1
    assert state.extra["skipped"] == 1 and "update skipped" in capsys.readouterr().err
    assert torch.equal(snapshots[0], snapshots[1]) and not torch.equal(snapshots[1], snapshots[2])


@pytest.mark.parametrize("preset", ["debug-dense", "debug"])
def test_packed_forward_equals_each_example_alone(preset):
    from jpmoe.config import ModelConfig
    from jpmoe.model import Transformer

    torch.manual_seed(0)
    model = Transformer(ModelConfig.preset(preset)).eval()
    a, b = torch.randint(0, 500, (1, 7)), torch.randint(0, 500, (1, 5))
    ids = torch.cat([a, b, torch.zeros(1, 3, dtype=torch.long)], 1)  # two examples and 3 padding tokens
    pos = torch.cat([torch.arange(7), torch.arange(5), torch.zeros(3, dtype=torch.long)])[None]
    seg = torch.tensor([[0] * 7 + [1] * 5 + [-1] * 3])
    with torch.no_grad():
        packed = model(ids, position_ids=pos, segment_ids=seg, return_hidden=True).hidden
        alone = [model(x, return_hidden=True).hidden for x in (a, b)]
    torch.testing.assert_close(packed[:, :7], alone[0], rtol=0, atol=1e-5)
    torch.testing.assert_close(packed[:, 7:12], alone[1], rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="segment_ids must be"):
        model(ids, segment_ids=seg, attention_mask=torch.ones_like(ids))


def test_training_on_an_evaluation_set_marks_the_export_contaminated(post_base, tmp_path, capsys):
    data = write_jsonl((tmp_path / "data" / "jglue").mkdir(parents=True) or tmp_path / "data/jglue/x.jsonl",
                       sft_records())
    out = tmp_path / "run"
    sft.main(parse_args(sft.Args, sft_cmd(post_base[0], data, out, "--max_steps", "1")[1:]))
    record = json.loads((out / "hf" / "training_data.json").read_text())
    assert record["files"] == [str(data)] and record["contaminated_with"] == [str(data)]
    assert "marked contaminated" in capsys.readouterr().err
