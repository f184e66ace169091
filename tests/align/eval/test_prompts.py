"""llm-jp-eval prompts byte for byte, its answer post-processing, task loading from the bundled JGLUE files."""

from pathlib import Path

import pytest

from jpalign.eval.llmjp import TASKS, Example, build_prompt, load_task, postprocess

DATA = Path(__file__).resolve().parents[3] / "data" / "jglue"

# llm-jp-eval v1.x get_evaluation_prompt, written out by hand for one shot
EXPECTED = (
    "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。\n\n"
    "### 指示:\n質問に答えてください。\n\n"
    "### 入力:\n質問：日本の首都は？\n\n### 応答:\n東京\n\n"
    "### 入力:\n質問：富士山がある県は？\n\n### 応答:\n"
)


def test_prompt_matches_the_documented_template_byte_for_byte():
    shot = Example("s", "質問：日本の首都は？", "東京")
    got = build_prompt("質問に答えてください。", [shot], "質問：富士山がある県は？")
    assert got.encode("utf-8") == EXPECTED.encode("utf-8")


def test_zero_shot_prompt():
    got = build_prompt("指示", [], "入力")
    assert got.endswith("### 指示:\n指示\n\n### 入力:\n入力\n\n### 応答:\n") and got.count("### 入力:") == 1


def test_postprocess_keeps_text_before_first_blank_line_nfkc():
    assert postprocess("ｅｎｔａｉｌｍｅｎｔ\n\n### 入力:\n...") == "entailment"
    assert postprocess("東京\n大阪\n\n次") == "東京\n大阪"  # a single newline is kept (not the first line)
    assert postprocess("  ２  ") == "2"


def test_task_settings():
    assert TASKS["jsquad"].output_length == 25 and TASKS["jsquad"].metric == "char_f1"
    assert TASKS["jcommonsenseqa"].output_length == 1 and TASKS["jcommonsenseqa"].metric == "exact_match"
    assert TASKS["jnli"].metric == "exact_match" and TASKS["jsts"].metric == "correlation"


@pytest.mark.parametrize("name", sorted(TASKS))
def test_bundled_tasks_load_with_shots_held_out(name):
    shots, samples = load_task(name, DATA, num_few_shots=4)
    assert len(shots) == 4 and samples
    assert not {s.id for s in shots} & {s.id for s in samples}
    if name == "jsquad":  # one shot per paragraph, and no scored question on a shot's paragraph
        assert len({s.context for s in shots}) == 4
        assert not {s.context for s in shots} & {s.context for s in samples}
        assert all(a in s.context for s in samples[:50] for a in s.answers[:1])
    if name == "jcommonsenseqa":
        e = samples[0]
        assert e.input.startswith("質問：") and "\n選択肢：0." in e.input and e.output == str(e.label)
        assert len(e.choices) == 5


def test_load_task_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown llm-jp task"):
        load_task("jcola", DATA)
    with pytest.raises(FileNotFoundError, match="jnli"):
        load_task("jnli", tmp_path)
    shots, samples = load_task("jnli", DATA, num_few_shots=0, limit=3)
    assert shots == [] and len(samples) == 3
