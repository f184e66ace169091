"""Rebuild the shipped default model: `python -m jpcurate.lm.build_default --shared ../shared/data`.

Training text (`TRAINING_SOURCES`, nothing else): Aozora Bunko works (public domain, aozorahack/aozorabunko_text
@ 0984f7d as copied into the shared data snapshot) by every author EXCEPT `HELD_OUT_AUTHORS`, cut into
~2,000-character excerpts, and the sentences of the UD Japanese GSD **dev** split (CC BY-SA 4.0) grouped into
~400-character documents. Never trained on: JGLUE (JSQuAD paragraphs are an evaluation set), the UD GSD test
split, web_ja / web_en (Common Crawl, test use only), ELYZA-tasks, MT-Bench, and any work of a held-out author (the
quality set in benchmarks/quality_set draws its literature from those authors only; held out by author, not by
work, because the corpus holds the same poems under several titles). Pre-war orthography (旧仮名遣い, 旧字体) is a
large share of the remaining Aozora text, so the one model covers both registers. Every 10th document is held out
for the reference percentiles. `tests/curate/test_quality_contamination.py` checks the list.
"""

from __future__ import annotations

import argparse
import json
from importlib import resources
from pathlib import Path

from jpcurate.lm.train import calibrate, train
from jpcurate.steps.normalize import normalize_text

# (file under the shared data directory, what is taken from it)
TRAINING_SOURCES = (
    ("aozora_corpus/aozora_pd_corpus.jsonl", "Aozora works, held-out authors excluded"),
    ("aozora_more/works.jsonl", "Aozora works, held-out authors excluded"),
    ("aozora/works.jsonl", "Aozora works, held-out authors excluded"),
    ("ud_japanese_gsd/sentences.jsonl", "dev split only"),
)
GSD_SPLIT = "dev"
# Authors whose every work is held out (the quality set's literature comes from these only).
HELD_OUT_AUTHORS = (
    "与謝野晶子", "北原白秋", "中原中也", "萩原朔太郎", "宮沢賢治", "宮澤賢治", "高村光太郎", "樋口一葉", "森鴎外",
    "森鷗外", "幸田露伴", "正岡子規", "三木清", "堀辰雄", "梶井基次郎", "芥川龍之介", "芥川竜之介", "夏目漱石",
    "太宰治", "坂口安吾", "新美南吉", "寺田寅彦", "宮本百合子", "海野十三", "南方熊楠", "折口信夫", "柳田国男",
    "津田左右吉", "国木田独歩", "佐々木味津三",
)


def wikipedia_documents(path: Path, min_chars: int = 400) -> list[str]:
    """JSQuAD paragraphs, in file order, joined into documents of at least `min_chars` characters: a document
    closes as soon as it is long enough (articles are consecutive in the file); a short remainder at the end joins
    the last document."""
    docs, cur = [], []
    for line in path.open(encoding="utf-8"):
        rec = json.loads(line)
        if cur and sum(map(len, cur)) >= min_chars:
            docs.append("\n".join(cur))
            cur = []
        cur.append(rec["text"])
    if cur:
        if docs and sum(map(len, cur)) < min_chars:
            docs[-1] += "\n" + "\n".join(cur)
        else:
            docs.append("\n".join(cur))
    return docs


def aozora_excerpts(path: Path, size: int = 2000) -> list[str]:
    """Each work cut at line breaks into excerpts of about `size` characters."""
    out = []
    for line in path.open(encoding="utf-8"):
        text = json.loads(line)["text"]
        cur, n = [], 0
        for para in text.split("\n"):
            cur.append(para)
            n += len(para)
            if n >= size:
                out.append("\n".join(cur))
                cur, n = [], 0
        if n >= size // 4:
            out.append("\n".join(cur))
    return out


def chunk_lines(text: str, size: int) -> list[str]:
    """`text` cut at line breaks into pieces of about `size` characters (a short tail joins if >= size/4)."""
    out, cur, n = [], [], 0
    for para in text.split("\n"):
        cur.append(para)
        n += len(para)
        if n >= size:
            out.append("\n".join(cur))
            cur, n = [], 0
    if n >= size // 4:
        out.append("\n".join(cur))
    return out


def training_texts(shared: Path) -> tuple[list[str], dict]:
    """The normalised training documents and what they came from (works and authors used, held-out counts)."""
    texts, seen, authors, skipped = [], set(), set(), 0
    for name, _ in TRAINING_SOURCES:
        path = shared / name
        if name.startswith("ud_japanese_gsd"):
            sents = [r["text"] for r in map(json.loads, path.open(encoding="utf-8")) if r["split"] == GSD_SPLIT]
            texts += chunk_lines("\n".join(sents), 400)
            continue
        for rec in map(json.loads, path.open(encoding="utf-8")):
            key = (rec["author"], rec["title"])
            if rec["author"] in HELD_OUT_AUTHORS:
                skipped += 1
                continue
            if key in seen:  # the same work in several files
                continue
            seen.add(key)
            authors.add(rec["author"])
            texts += chunk_lines(rec["text"], 2000)
    info = {"aozora_works": len(seen), "aozora_authors": len(authors), "held_out_records": skipped}
    return [t for t in map(normalize_text, texts) if t], info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default="../shared/data", help="the shared data snapshot (see its README)")
    ap.add_argument("--output", default=str(resources.files("jpcurate").joinpath("data/charlm_ja.npz")))
    ap.add_argument("--order", type=int, default=5)
    ap.add_argument("--prune-from", type=int, default=3)
    ap.add_argument("--prune-below", type=int, default=4)
    ap.add_argument("--max-vocab", type=int, default=6000)
    args = ap.parse_args(argv)
    texts, info = training_texts(Path(args.shared))
    held = [t for i, t in enumerate(texts) if i % 10 == 0]
    tr = [t for i, t in enumerate(texts) if i % 10 != 0]
    model = train(tr, order=args.order, prune_from=args.prune_from, prune_below=args.prune_below,
                  max_vocab=args.max_vocab,
                  meta={"sources": [f"{f} ({what})" for f, what in TRAINING_SOURCES],
                        "held_out_authors": list(HELD_OUT_AUTHORS), "heldout": "every 10th document", **info})
    calibrate(model, held)
    model.save(args.output)
    print(model.summary())
    print(f"wrote {args.output}: {Path(args.output).stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
