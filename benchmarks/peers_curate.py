"""Peer side of bench_curate.py; runs inside the peers venv (`make .venv-peers`), never imports jpcurate.

    .venv-peers/bin/python benchmarks/peers_curate.py {hojichar,datatrove-fw2-ja} input.jsonl repeats

Prints one JSON line: {"name", "kept", "docs", "bytes", "seconds": [...], "filters": [...], "versions"}. Texts are
preloaded (JSON parsing excluded) and the chain runs single-process, as in the curation anchors' harness (§9).
"""

from __future__ import annotations

import json
import sys
import time


def hojichar_chain():
    """Every Japanese HojiChar document filter at its defaults (the anchors' `hojichar-ja-full`)."""
    from hojichar import Compose, Document
    from hojichar.filters import document_filters as df

    names = [("DocumentNormalizer", {}), ("AcceptJapanese", {}), ("DocumentLengthFilter", {"min_doc_len": 200,
             "max_doc_len": 50000}), ("DiscardBBSComments", {}), ("DiscardAds", {}), ("DiscardAdultContentJa", {}),
             ("DiscardDiscriminationContentJa", {}), ("DiscardViolenceContentJa", {}), ("DiscardRareKuten", {}),
             ("SingleCharacterRepetitionFilter", {}), ("CharRepetitionRatioFilter", {}),
             ("DiscardTooManyEndingEllipsis", {}), ("DiscardTooShortLines", {}), ("DiscardTooManySpecialToken", {}),
             ("DiscardTooManyNouns", {}), ("WordRepetitionRatioFilter", {}), ("MaskPersonalInformation", {})]
    filters, used = [], []
    for name, kw in names:
        cls = getattr(df, name, None)
        if cls is None:
            continue
        try:
            filters.append(cls(**kw))
        except TypeError:
            filters.append(cls())
        used.append(name)
    chain = Compose(filters)

    def run(texts):
        kept = 0
        for t in texts:
            d = chain.apply(Document(t))
            kept += not d.is_rejected
        return kept

    return run, used


def datatrove_chain():
    """FineWeb-2 `jpn_Jpan` (configs/jpn_Jpan.yml): GopherRepetition -> FineWebQuality -> GopherQuality."""
    from datatrove.data import Document
    from datatrove.pipeline.filters import FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter

    lang = "jpn_Jpan"
    filters = [
        GopherRepetitionFilter(dup_line_frac=0.328, dup_para_frac=0, dup_line_char_frac=0, dup_para_char_frac=0,
                               top_n_grams=((2, 0.239), (3, 0.196), (4, 0.172)),
                               dup_n_grams=((5, 0.243), (6, 0.225), (7, 0.207), (8, 0.19), (9, 0.175), (10, 0.159)),
                               language=lang),
        FineWebQualityFilter(short_line_thr=999, char_duplicates_ratio=0.1, line_punct_thr=0.096,
                             new_line_ratio=0.13, language=lang),
        GopherQualityFilter(min_avg_word_length=1, max_avg_word_length=6, max_non_alpha_words_ratio=0.759,
                            stop_words=list("のにをはたてがとで年し・月れさ"), min_stop_words=2, language=lang),
    ]

    def run(texts):
        kept = 0
        for i, t in enumerate(texts):
            d = Document(text=t, id=str(i))
            ok = True
            for f in filters:
                r = f.filter(d)
                if not (r[0] if isinstance(r, tuple) else r):
                    ok = False
                    break
            kept += ok
        return kept

    return run, [type(f).__name__ for f in filters]


def main() -> int:
    name, path, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
    texts = [json.loads(line)["text"] for line in open(path, encoding="utf-8")]
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    build = {"hojichar": hojichar_chain, "datatrove-fw2-ja": datatrove_chain}[name]
    run, used = build()
    run(texts[:20])  # warm-up: dictionaries, taggers, tokenizers
    seconds, kept = [], 0
    for _ in range(repeats):
        t0 = time.process_time()
        kept = run(texts)
        seconds.append(time.process_time() - t0)
    from importlib.metadata import version

    versions = {"hojichar": version("hojichar")} if name == "hojichar" else {"datatrove": version("datatrove")}
    print(json.dumps({"name": name, "kept": kept, "docs": len(texts), "bytes": nbytes, "seconds": seconds,
                      "filters": used, "versions": versions}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
