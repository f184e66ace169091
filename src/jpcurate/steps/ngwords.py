"""Word-list rules (NG words, adult, discrimination, violence, ads, bulletin-board phrases).

    NGWords(categories={"adult": Limit(max_hits=2, max_ratio=0.01)}, boundary="script")

One `TrieMatcher` over the union of the lists finds every hit in a single pass; each hit is then checked
(`boundary`: "none" = any substring, as Swallow and HojiChar; "script" = the script-boundary check; "mecab" =
morpheme boundaries with fugashi, falling back to "script" when fugashi is not installed) and counted for every
category its word belongs to. Per category the rule stores `ng_<cat>_hits` and `ng_<cat>_ratio` (characters in
hits / denominator characters) and rejects with code `ngwords.<cat>` when hits > `max_hits` **and**
ratio > `max_ratio` (a bound left at None always holds). A list is a package data file (`data/<file>`) or a
path of your own; a category may take several lists.

Counting in context (`context={"discrimination": Context()}`): a word that was ordinary in its period (支那人 in a
1930s essay on Chinese studies, 非人 in an Edo-period story, 白痴 in Meiji fiction) is named many times by the
text that discusses it, so a count of hits alone rejects history and literature. With a `Context` a hit of that
category counts only when a hostile word (`data/hostile_ja.txt`: 死ね, 消えろ, 出ていけ, ゴミ, 劣等, ...) occurs
within `window` characters of it, or when the text holds at least `distinct` different words of the category
(abuse piles slurs up; a period text repeats one term). `ng_<cat>_hits` stores the counted hits and
`ng_<cat>_mentions` all of them. The cue search runs only on documents with a hit of such a category.
"""

from __future__ import annotations

import bisect
import importlib.util
import unicodedata
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from jpcurate.pipeline import RebuiltStep, Verdict
from jpcurate.text import features
from jpcurate.text.charclass import C
from jpcurate.text.wordmatch import MorphemeChecker, TrieMatcher, script_boundary_ok

DEFAULT_FILES = {
    "adult": "ng_adult_ja.txt",
    "discrimination": "ng_discrimination_ja.txt",
    "violence": "ng_violence_ja.txt",
    "ads": "ads_ja.txt",
    "bbs": "bbs_ja.txt",
    "adult_en": "ng_en.txt",
}


@dataclass(frozen=True)
class Limit:
    max_hits: int | None = None
    max_ratio: float | None = None


@dataclass(frozen=True)
class Context:
    """Count a category's hits only near a hostile cue word, or all of them when `distinct` different words of the
    category occur (see the module docstring)."""

    cues: str = "hostile_ja.txt"
    window: int = 30
    distinct: int = 3


def load_words(name_or_path: str) -> list[str]:
    """Entries of a word list: a package data file name (see DEFAULT_FILES) or a path."""

    if Path(name_or_path).is_file():
        raw = Path(name_or_path).read_text(encoding="utf-8")
    else:
        raw = resources.files("jpcurate").joinpath(f"data/{name_or_path}").read_text(encoding="utf-8")
    words = []
    for line in raw.splitlines():
        w = unicodedata.normalize("NFKC", line.strip())
        if w and not line.startswith("#"):
            words.append(w)
    return words


def has_fugashi() -> bool:
    return importlib.util.find_spec("fugashi") is not None and importlib.util.find_spec("unidic_lite") is not None


