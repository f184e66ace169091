"""The readable report of a run (`report.md`, `jpcurate report DIR`): every removal is named and explained."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from jpcurate.plots import PLOTS_HINT, write_plots

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
    "kana_frac": "too little kana (hiragana + katakana): kanji-only (Chinese-like) text, keyword lists",
    "dup_paragraphs": "repeated paragraphs (templates, copy-pasted blocks)",
    "dup_paragraph_chars": "characters in repeated paragraphs (templates, copy-pasted blocks)",
    "dup_sentences": "repeated sentences (templates, spam)",
    "dup_sentence_chars": "characters in repeated sentences (templates, spam)",
    "dup_line_frac": "repeated lines (templates, menus)",
    "dup_line_char_frac": "characters in repeated lines (templates, menus)",
    "dup_para_frac": "repeated paragraphs (templates, copy-pasted blocks)",
    "dup_para_char_frac": "characters in repeated paragraphs (templates, copy-pasted blocks)",
    "top_word_ngram": "one word n-gram dominates the text",
    "dup_word_ngrams": "repeated word n-grams (machine-generated or copy-pasted spam)",
    "num_letters": "too few letters to be a document",
    "num_ja_letters": "too few Japanese letters to be a Japanese document",
    "doc_length": "too short or too long (HojiChar's length bounds)",
    "kana_prefix": "no kana near the start: not Japanese prose",
    "ads": "advertising phrases",
    "bbs": "bulletin-board boilerplate (anonymous-poster names, post headers)",
    "char_run": "one character repeated in a long run (padding, spam)",
    "char_repetition": "repeated character n-grams (machine-generated or copy-pasted spam)",
    "special_chars": "too many special characters (decoration, emoticons, markup)",
    "alpha_words": "too few words with a letter (tables, numbers, symbols)",
    "bullet_lines": "mostly bullet-point lines (lists, menus)",
    "char_dup_ratio": "characters in repeated lines (templates, menus)",
    "line_punct_ratio": "few lines end with punctuation (keyword lists, tables)",
    "newline_ratio": "too many line breaks for its length (lists, menus)",
    "word_count": "too few or too many words",
    "mean_word_len": "average word length out of range (tables, run-on strings)",
    "symbol_word_ratio": "too many symbol words (#, …): hashtags, truncated snippets",
    "noun_ratio": "too many nouns (MeCab): keyword lists, product tables",
    "word_repetition": "repeated words (MeCab): spam, templates",
    "exact_duplicate": "the same text (after normalisation) as a kept document: a copy",
    "near_duplicate": "nearly the same text as a kept document (MinHash, Jaccard above the threshold): a near copy",
    "ellipsis_lines": "many lines end in …: truncated snippets, teaser lists",
    "error": "the step raised an error on this document (a bug, or a pathological input); the detail names it",
    "repeated_lines": "every line of the document repeats across the corpus (boilerplate only)",
    "bare_tokens": "mostly short bare words between spaces/、/# without particles (tag clouds, keyword lists)",
    "broken_endings": "です/ます after a dictionary-form verb or a particle (するです, をます): machine translation",
}
NGRAM = re.compile(r"^(dup|top)_(word_)?\d+gram$")  # dup_10gram, top_word_3gram: one explanation per family


def explain(code: str) -> str:
    """What a rejection code means; '' for an unknown one (a test checks that no preset can produce such a code)."""
    base = code.split(".")[0]
    m = NGRAM.match(base)
    if m:
        return EXPLAIN[f"{m[1]}_{m[2] or ''}{'ngrams' if m[1] == 'dup' else 'ngram'}"]
    for key in (code, base, "error" if code.endswith(".error") else ""):
        if key in EXPLAIN:
            return EXPLAIN[key]
    return ""


def write_report(out_dir: str | Path, stats: dict[str, Any], *, plots: bool = False) -> Path:
    """Write `out_dir/report.md` (atomically); with `plots`, draw the PNG plots first and link them."""
    out = Path(out_dir)
    paths = write_plots(stats, out) if plots else existing_plots(out)
    path = out / "report.md"
    tmp = path.with_name(".report.md.tmp")
    tmp.write_text(render_report(stats, paths), encoding="utf-8")
    os.replace(tmp, path)
    return path


def existing_plots(out_dir: str | Path) -> list[str] | None:
    """The plots a run directory already holds (drawn earlier), relative to it; None when there are none."""
    found = sorted(p.relative_to(out_dir).as_posix() for p in (Path(out_dir) / "plots").glob("*.png"))
    return found or None


def render_report(stats: dict[str, Any], plots: list[str] | None = None) -> str:
    """The markdown report; `plots` are image paths relative to the report (None: say how to get them)."""
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
        "| reason | records | share of input | MB | what it means | examples (id: measured) |",
        "|---|---:|---:|---:|---|---|",
    ]
    for code, count in stats["reasons"].items():
        ex = "; ".join(f"`{e['id']}`: {e['detail']}" for e in stats.get("examples", {}).get(code, []))
        mb = stats.get("reason_bytes", {}).get(code, 0) / 1e6
        lines.append(f"| `{code}` | {count:,} | {100 * count / n:.1f} % | {mb:.3f} | {explain(code)} | {ex} |")
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
    lines += ["", "## Plots", ""]
    if plots:
        lines += [f"![{Path(p).stem}]({p})" for p in plots]
    else:
        lines.append(PLOTS_HINT)
    return "\n".join(lines) + "\n"
