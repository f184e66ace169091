"""jpalign.debate: crafted match files (good, empty sides, broken JSON, wrong types) to exact records."""

from __future__ import annotations

import json

import pytest

from jpalign.debate import SPEECH_KEYS, convert, parse_match

# ruff: noqa: E501  (the expected Japanese records are kept one per line)

EMPTY = dict.fromkeys(SPEECH_KEYS, "")
GOOD = {**EMPTY, "議題": "犬は猫より良い。", "肯定側第一立論": "犬は散歩で人を健康にします。", "肯定側第一反駁": "  猫は散歩をしません。\n",
        "否定側第一立論": "猫は世話に手がかかりません。", "審判": "山田"}
AFF, NEG, REB = "犬は散歩で人を健康にします。", "猫は世話に手がかかりません。", "猫は散歩をしません。"


def user(q: str, a: str) -> list[dict]:
    return [{"role": "user", "content": q}, {"role": "assistant", "content": a}]


def meta(kind, side, speech, template):
    return {"source": "debate", "match": "good.json", "kind": kind, "side": side, "speech": speech,
            "template": template, "extra": {"審判": "山田"}}


EXPECTED_ALL = [
    {"messages": user("「犬は猫より良い」という主張を、根拠を挙げてより説得力のあるものにしてください。", AFF),
     "meta": meta("single", "affirmative", "肯定側第一立論", "strengthen")},
    {"messages": user("あなたは「犬は猫より良い」という主張に賛成の立場です。その立場からスピーチをしてください。", AFF),
     "meta": meta("single", "affirmative", "肯定側第一立論", "speech")},
    {"messages": user("「犬は猫より良い」という議題について肯定側の立場に立ち、そのメリットを詳しく説明してください。", AFF),
     "meta": meta("single", "affirmative", "肯定側第一立論", "merits")},
    {"messages": user(f"議題「犬は猫より良い」のディベートで、あなたは肯定側です。否定側の次の立論に反駁してください。\n\n否定側の立論：\n{NEG}",
                      REB), "meta": meta("single", "affirmative", "肯定側第一反駁", "rebut")},
    {"messages": user("あなたは「犬は猫より良い」という議題で肯定側に立っています。相手の次の主張の弱点を指摘し、肯定側の立場を守ってください。"
                      f"\n\n相手の主張：\n{NEG}", REB), "meta": meta("single", "affirmative", "肯定側第一反駁", "weakness")},
    {"messages": user("「犬は猫より良い」という主張に対して、根拠を挙げて反対の議論を組み立ててください。", NEG),
     "meta": meta("single", "negative", "否定側第一立論", "strengthen")},
    {"messages": user("あなたは「犬は猫より良い」という主張に反対の立場です。その立場からスピーチをしてください。", NEG),
     "meta": meta("single", "negative", "否定側第一立論", "speech")},
    {"messages": user("「犬は猫より良い」という議題について否定側の立場に立ち、そのデメリットを詳しく説明してください。", NEG),
     "meta": meta("single", "negative", "否定側第一立論", "merits")},
]


@pytest.fixture
def files(tmp_path):
    (tmp_path / "good.json").write_text(json.dumps(GOOD, ensure_ascii=False), encoding="utf-8")
    one_side = {**EMPTY, "議題": "朝食は和食にすべきだ", "否定側第一立論": "パンの方が手軽です。", "否定側第一反駁": "ご飯は炊く手間があります。"}
    (tmp_path / "empty_sides.json").write_text(json.dumps([{**EMPTY, "議題": "空の試合"}, one_side], ensure_ascii=False),
                                               encoding="utf-8")
    (tmp_path / "broken.json").write_text('{"議題": "壊れた", "肯定側第一立論": ', encoding="utf-8")
    lines = [json.dumps({**GOOD, "肯定側第二立論": 3}, ensure_ascii=False),
             json.dumps({"議題": "鍵が足りない", "肯定側第一立論": "はい。"}, ensure_ascii=False),
             '["配列"]', json.dumps({**GOOD, "議題": "  "}, ensure_ascii=False), "{broken", "",
             json.dumps({**GOOD, "否定側第二反駁": None}, ensure_ascii=False)]
    (tmp_path / "wrong_types.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a match file", encoding="utf-8")
    return tmp_path


def test_good_match_all_templates_exact(files):
    out = convert([files / "good.json"], templates="all", multi=False, pairs=False)
    assert out.sft == EXPECTED_ALL
    assert out.stats["records_read"] == 1 and out.stats["dropped"] == {} and out.stats["empty_speeches"] == 5


