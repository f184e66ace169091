"""The readable report of a run (`report.md`, `jpcurate report DIR`): every removal is named and explained."""

from __future__ import annotations

from typing import Any

# What each rejection code means, for the report. Codes not listed fall back to the step's own detail strings.
EXPLAIN: dict[str, str] = {
    "too_long": "document longer than the size guard (protects every later rule's running time)",
    "empty": "no text left (empty input, or everything was boilerplate/markup)",
    "min_chars": "too short to judge or to be worth training on",
    "lang": "not the target language (script ratios say Chinese, Korean, English or other)",
    "mojibake": "mis-decoded text (U+FFFD, cp932-as-UTF-8 patterns)",
    "hiragana_frac": "too little hiragana: keyword lists, product tables, kanji-only (Chinese-like) text",
    "katakana_frac": "too much katakana: product/keyword lists",
    "ja_frac": "too few Japanese characters among all characters",
    "sentence_len": "sentences (between 。！？) too short on average (lists) or too long (no punctuation)",
    "max_sentence": "a 'sentence' longer than the limit: run-on keyword strings",
    "ellipsis": "many sentences end in …/・・・: truncated snippets, teaser lists",
    "dup_lines": "repeated lines (templates, menus)",
    "dup_line_chars": "characters in repeated lines (templates, menus)",
    "dup_ngrams": "repeated character n-grams (machine-generated or copy-pasted spam)",
    "top_ngram": "one character n-gram dominates the text",
    "short_lines": "mostly very short lines (navigation, menus, tables)",
    "line_end_punct": "few lines end like a sentence (keyword lists, tables)",
    "symbols": "too many symbols (decoration, markup, tables)",
    "digits": "too many digits (prices, tables, timetables)",
    "code": "source code or markup (braces, semicolons, tags)",
    "urls": "too much of the text is URLs",
    "ngwords": "NG words (adult, discrimination, violence, ads, bulletin-board phrases) above the allowed ratio",
    "url": "the record's URL matches the domain block list or a URL rule",
    "perplexity": "character language model perplexity in the far tail: unnatural text",
    "stop_words": "fewer stop words than natural text has",
    "compression": "zlib compression ratio out of range (repetitive, or random/encoded)",
    "words": "word count / word length rule (preset of a peer)",
    "kuten": "too few 。 for its length",
    "bare_tokens": "mostly short bare words between spaces/、/# without particles (tag clouds, keyword lists)",
    "broken_endings": "です/ます after a dictionary-form verb or a particle (するです, をます): machine translation",
}


def explain(code: str) -> str:
    base = code.split(".")[0]
    for key in (code, base, base.split("_")[0]):
        if key in EXPLAIN:
            return EXPLAIN[key]
    return ""


def render_report(stats: dict[str, Any]) -> str:
    docs = stats["documents"]
    n = max(docs["input"], 1)
    lines = [
        "# jpcurate report",
        "",
        f"- input records: {docs['input']:,} ({stats['bytes']['input'] / 1e6:.2f} MB of text)",
        f"- kept: {docs['kept']:,} ({100 * docs['kept'] / n:.1f} %), {stats['bytes']['kept'] / 1e6:.2f} MB",
        f"- rejected: {docs['rejected']:,} ({100 * docs['rejected'] / n:.1f} %)",
        f"- quarantined (malformed input): {docs['quarantined']:,}",
        f"- accounting identity input = kept + rejected + quarantined: "
        f"{'holds' if docs['identity_holds'] else 'BROKEN'}",
        "",
        "## Removals by reason",
        "",
        "| reason | records | share of input | what it means | examples (id: measured) |",
        "|---|---:|---:|---|---|",
    ]
    for code, count in stats["reasons"].items():
        ex = "; ".join(f"`{e['id']}`: {e['detail']}" for e in stats.get("examples", {}).get(code, []))
        lines.append(f"| `{code}` | {count:,} | {100 * count / n:.1f} % | {explain(code)} | {ex} |")
    if stats.get("quarantine_reasons"):
        lines += ["", "## Quarantine", "", "| reason | records |", "|---|---:|"]
        lines += [f"| {r} | {c:,} |" for r, c in stats["quarantine_reasons"].items()]
    lines += ["", "## Steps", "", "| step | docs in | docs out | MB in | MB out |", "|---|---:|---:|---:|---:|"]
    for s in stats["steps"]:
        lines.append(f"| {s['name']} | {s['docs_in']:,} | {s['docs_out']:,} | {s['bytes_in'] / 1e6:.3f} |"
                     f" {s['bytes_out'] / 1e6:.3f} |")
    if stats.get("sums"):
        lines += ["", "## Counters", "", "| counter | total |", "|---|---:|"]
        lines += [f"| {k} | {v:,} |" for k, v in stats["sums"].items()]
    return "\n".join(lines) + "\n"
