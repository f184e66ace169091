"""Line-level boilerplate removal at the start and the end of a document.

Web pages extracted to text start with navigation (パンくず, menus, "ホーム > ブログ") and end with footers
("続きを読む", share buttons, "Copyright ©", "ページの先頭へ"). `strip_boilerplate` removes the run of
boilerplate lines at each end and stops at the first line that looks like content, so a navigation word inside
the body is never touched. A line is boilerplate when it is short and made of navigation/footer phrases, or when
it is a menu (several short items separated by | / > » ・ with no sentence punctuation), or a copyright notice.
The phrases are in `data/boilerplate_ja.txt` (one regular expression per line; replaceable).
"""

from __future__ import annotations

from importlib import resources

import regex

from jpcurate.pipeline import Step, Verdict

MAX_LINE = 60  # boilerplate lines are short; a long line is content even if it contains a phrase
MENU = regex.compile(r"^(?:[^。！？!?|｜/／>＞»›・\n]{1,20}\s*[|｜/／>＞»›・]\s*){2,}[^。！？!?\n]{0,20}$")
COPYRIGHT = regex.compile(r"(?i)^.{0,40}(?:copyright|\(c\)|©|all rights reserved|無断(?:転載|複製)).{0,80}$")
SYMBOLS_ONLY = regex.compile(r"^[\p{P}\p{S}\s]{1,60}$")


def load_phrases(path: str | None = None) -> list[str]:
    if path is None:
        raw = resources.files("jpcurate").joinpath("data/boilerplate_ja.txt").read_text(encoding="utf-8")
    else:
        with open(path, encoding="utf-8") as f:
            raw = f.read()
    return [ln.strip() for ln in raw.splitlines() if ln.strip() and not ln.startswith("#")]


class StripBoilerplate(Step):
    """Cleaner: removes boilerplate lines at both ends; `n_boilerplate_lines` counts them."""

    modifies_text = True

    def __init__(self, *, phrases_file: str | None = None, max_scan: int = 30, name: str = "boilerplate") -> None:
        self.name, self.phrases_file, self.max_scan = name, phrases_file, max_scan
        phrases = load_phrases(phrases_file)
        # The whole line (after stripping decoration) is one or more phrases, e.g. "シェア ツイート".
        self._phrase_line = regex.compile(r"^(?:[\p{P}\p{S}\s]*+(?:" + "|".join(phrases) + r")[\p{P}\p{S}\s\d]*+)+$",
                                          regex.I)

    def is_boilerplate(self, line: str) -> bool:
        s = line.strip()
        if not s:
            return True
        if len(s) > MAX_LINE * 2:
            return False
        if COPYRIGHT.match(s) or SYMBOLS_ONLY.match(s):
            return True
        if len(s) > MAX_LINE:
            return False
        return bool(self._phrase_line.match(s) or MENU.match(s))

    def strip(self, text: str) -> tuple[str, int]:
        lines = text.split("\n")
        start, end = 0, len(lines)
        while start < min(end, self.max_scan) and self.is_boilerplate(lines[start]):
            start += 1
        while end > start and len(lines) - end < self.max_scan and self.is_boilerplate(lines[end - 1]):
            end -= 1
        removed = sum(1 for ln in lines[:start] + lines[end:] if ln.strip())
        return "\n".join(lines[start:end]).strip(), removed

    def reasons(self) -> tuple[str, ...]:
        return ("empty",)

    def apply(self, doc) -> Verdict | None:
        text, removed = self.strip(doc.text)
        if removed:
            doc.set_text(text)
        doc.values["n_boilerplate_lines"] = removed
        if not text:
            return ("empty", f"all {removed} lines were boilerplate")
        return None

    def __repr__(self) -> str:
        return f"StripBoilerplate(phrases_file={self.phrases_file!r}, max_scan={self.max_scan})"
