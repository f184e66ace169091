"""Rebuild the shipped default model: `python -m jpcurate.lm.build_default --data data --output <pkg>/data/...`.

Training text: the bundled Aozora Bunko works (public domain) cut into ~2,000-character excerpts and the JSQuAD
Wikipedia paragraphs (CC BY-SA 4.0) grouped into ~400+-character documents by article, both normalised like
the pipeline does; 10 % of documents (every 10th) are held out for the reference percentiles.
"""

from __future__ import annotations

import argparse
import json
from importlib import resources
from pathlib import Path

from jpcurate.lm.train import calibrate, train
from jpcurate.steps.normalize import normalize_text


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", default="data", help="the repository's data/ directory")
    ap.add_argument("--output", default=str(resources.files("jpcurate").joinpath("data/charlm_ja.npz")))
    ap.add_argument("--order", type=int, default=5)
    ap.add_argument("--prune-from", type=int, default=4)
    args = ap.parse_args(argv)
    data = Path(args.data)
    texts = [normalize_text(t) for t in wikipedia_documents(data / "jglue" / "jsquad_paragraphs.jsonl")]
    texts += [normalize_text(t) for t in aozora_excerpts(data / "aozora" / "works.jsonl")]
    held = [t for i, t in enumerate(texts) if i % 10 == 0]
    tr = [t for i, t in enumerate(texts) if i % 10 != 0]
    model = train(tr, order=args.order, prune_from=args.prune_from,
                  meta={"sources": ["aozora/works.jsonl (public domain)",
                                    "jglue/jsquad_paragraphs.jsonl (CC BY-SA 4.0)"],
                        "heldout": "every 10th document"})
    calibrate(model, held)
    model.save(args.output)
    print(model.summary())
    print(f"wrote {args.output}: {Path(args.output).stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
