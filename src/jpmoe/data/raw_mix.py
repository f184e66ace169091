"""The demo's "raw web text": clean public-domain text mixed with the junk a web crawl brings, plus held-out text.

    python -m jpmoe.data.raw_mix --out_dir runs/demo/raw [--junk_share 0.35] [--seed 0]

Clean text, two sources: "classics" (the 20 Aozora Bunko works of `data/aozora`) and "general" (the works of
`data/aozora_more` and the UD Japanese GSD dev sentences, eight to a document); works are cut into ~1,500-character
documents at paragraph ends. Junk (generated, seeded): navigation
menus, repeated ad lines, keyword spam, English pages, price tables, katakana runs, fragments, mojibake, code, link
lists, boilerplate footers around clean text, and exact or near copies of clean documents, so that every ja-web
filter reason and the deduplicator have something to find. No evaluation set and no crawled page (data/web_*) is
read. Writes `<out_dir>/{classics,general}.jsonl` (the two raw sources, junk shuffled in), `heldout.jsonl` (held-out
Aozora works and the UD test split: never in either source) and `summary.json` (documents per kind).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from pathlib import Path

DATA = Path(__file__).resolve().parents[3] / "data"
SOURCES = {"aozora": DATA / "aozora/works.jsonl", "aozora_more": DATA / "aozora_more/works.jsonl",
           "ud": DATA / "ud_japanese_gsd/sentences.jsonl"}
DOC_CHARS = 1500
MENU = ["ホーム", "ログイン", "会員登録", "お問い合わせ", "サイトマップ", "よくある質問", "新着情報", "ランキング",
        "カート", "マイページ", "プライバシーポリシー", "利用規約", "会社概要", "採用情報", "English"]
ADS = ["激安セール開催中！今すぐクリック！", "送料無料でお届けします！", "期間限定の特別価格！お見逃しなく！",
       "今なら会員登録でポイント十倍！"]
SPAM = ["出会い", "副業", "稼げる", "無料", "激安", "最安値", "ポイント", "キャンペーン", "限定", "今すぐ"]
ENGLISH = ["Click here to subscribe to our newsletter and get the latest deals.",
           "All rights reserved. Terms of service and privacy policy apply to this website.",
           "Sign in to continue. Forgot your password? Create an account in seconds."]
KATAKANA = "アイウエオカキクケコサシスセソタチツテトナニヌネノマミムメモラリルレロン"
FOOTER = "\nCopyright © 2024 Example Inc. All rights reserved.\nこのページの先頭へ戻る"


def is_held_out(doc_id: str) -> bool:
    """One aozora_more work in eight (a fixed hash of its id) is never trained on: the ablation's held-out text."""
    return hashlib.sha256(doc_id.encode()).digest()[0] % 8 == 0


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def chunk(text: str, size: int = DOC_CHARS) -> list[str]:
    """Cut at paragraph ends into pieces of about `size` characters (a work is a book; a web page is shorter)."""
    pieces, cur = [], ""
    for para in text.split("\n"):
        cur = f"{cur}\n{para}" if cur else para
        if len(cur) >= size:
            pieces.append(cur.strip())
            cur = ""
    if len(cur.strip()) >= 200:
        pieces.append(cur.strip())
    return [p for p in pieces if p]


def clean_documents() -> tuple[dict[str, list[str]], list[str]]:
    """({source: clean documents}, held-out documents)."""
    classics = [doc for work in read_jsonl(SOURCES["aozora"]) for doc in chunk(work["text"])]
    general, heldout = [], []
    for work in read_jsonl(SOURCES["aozora_more"]):
        (heldout if is_held_out(work["id"]) else general).extend(chunk(work["text"]))
    ud = read_jsonl(SOURCES["ud"])

    def grouped(split: str) -> list[str]:
        sents = [s["text"] for s in ud if s["split"] == split]
        return ["\n".join(sents[i:i + 8]) for i in range(0, len(sents), 8)]

    return {"classics": classics, "general": general + grouped("dev")}, heldout + grouped("test")


