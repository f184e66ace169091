"""The peers' rule sets with their published thresholds (curation anchors §2-§3), on our rule objects.

These exist so that users can compare like with like. Where we cannot reproduce a peer exactly, the comment on the
rule says how we differ (their language-ID models, their word lists, their tokenizers are not ours).
`tests/curate/test_presets.py` checks every threshold against the anchors.
"""

from __future__ import annotations

from jpcurate.pipeline import Pipeline
from jpcurate.steps.charstats import (
    JA_LETTERS,
    CharRun,
    ClassCount,
    ClassFraction,
    Compression,
    KanaPrefix,
    Length,
    NonSpaceLength,
)
from jpcurate.steps.langid import LanguageFilter
from jpcurate.steps.lines import (
    BulletLines,
    EllipsisLines,
    EllipsisSentences,
    KutenDensity,
    LineEndPunct,
    MaxSentenceLength,
    SentenceLength,
    ShortLines,
)
from jpcurate.steps.ngwords import Limit, NGWords
from jpcurate.steps.normalize import Normalize
from jpcurate.steps.pii import MaskPII
from jpcurate.steps.repetition import CharRepetition, DupLines, DupNgram, TopNgram
from jpcurate.steps.urlrules import LLMJP_TLDS, UrlFilter
from jpcurate.steps.words import (
    JA_STOP_WORDS,
    AlphaWords,
    DupWordNgram,
    MeanWordLength,
    NewlineWordRatio,
    NounRatio,
    StopWords,
    SymbolWordRatio,
    TopWordNgram,
    WordCount,
    WordRepetition,
)

NG3 = ("adult", "discrimination", "violence")
# Gopher Table A1 (Rae et al. 2021, arXiv:2112.11446) as in datatrove's GopherRepetitionFilter defaults.
GOPHER_TOP = {2: 0.20, 3: 0.18, 4: 0.16}
GOPHER_DUP = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}
# FineWeb-2 configs/jpn_Jpan.yml
FW2_TOP = {2: 0.239, 3: 0.196, 4: 0.172}
FW2_DUP = {5: 0.243, 6: 0.225, 7: 0.207, 8: 0.19, 9: 0.175, 10: 0.159}
# Swallow quality.apply_v1 (character n-grams; "dup" = distinct n-grams seen more than once / distinct n-grams)
SWALLOW_TOP = {2: 0.20, 3: 0.18, 4: 0.16}
SWALLOW_DUP = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}


def swallow(*, mecab: bool = False) -> Pipeline:
    """Swallow corpus v1 (Okazaki et al. 2024, arXiv:2404.17733), `quality.apply_v1` + NG words + URL."""
    steps = [
        Normalize(ja_punct=True),  # modify.py's ，．->、。 (Swallow applies it after filtering)
        LanguageFilter(("ja",), min_score=0.0),  # nanigo score > 0; ours is the script-ratio identifier
        UrlFilter(extra_domains=("wikipedia.org",)),  # UT1 categories + 5ch + wikipedia; ours: the starter list
        NonSpaceLength(lo=400, name="num_letters"),
        ClassCount(JA_LETTERS, lo=400, name="num_ja_letters"),
        ClassFraction(("hiragana",), JA_LETTERS, lo=0.2, name="hiragana_frac"),
        ClassFraction(("katakana",), JA_LETTERS, hi=0.5, name="katakana_frac"),
        ClassFraction(JA_LETTERS, "nonspace", lo=0.5, name="ja_frac"),
        SentenceLength(lo=20, hi=90),
        MaxSentenceLength(hi=200),
        EllipsisSentences(hi=0.2),
        DupLines(hi=0.30, name="dup_paragraphs"),  # Swallow's paragraphs are lines
        DupLines(hi=0.20, chars=True, name="dup_paragraph_chars"),
        DupLines(hi=0.30, unit="sentence", name="dup_sentences"),
        DupLines(hi=0.20, unit="sentence", chars=True, name="dup_sentence_chars"),
        *[TopNgram(n, hi=t) for n, t in SWALLOW_TOP.items()],
        *[DupNgram(n, hi=t, mode="distinct") for n, t in SWALLOW_DUP.items()],
        # NG characters / Japanese letters < 0.05 (trie longest match, no boundary check)
        NGWords({"ng": Limit(max_ratio=0.05)}, files={"ng": [f"ng_{c}_ja.txt" for c in NG3]}, boundary="none",
                denominator="ja_letters"),
    ]
    return Pipeline(steps, name="swallow")