def test_multi_turn_and_pairs_exact(files):
    out = convert([files / "good.json"], seed=0)
    multi = [r for r in out.sft if r["meta"]["kind"] == "multi"]
    (conv,) = multi  # the negative side has no rebuttal: no conversation for it
    assert conv["messages"][1:] == [
        {"role": "assistant", "content": AFF},
        {"role": "user", "content": f"では、否定側から次の立論がありました。肯定側として、これに反駁してください。\n\n{NEG}"},
        {"role": "assistant", "content": REB}]
    assert conv["messages"][0]["content"] in [r["messages"][0]["content"] for r in EXPECTED_ALL[:3]]
    assert [(p["chosen"], p["rejected"], p["meta"]["speech"]) for p in out.dpo] == [
        (AFF, NEG, "肯定側第一立論"), (NEG, AFF, "否定側第一立論")]  # 反駁: only one side spoke, no pair
    by_q = {r["messages"][0]["content"]: r["meta"]["template"] for r in EXPECTED_ALL}
    for p in out.dpo:
        assert by_q[p["prompt"]] == p["meta"]["template"]  # the pair's question is the side's own question


def test_one_template_per_speech_is_deterministic_from_the_seed(files):
    picks = {}
    for seed in range(8):
        a = convert([files / "good.json"], seed=seed, multi=False).sft
        assert a == convert([files / "good.json"], seed=seed, multi=False).sft
        assert len(a) == 3 and all(r in EXPECTED_ALL for r in a)
        picks[seed] = tuple(r["meta"]["template"] for r in a)
    assert len(set(picks.values())) > 1  # the seed changes the choice


def test_drops_are_counted_by_reason(files):
    out = convert([files])  # a directory: *.json and *.jsonl, sorted; notes.txt ignored
    assert out.stats["records_read"] == 1 + 2 + 1 + 6
    assert out.stats["records_valid"] == 2
    assert out.stats["dropped"] == {"both_sides_empty": 1, "broken_json": 2, "empty_motion": 1, "missing_keys": 1,
                                    "non_string_value": 2, "not_an_object": 1}
    errors = out.stats["errors"]
    assert errors[0] == "broken_json: broken.json: Expecting value: line 1 column 26 (char 25)"
    assert errors[1] == "both_sides_empty: empty_sides.json#0: every speech is empty"
    assert errors[2] == "non_string_value: wrong_types.jsonl:1: 肯定側第二立論=3 not strings"
    assert errors[3].startswith("missing_keys: wrong_types.jsonl:2: missing 肯定側第二立論, 肯定側第一反駁")
    # the one-sided match gives single-turn records and a conversation, but no pairs
    one_sided = [r for r in out.sft if r["meta"]["match"] == "empty_sides.json#1"]
    assert [(r["meta"]["kind"], r["meta"]["speech"]) for r in one_sided] == [
        ("single", "否定側第一立論"), ("single", "否定側第一反駁"), ("multi", "否定側第一反駁")]
    rebuttal = one_sided[1]["messages"][0]["content"]
    assert rebuttal == "「朝食は和食にすべきだ」という議題について、否定側として反駁のスピーチをしてください。肯定側から予想される主張に反論してください。"
    assert one_sided[2]["messages"][2]["content"] == "では、肯定側から予想される反論を踏まえて、否定側として反駁してください。"
    assert {p["meta"]["match"] for p in out.dpo} == {"good.json"}


def test_parse_match_keeps_extra_keys_and_strips_speeches():
    m = parse_match(GOOD, "x")
    assert m.extra == {"審判": "山田"} and m.speeches["肯定側第一反駁"] == REB and m.motion == "犬は猫より良い。"


def test_bundled_example_debates_are_all_valid(data_dir):
    out = convert([data_dir / "debate"], templates="all")
    assert out.stats["dropped"] == {} and out.stats["records_valid"] == out.stats["records_read"] >= 5
    assert out.stats["empty_speeches"] > 0 and len(out.dpo) >= 10


def test_any_json_object_is_converted_or_dropped_with_a_reason():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from jpalign.debate import DROP_REASONS, DebateError

    values = st.one_of(st.text(max_size=20), st.integers(), st.none(), st.lists(st.text(max_size=5), max_size=2))
    keys = st.sampled_from(["議題", *SPEECH_KEYS, "審判"])

    @settings(max_examples=200, deadline=None)
    @given(st.one_of(st.dictionaries(keys, values), st.just({**EMPTY, "議題": "題"}), st.lists(st.integers())))
    def check(obj):
        try:
            parse_match(obj, "x")
        except DebateError as e:
            assert e.reason in DROP_REASONS

    check()