def junk_documents(clean: list[str], n: int, rng: random.Random) -> list[tuple[str, str]]:
    """n (kind, text) junk documents, cycling through the kinds."""
    def menu():
        return "\n".join(rng.sample(MENU, 10) + [rng.choice(clean)[:60]])

    def repeated_ads():
        return "\n".join(rng.choice(ADS) for _ in range(30))

    def keyword_spam():
        return "".join(f"{rng.choice(SPAM)}{rng.choice(SPAM)}で{rng.choice(SPAM)}！" for _ in range(40))

    def english():
        return " ".join(rng.choice(ENGLISH) for _ in range(12))

    def price_table():
        return "\n".join(f"商品{i:03d} | {rng.randint(100, 99999):,}円 | 在庫{rng.randint(0, 99)} | "
                         f"2024/{i % 12 + 1:02d}/01" for i in range(25))

    def katakana():
        return "".join(rng.choice(KATAKANA) for _ in range(400))

    def fragment():
        return rng.choice(clean)[:rng.randint(20, 80)]

    def mojibake():
        return rng.choice(clean)[:600].encode("utf-8").decode("latin-1")

    def code():
        return "\n".join(f"function f{i}(x) {{ return x * {i}; }}  // {rng.choice(SPAM)}" for i in range(30))

    def links():
        return "\n".join(f"https://example.com/{rng.choice(SPAM)}/{i}.html 詳しくはこちら" for i in range(25))

    def footer():
        return f"{rng.choice(MENU)} > {rng.choice(MENU)}\n{rng.choice(clean)}{FOOTER}"

    def exact_copy():
        return rng.choice(clean)

    def near_copy():
        text = list(rng.choice(clean))
        for _ in range(3):
            text[rng.randrange(len(text))] = "、"
        return "".join(text)

    kinds = [menu, repeated_ads, keyword_spam, english, price_table, katakana, fragment, mojibake, code, links,
             footer, exact_copy, near_copy]
    return [(kinds[i % len(kinds)].__name__, kinds[i % len(kinds)]()) for i in range(n)]


def write_raw_mix(out_dir: Path, *, junk_share: float = 0.35, seed: int = 0) -> dict:
    """Write the raw sources, the held-out file and summary.json; returns the summary."""
    if not 0 <= junk_share < 1:
        raise ValueError(f"--junk_share must be in [0, 1), got {junk_share}")
    rng = random.Random(seed)
    sources, heldout = clean_documents()
    out_dir.mkdir(parents=True, exist_ok=True)
    summary: dict = {"junk_share": junk_share, "seed": seed, "sources": {}, "heldout_docs": len(heldout)}
    for name, clean in sources.items():
        n_junk = round(len(clean) * junk_share / (1 - junk_share))
        docs = [("clean", t) for t in clean] + junk_documents(clean, n_junk, rng)
        rng.shuffle(docs)
        with (out_dir / f"{name}.jsonl").open("w", encoding="utf-8") as f:
            for i, (kind, text) in enumerate(docs):
                f.write(json.dumps({"id": f"{name}-{i:05d}", "kind": kind, "text": text}, ensure_ascii=False) + "\n")
        kinds: dict[str, int] = {}
        for kind, _ in docs:
            kinds[kind] = kinds.get(kind, 0) + 1
        summary["sources"][name] = {"docs": len(docs), "chars": sum(len(t) for _, t in docs), "kinds": kinds}
    with (out_dir / "heldout.jsonl").open("w", encoding="utf-8") as f:
        for i, text in enumerate(heldout):
            f.write(json.dumps({"id": f"heldout-{i:05d}", "text": text}, ensure_ascii=False) + "\n")
    (out_dir / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jpmoe.data.raw_mix", description=__doc__.split("\n")[0])
    p.add_argument("--out_dir", required=True)
    p.add_argument("--junk_share", type=float, default=0.35, help="share of junk documents per source")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    summary = write_raw_mix(Path(args.out_dir), junk_share=args.junk_share, seed=args.seed)
    for name, s in summary["sources"].items():
        print(f"{name}: {s['docs']} documents ({s['kinds'].get('clean', 0)} clean), {s['chars']:,} characters")
    print(f"held out: {summary['heldout_docs']} documents -> {args.out_dir}/heldout.jsonl")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