def llmjp_v1(*, mecab: bool = False) -> Pipeline:
    """llm-jp-corpus v1 `ja_cc` filters (default, not --strict)."""
    steps = [
        Length(lo=1, name="empty"),
        UrlFilter(use_blocklist=False, tld_allow=LLMJP_TLDS),  # + ja.wikipedia dropped: in UrlFilter via TLD only
        KanaPrefix(lookup=50),
        NGWords({"ads": Limit(max_hits=10)}, boundary="none", name="ads"),
        # count > 3 each, ignore_confused=True (katakana boundary; ours also checks hiragana)
        NGWords({c: Limit(max_hits=3) for c in NG3}, boundary="script"),
        KutenDensity(hi=250),
        Compression(lo=0.30, hi=0.70),
    ]
    return Pipeline(steps, name="llmjp-v1")


def _fw2_splitter(mecab: bool) -> str:
    return "mecab" if mecab else "script"


def fineweb2_ja(*, mecab: bool = False) -> Pipeline:
    """FineWeb-2 `jpn_Jpan`: GopherRepetition -> FineWebQuality -> GopherQuality (+ PII). Words: SudachiPy in
    FineWeb-2; here MeCab (`mecab=True`) or script runs (default), so word counts differ somewhat."""
    sp = _fw2_splitter(mecab)
    steps = [
        Length(lo=1, name="empty"),
        LanguageFilter(("ja",), min_score=0.886),  # GlotLID score >= 0.886; ours: script-ratio score
        DupLines(hi=0.328, name="dup_line_frac"),  # dup_para_frac, dup_line_char_frac, dup_para_char_frac: 0 = off
        *[TopWordNgram(n, hi=t, splitter=sp) for n, t in FW2_TOP.items()],
        *[DupWordNgram(n, hi=t, splitter=sp) for n, t in FW2_DUP.items()],
        LineEndPunct(lo=0.096, name="line_punct_ratio"),  # short_line_thr=999: off
        DupLines(hi=0.1, chars=True, name="char_dup_ratio"),
        NewlineWordRatio(hi=0.13, splitter=sp),
        WordCount(lo=50, hi=100_000, splitter=sp),
        MeanWordLength(lo=1, hi=6, splitter=sp),
        SymbolWordRatio(hi=0.1, splitter=sp),
        BulletLines(hi=0.9),
        EllipsisLines(hi=0.3),
        AlphaWords(lo=0.759, splitter=sp),
        StopWords(lo=2, stop_words=JA_STOP_WORDS, lower=False, splitter=sp),
        MaskPII(),
    ]
    return Pipeline(steps, name="fineweb2-ja")


def hojichar(*, mecab: bool = False) -> Pipeline:
    """Every Japanese HojiChar document filter at its defaults (the anchors' `hojichar-ja-full` chain). The MeCab
    rules (noun ratio, word repetition) run only with `mecab=True`; the word lists are ours, not HojiChar's."""
    steps = [
        Normalize(nfkc=True, html=False, aozora="off"),  # DocumentNormalizer (NFKC)
        KanaPrefix(lookup=50),  # AcceptJapanese
        Length(lo=200, hi=50_000, name="doc_length"),
        NGWords({"bbs": Limit(max_hits=14)}, boundary="none", name="bbs"),
        NGWords({"ads": Limit(max_hits=14)}, boundary="none", name="ads"),
        NGWords({c: Limit(max_hits=0) for c in NG3}, boundary="none"),  # any hit rejects
        KutenDensity(hi=100),
        CharRun(hi=199),
        CharRepetition(hi=0.33, n=5),
        EllipsisLines(hi=0.7),
        ShortLines(hi=0.5, max_len=10),
        ClassFraction(("space", "ascii_punct", "ja_punct", "symbol"), "all", hi=0.4, name="special_chars"),
    ]
    if mecab:
        steps += [NounRatio(hi=0.8, strict_hi=True), WordRepetition(hi=0.4, n=7, strict_hi=True)]
    steps.append(MaskPII())
    return Pipeline(steps, name="hojichar")


def gopher_en(*, mecab: bool = False) -> Pipeline:
    """Gopher quality + repetition rules (Rae et al. 2021) with datatrove's English defaults."""
    steps = [
        Length(lo=1, name="empty"),
        DupLines(hi=0.30, name="dup_line_frac"),
        DupLines(hi=0.30, unit="paragraph", name="dup_para_frac"),
        DupLines(hi=0.20, chars=True, name="dup_line_char_frac"),
        DupLines(hi=0.20, unit="paragraph", chars=True, name="dup_para_char_frac"),
        *[TopWordNgram(n, hi=t) for n, t in GOPHER_TOP.items()],
        *[DupWordNgram(n, hi=t) for n, t in GOPHER_DUP.items()],
        WordCount(lo=50, hi=100_000),
        MeanWordLength(lo=3, hi=10),
        SymbolWordRatio(hi=0.1),
        BulletLines(hi=0.9),
        EllipsisLines(hi=0.3),
        AlphaWords(lo=0.8),
        StopWords(lo=2),
    ]
    return Pipeline(steps, name="gopher-en")
