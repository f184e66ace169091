"""Text normalisation: HTML remnants, Aozora Bunko markup, Unicode NFKC, control characters, whitespace.

`normalize_text(text, ...)` is a pure function and idempotent (`f(f(x)) == f(x)`, a hypothesis test checks it):
the passes are repeated until the text stops changing (at most a few times; each pass is linear, every pattern is
bounded so nothing backtracks). Order inside a pass: Aozora markup (before NFKC, which would turn ｜ into |),
`，．` -> `、。` after Japanese characters (optional, also before NFKC), HTML entities and tags, NFKC, controls and
invisible characters, whitespace.

Aozora markup: ruby `《…》` and its start mark `｜`, editor notes `［＃…］`, the gaiji mark `※` in front of a
note, the "【テキスト中に現れる記号について】" block and the `底本：` colophon. `aozora="auto"` applies the
full set only to texts that carry Aozora markers (`［＃`, `｜…《`, `底本：`) and otherwise removes only ruby
that follows kanji and holds only kana (`漢字《かんじ》`), which is safe on web text.
"""

from __future__ import annotations

import html
import re
import unicodedata

import regex

from jpcurate.pipeline import Step, Verdict
from jpcurate.text.nfkc import nfkc as fast_nfkc

MAX_PASSES = 4

RUBY_AFTER_KANJI = regex.compile(r"(?<=[\p{Han}々〆ヶ])《[\p{Hiragana}\p{Katakana}ー・]{1,30}》")
RUBY_ANY = regex.compile(r"《[^《》\n]{0,60}》")
RUBY_BAR = regex.compile(r"｜(?=[^｜《\n]{1,40}《)")
AOZORA_NOTE = regex.compile(r"※?［＃[^［］\n]{0,300}］")
AOZORA_SYMBOL_BLOCK = regex.compile(r"-{20,}\n【テキスト中に現れる記号について】.{0,3000}?\n-{20,}\n?", regex.S)
AOZORA_COLOPHON = regex.compile(r"\n\s*底本[：:].*\Z", regex.S)
AOZORA_MARKERS = regex.compile(r"［＃|｜[^｜《\n]{1,40}《|\n底本[：:]")

HTML_TAG = regex.compile(r"</?[A-Za-z][A-Za-z0-9-]{0,20}(?:\s[^<>\n]{0,300})?/?>|<!--.{0,2000}?-->", regex.S)
HTML_ENTITY = regex.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")

# Simple character classes use the standard library's `re`, about ten times faster than `regex` on them.
# C0/C1 controls except \t \n, zero-width and bidi controls, BOM; \r handled separately.
INVISIBLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200d\u200e\u200f\u202a-\u202e"
                          r"\u2060-\u2064\u2066-\u2069\ufeff\ufff9-\ufffb]")
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
INVISIBLE_OR_SURROGATE = re.compile(INVISIBLE.pattern[:-1] + "\ud800-\udfff]")  # one scan for the common case
SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u3000\u205f]+")
ODD_SPACE = re.compile(r"[\u00a0\u2000-\u200a\u3000\u205f]")  # NFKC maps each of them to " "
SPACE_AROUND_NEWLINE = re.compile(r" *\n *")  # the definition; `strip_around_newlines` applies it
MANY_NEWLINES = re.compile(r"\n{3,}")
JA_COMMA = regex.compile(r"(?<=[\p{Hiragana}\p{Katakana}\p{Han}ー])，")
JA_PERIOD = regex.compile(r"(?<=[\p{Hiragana}\p{Katakana}\p{Han}ー])．")


def clean_aozora(text: str, mode: str | bool = "auto") -> str:
    if mode is False or mode == "off":
        return text
    if mode == "auto" and not has_aozora_markers(text):
        return RUBY_AFTER_KANJI.sub("", text) if "《" in text else text
    text = AOZORA_SYMBOL_BLOCK.sub("", text)
    text = AOZORA_COLOPHON.sub("", text)
    text = AOZORA_NOTE.sub("", text)
    text = RUBY_BAR.sub("", text)
    return RUBY_ANY.sub("", text)