class NGWords(RebuiltStep):
    name = "ngwords"

    def __init__(self, categories: dict[str, Limit | dict], *, files: dict[str, str | list[str]] | None = None,
                 boundary: str = "script", denominator: str = "nonspace", context: dict[str, Context] | None = None,
                 name: str = "ngwords") -> None:
        if boundary not in ("none", "script", "mecab"):
            raise ValueError(f"boundary must be none, script or mecab, not {boundary!r}")
        self.name, self.boundary, self.denominator = name, boundary, denominator
        self.categories = {c: (lim if isinstance(lim, Limit) else Limit(**lim)) for c, lim in categories.items()}
        self.files = {c: (files or {}).get(c, DEFAULT_FILES.get(c, c)) for c in self.categories}
        self.context = dict(context or {})
        unknown = set(self.context) - set(self.categories)
        if unknown:
            raise ValueError(f"context given for categories not checked: {sorted(unknown)}")
        self._build()

    def _build(self) -> None:
        self._word_cats: dict[str, list[str]] = {}
        for cat, file in self.files.items():
            for f in [file] if isinstance(file, str) else file:
                for w in load_words(f):
                    cats = self._word_cats.setdefault(w, [])
                    if cat not in cats:
                        cats.append(cat)
        self._matcher = TrieMatcher(self._word_cats)
        self._cues = {c: TrieMatcher(load_words(ctx.cues)) for c, ctx in self.context.items()}
        use_mecab = self.boundary == "mecab" and has_fugashi()
        self._morph = MorphemeChecker() if use_mecab else None

    def reasons(self) -> tuple[str, ...]:
        return tuple(f"{self.name}.{c}" for c in self.categories)

    def hits(self, text: str, spans: list[tuple[int, int]] | None = None) -> list[tuple[int, int]]:
        """Spans of the word hits in `text` that pass the boundary check (`spans`: the matcher's, if known)."""
        if spans is None:
            spans = self._matcher.find(text)
        if self.boundary == "none" or not spans:
            return spans
        if self._morph is not None:
            return [(s, e) for s, e in spans if self._morph.ok(text, s, e)]
        return [(s, e) for s, e in spans if script_boundary_ok(text, s, e)]

    def in_context(self, text: str, cat: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """The hits of a `context` category that count: all when `distinct` different words occur, else those with a
        hostile cue within `window` characters."""
        ctx = self.context[cat]
        if not spans or len({text[s:e] for s, e in spans}) >= ctx.distinct:
            return spans
        cues = [c for c in self._cues[cat].find(text) if script_boundary_ok(text, *c)]
        if not cues:
            return []
        ends = [ce for _, ce in cues]  # matches do not overlap: sorted by start and by end
        out = []
        for s, e in spans:
            i = bisect.bisect_left(ends, s - ctx.window)  # the first cue ending at most `window` before the hit
            if i < len(cues) and cues[i][0] <= e + ctx.window:
                out.append((s, e))
        return out

    def apply_batch(self, docs) -> list[Verdict | None]:
        found = self._matcher.find_batch([d.text for d in docs], [features.codepoints(d) for d in docs])
        return [self.apply(d, spans) for d, spans in zip(docs, found)]

    def apply(self, doc, spans: list[tuple[int, int]] | None = None) -> Verdict | None:
        text = doc.text
        counts = {c: [0, 0] for c in self.categories}
        found = {c: [] for c in self.context}
        for s, e in self.hits(text, spans):
            for cat in self._word_cats[text[s:e]]:
                if cat in found:
                    found[cat].append((s, e))
                    continue
                counts[cat][0] += 1
                counts[cat][1] += e - s
        for cat, cat_hits in found.items():
            doc.values[f"ng_{cat}_mentions"] = len(cat_hits)
            for s, e in self.in_context(text, cat, cat_hits):
                counts[cat][0] += 1
                counts[cat][1] += e - s
        if self.denominator == "ja_letters":
            cc = features.counts(doc)
            den = int(cc[[C["hiragana"], C["katakana"], C["kanji"], C["ja_punct"]]].sum())
        else:
            den = features.nonspace(doc)
        worst: tuple[float, str, str] | None = None
        for cat, (n, chars) in counts.items():
            r = chars / den if den else 0.0
            doc.values[f"ng_{cat}_hits"] = n
            doc.values[f"ng_{cat}_ratio"] = round(r, 4)
            lim = self.categories[cat]
            over_hits = lim.max_hits is None or n > lim.max_hits
            over_ratio = lim.max_ratio is None or r > lim.max_ratio
            if n and over_hits and over_ratio and (worst is None or r > worst[0]):
                worst = (r, cat, f"{n} {cat} hits, {r:.3f} of characters (limit: hits > {lim.max_hits}, "
                                  f"ratio > {lim.max_ratio})")
        if worst is not None:
            return (f"{self.name}.{worst[1]}", worst[2])
        return None

    def __repr__(self) -> str:
        return (f"NGWords(categories={self.categories!r}, files={self.files!r}, boundary={self.boundary!r}, "
                f"denominator={self.denominator!r}, context={self.context!r})")
