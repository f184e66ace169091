"""Build the `ja-web` quality evaluation set: real natural Japanese of every kind next to generated web junk.

    .venv/bin/python benchmarks/build_quality_set.py [--shared ../shared/data]

Writes `benchmarks/quality_set/natural.jsonl` (excerpts of real text, each labelled with its kind, source and
licence), `junk.jsonl` (`benchmarks/quality_junk.py`, seeded) and `eval_works.txt` (every Aozora Bunko work the set
draws from, or holds out, as `author<TAB>title`). The naturalness model (`jpcurate.lm.build_default`) is trained on
Aozora works by authors NOT in `EVAL_AUTHORS` and on the UD GSD dev split only, so that no evaluation document,
nor any other work of an evaluation author, was seen in training (split by author, stronger than by work: the
corpus holds the same poems under several titles, e.g. 青猫 / 定本青猫).

Natural kinds (what the issue asks `ja-web` to keep):
  modern_prose      Aozora works in modern kana (fiction, essays)
  wikipedia         JSQuAD Wikipedia paragraphs grouped by article (JGLUE, CC BY-SA 4.0)
  web_prose         FineWeb-2 Japanese pages (test-only text, never trained on)
  news_sentences    UD Japanese GSD test sentences grouped into ~400-character documents
  verse_tanka       tanka collections (みだれ髪, 黒檜)
  verse_poem        modern poems (中原中也, 萩原朔太郎, 宮沢賢治, 高村光太郎, 北原白秋)
  verse_lyrics      song-like verse: school songs, marching songs, children's songs, and lyrics written for this set
  old_orthography   pre-war prose in historical kana / old kanji (旧仮名遣い, 旧字体)
  sorobun_kanbun    候文 letters and kanbun-style prose
  historical_ng     period essays and fiction whose vocabulary is on an NG list today (支那人, 非人, 白痴)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "quality_set"
AOZORA_FILES = ("aozora_corpus/aozora_pd_corpus.jsonl", "aozora_more/works.jsonl", "aozora/works.jsonl")
sys.path.insert(0, str(ROOT / "src"))
from jpcurate.lm.build_default import HELD_OUT_AUTHORS as EVAL_AUTHORS  # noqa: E402 - one list for both sides

# (author, title) -> kind for the works whose kind is not modern prose; titles are matched exactly.
KINDS = {
    ("与謝野晶子", "みだれ髪"): "verse_tanka",
    ("北原白秋", "黒檜"): "verse_tanka",
    ("北原白秋", "東京景物詩及其他"): "verse_poem",
    ("北原白秋", "新頌"): "verse_poem",
    ("北原白秋", "愛の詩集"): "old_orthography",
    ("中原中也", "山羊の歌"): "verse_poem",
    ("萩原朔太郎", "青猫"): "verse_poem",
    ("高村光太郎", "智恵子抄"): "verse_poem",
    ("宮澤賢治", "〔雨ニモマケズ〕"): "verse_poem",
    ("宮澤賢治", "凾館港春夜光景"): "verse_poem",
    ("宮澤賢治", "農民芸術の興隆"): "old_orthography",  # lecture notes in short lines, not verse
    ("宮澤賢治", "花巻農学校精神歌"): "verse_lyrics",
    ("宮澤賢治", "月夜のでんしんばしらの軍歌"): "verse_lyrics",
    ("樋口一葉", "たけくらべ"): "old_orthography",
    ("樋口一葉", "大つごもり"): "old_orthography",
    ("樋口一葉", "われから"): "old_orthography",
    ("森鴎外", "舞姫"): "old_orthography",
    ("三木清", "哲學はどう學んでゆくか"): "old_orthography",
    ("堀辰雄", "黒髮山"): "old_orthography",
    ("堀辰雄", "おもかげ"): "old_orthography",
    ("梶井基次郎", "矛盾の樣な眞實"): "old_orthography",
    ("夏目漱石", "變な音"): "old_orthography",
    ("折口信夫", "國文學の發生（第一稿）"): "old_orthography",
    ("萩原朔太郎", "芥川龍之介の追憶"): "old_orthography",
    ("正岡子規", "歌よみに與ふる書"): "sorobun_kanbun",
    ("芥川龍之介", "伊東から"): "sorobun_kanbun",
    ("幸田露伴", "墨子"): "sorobun_kanbun",
    ("幸田露伴", "道教に就いて"): "sorobun_kanbun",
    ("南方熊楠", "棄老傳説に就て"): "sorobun_kanbun",
    ("夏目漱石", "永日小品"): "historical_ng",
    ("萩原朔太郎", "日清戦争異聞（原田重吉の夢）"): "historical_ng",
    ("宮沢賢治", "山男の四月"): "historical_ng",
    ("津田左右吉", "建国の事情と万世一系の思想"): "historical_ng",
    ("津田左右吉", "東洋文化、東洋思想、東洋史"): "historical_ng",
    ("津田左右吉", "日本に於ける支那学の使命"): "historical_ng",
    ("国木田独歩", "春の鳥"): "historical_ng",
    ("佐々木味津三", "旗本退屈男　第二話"): "historical_ng",
}
# historical_ng excerpts are the pieces of those works that use a period word now on the discrimination list
PERIOD_WORDS = ("支那人", "シナ人", "非人", "白痴")
MODERN_PROSE_AUTHORS = ("太宰治", "坂口安吾", "新美南吉", "寺田寅彦", "宮本百合子", "海野十三", "夏目漱石",
                        "芥川龍之介", "宮沢賢治", "柳田国男")
VERSE = ("verse_tanka", "verse_poem", "verse_lyrics")
PER_WORK = {"verse_tanka": 20, "verse_poem": 4, "verse_lyrics": 2, "old_orthography": 3, "sorobun_kanbun": 4,
            "modern_prose": 2, "historical_ng": 3}
OLD_KANA = re.compile(r"[ゐゑヰヱ]|てゐ|ませう|でせう|さう|やう|いふ")
LICENSES = {"aozora": "public domain (Aozora Bunko)", "jglue": "CC BY-SA 4.0 (JGLUE)",
            "ud": "CC BY-SA 4.0 (UD Japanese GSD)", "web_ja": "ODC-By 1.0 + Common Crawl ToU (test use only)",
            "crafted": "CC0 (written for this set)"}


def shared_data() -> Path:
    """The shared data snapshot next to the checkout: ../shared/data from the repository root (or one level up
    for a worktree under wt/)."""
    for up in (ROOT.parent, ROOT.parents[1]):
        if (up / "shared" / "data").is_dir():
            return up / "shared" / "data"
    return ROOT.parent / "shared" / "data"


def stable(key: str) -> int:
    return int(hashlib.md5(key.encode("utf-8")).hexdigest()[:8], 16)


def chunks(text: str, lo: int, hi: int, *, sep: str) -> list[str]:
    """Consecutive pieces of `text` split at `sep` (a blank line for verse, a line break for prose), each of
    `lo`..`hi` characters (a single longer piece is cut after its last 。 before `hi`)."""
    out, cur = [], ""
    for part in text.split(sep):
        if not part.strip():
            continue
        if cur and len(cur) + len(part) > hi:
            if len(cur) >= lo:
                out.append(cur.strip("\n"))
            cur = ""
        cur = f"{cur}{sep}{part}" if cur else part
        if len(cur) >= hi:  # one paragraph longer than hi: cut after its last sentence end before hi
            cut = cur.rfind("。", 0, hi) + 1 or hi
            out.append(cur[:cut].strip("\n"))
            cur = ""
    if len(cur) >= lo:
        out.append(cur.strip("\n"))
    return out


def pick(pieces: list[str], n: int, key: str) -> list[str]:
    """n pieces spread over the work (deterministic; the first piece is skipped when there are more: it often
    holds the preface or a table of contents)."""
    if len(pieces) > n:
        pieces = pieces[1:]
    if len(pieces) <= n:
        return pieces
    off = stable(key) % (len(pieces) // n)
    return [pieces[off + i * (len(pieces) // n)] for i in range(n)]


def aozora_works(shared: Path) -> list[dict]:
    seen, works = set(), []
    for f in AOZORA_FILES:
        for line in open(shared / f, encoding="utf-8"):
            r = json.loads(line)
            key = (r["author"], r["title"])
            if key not in seen:  # the same work appears in several files (ruby / non-ruby copies)
                seen.add(key)
                works.append(r | {"file": f})
    return works


def auto_kind(w: dict) -> str | None:
    """The kind of an evaluation author's work not listed in KINDS, from its shape: verse when most lines are
    short and end without a sentence terminator, 候文 when 候 is frequent, old orthography when historical kana is."""
    text = w["text"]
    if w["author"] not in EVAL_AUTHORS or len(text) < 150 or any(k == "historical_ng" and a == w["author"]
                                                                 and t == w["title"] for (a, t), k in KINDS.items()):
        return None
    lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
    open_end = sum(not ln.endswith(("。", "」", "』", "！", "？", "…", "）")) for ln in lines) / len(lines)
    if open_end > 0.75 and sorted(map(len, lines))[len(lines) // 2] <= 25 and len(lines) >= 8:
        return "verse_poem"
    if text.count("候") / len(text) > 0.004:
        return "sorobun_kanbun"
    if len(OLD_KANA.findall(text)) / len(text) > 0.012 and open_end < 0.5:
        return "old_orthography"
    return None


def aozora_docs(works: list[dict]) -> list[dict]:
    docs = []
    for w in works:
        key = (w["author"], w["title"])
        kind = KINDS.get(key) or auto_kind(w)
        if kind is None and w["author"] in MODERN_PROSE_AUTHORS and len(w["text"]) >= 1500:
            if len(OLD_KANA.findall(w["text"])) / len(w["text"]) > 0.002 or stable("|".join(key)) % 2:
                continue  # modern prose in modern kana only; half of those works, to keep the set small
            kind = "modern_prose"
        if kind is None:
            continue
        verse = kind in VERSE
        pieces = chunks(w["text"], 120 if verse else 600, 1200 if verse else 3000, sep="\n\n" if verse else "\n")
        if kind == "historical_ng":
            pieces = [p for p in pieces if any(p.count(word) >= 3 for word in PERIOD_WORDS)]
        for t in pick(pieces, PER_WORK[kind], "|".join(key)):
            docs.append({"kind": kind, "text": t, "source": f"{w['file']}:{w['id']} {w['author']}「{w['title']}」",
                         "license": LICENSES["aozora"]})
    return docs


def wikipedia_docs(shared: Path, n: int = 200) -> list[dict]:
    sys.path.insert(0, str(ROOT / "src"))
    from jpcurate.lm.build_default import wikipedia_documents

    docs = wikipedia_documents(shared / "jglue" / "jsquad_paragraphs.jsonl")
    step = max(1, len(docs) // n)
    return [{"kind": "wikipedia", "text": t, "source": "jglue/jsquad_paragraphs.jsonl", "license": LICENSES["jglue"]}
            for t in docs[::step][:n]]


def gsd_docs(shared: Path) -> list[dict]:
    sents = [json.loads(line) for line in open(shared / "ud_japanese_gsd" / "sentences.jsonl", encoding="utf-8")]
    texts = [s["text"] for s in sents if s["split"] == "test"]  # the dev split may be trained on
    out = [{"kind": "news_sentences", "text": t, "source": "ud_japanese_gsd/sentences.jsonl (test split)",
            "license": LICENSES["ud"]} for t in chunks("\n".join(texts), 400, 900, sep="\n")]
    return out


def web_docs(shared: Path) -> list[dict]:
    return [{"kind": "web_prose", "text": json.loads(line)["text"], "source": "web_ja/fineweb2_edu_ja_sample.jsonl",
             "license": LICENSES["web_ja"]}
            for line in open(shared / "web_ja" / "fineweb2_edu_ja_sample.jsonl", encoding="utf-8")]


def crafted_docs() -> list[dict]:
    from quality_crafted import LYRICS

    return [{"kind": "verse_lyrics", "text": t, "source": "benchmarks/quality_crafted.py",
             "license": LICENSES["crafted"]} for t in LYRICS]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(shared_data()), help="the shared data snapshot (../shared/data)")
    ap.add_argument("--junk-seed", type=int, default=0)
    args = ap.parse_args(argv)
    shared = Path(args.shared)
    sys.path.insert(0, str(Path(__file__).parent))
    from quality_junk import generate

    works = aozora_works(shared)
    natural = aozora_docs(works) + wikipedia_docs(shared) + gsd_docs(shared) + web_docs(shared) + crafted_docs()
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "natural.jsonl", "w", encoding="utf-8") as f:
        for i, d in enumerate(natural):
            f.write(json.dumps({"id": f"n{i:04d}", "group": "natural", **d}, ensure_ascii=False) + "\n")
    junk = generate(seed=args.junk_seed)
    with open(OUT / "junk.jsonl", "w", encoding="utf-8") as f:
        for i, d in enumerate(junk):
            f.write(json.dumps({"id": f"j{i:04d}", "group": "junk", **d}, ensure_ascii=False) + "\n")
    held = sorted({(w["author"], w["title"]) for w in works if w["author"] in EVAL_AUTHORS})
    (OUT / "eval_works.txt").write_text("".join(f"{a}\t{t}\n" for a, t in held), encoding="utf-8")
    from collections import Counter

    print(Counter(d["kind"] for d in natural), Counter(d["kind"] for d in junk), f"{len(held)} held-out works")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