def has_aozora_markers(text: str) -> bool:
    """`AOZORA_MARKERS.search(text)`, skipped when none of the fixed strings it needs occurs (`in` is ~10x faster)."""
    return ("［＃" in text or "｜" in text or "\n底本" in text) and AOZORA_MARKERS.search(text) is not None


def clean_html(text: str) -> str:
    if "&" in text and HTML_ENTITY.search(text):
        text = HTML_ENTITY.sub(lambda m: html.unescape(m.group()), text)
    if "<" in text:
        text = HTML_TAG.sub("", text)
    return text


def strip_around_newlines(text: str) -> str:
    """`SPACE_AROUND_NEWLINE.sub("\\n", text)` through str.split and strip: the regex tries a match at every
    character (it starts with an optional space), ~8x slower on Japanese text."""
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    return "\n".join([lines[0].rstrip(" "), *[ln.strip(" ") for ln in lines[1:-1]], lines[-1].lstrip(" ")])


def _one_pass(text: str, *, nfkc: bool, aozora: str | bool, html_: bool, ja_punct: bool) -> tuple[str, bool]:
    """One pass; returns (text, changed_by_markup) where the flag says a step other than whitespace changed the
    text, so that another pass could find more to do (whitespace normalisation alone is idempotent)."""
    before = text
    text = clean_aozora(text, aozora)
    if ja_punct:  # before NFKC, which turns ，． into ASCII
        text = JA_PERIOD.sub("。", JA_COMMA.sub("、", text))
    if html_:
        text = clean_html(text)
    changed = text != before  # markup removed: the result may hold new markup, another pass is needed
    if nfkc and not text.isascii() and not unicodedata.is_normalized("NFKC", text):  # the check is ~200x cheaper
        text = fast_nfkc(text)
        # NFKC output is stable; it only needs another pass when it made characters the markup steps act on
        # (＜ -> <, ＆ -> &, the vertical forms ︽︾ -> 《》)
        changed = changed or "<" in text or "&" in text or "《" in text
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if INVISIBLE_OR_SURROGATE.search(text):
        if INVISIBLE.search(text):  # removing a character can join new sequences (&am\u200bp; or a combining mark)
            text = INVISIBLE.sub("", text)
            changed = True
        if LONE_SURROGATE.search(text):
            text = LONE_SURROGATE.sub("\ufffd", text)
    # with NFKC no ODD_SPACE character is left here (NFKC maps each to " "): only runs of spaces and tabs remain
    if not nfkc or "  " in text or "\t" in text:
        text = SPACES.sub(" ", text)
    if " \n" in text or "\n " in text:
        text = strip_around_newlines(text)
    if "\n\n\n" in text:
        text = MANY_NEWLINES.sub("\n\n", text)
    return text.strip(), changed


def normalize_text(
    text: str, *, nfkc: bool = True, aozora: str | bool = "auto", html: bool = True, ja_punct: bool = False
) -> str:
    """Normalise `text` (see the module docstring); idempotent."""
    for _ in range(MAX_PASSES):
        new, changed = _one_pass(text, nfkc=nfkc, aozora=aozora, html_=html, ja_punct=ja_punct)
        if new == text or not changed:
            return new
        text = new
    return text


class Normalize(Step):
    """Cleaner: `normalize_text` on every document; rejects (`empty`) what is empty afterwards."""

    modifies_text = True

    def __init__(self, *, nfkc: bool = True, aozora: str | bool = "auto", html: bool = True, ja_punct: bool = False,
                 name: str = "normalize") -> None:
        self.name, self.nfkc, self.aozora, self.html, self.ja_punct = name, nfkc, aozora, html, ja_punct

    def reasons(self) -> tuple[str, ...]:
        return ("empty",)

    def apply(self, doc) -> Verdict | None:
        doc.set_text(normalize_text(doc.text, nfkc=self.nfkc, aozora=self.aozora, html=self.html,
                                    ja_punct=self.ja_punct))
        if not doc.text:
            return ("empty", "no text after normalisation")
        return None
