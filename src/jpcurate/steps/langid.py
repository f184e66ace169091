"""Language identification from script ratios: Japanese vs Chinese vs Korean vs English (Latin script).

Japanese is the only language written with kana; Chinese uses the same ideographs without kana; Korean uses
Hangul; English (and other Western languages, reported as "en") uses Latin letters. Over the letters of a text
(kana + kanji + Latin + Hangul + other letters):

- Hangul share >= 0.3                                  -> "ko", score = Hangul share
- CJK share >= 0.5 and kana / CJK >= `min_kana` (0.05) -> "ja", score = CJK share
- CJK share >= 0.5 otherwise                           -> "zh", score = CJK share
- Latin share >= 0.5                                   -> "en", score = Latin share
- otherwise the largest group, with its share as the score ("und" for a text without letters).

`min_kana` 0.05 keeps kanji-dense Japanese (kanbun-style literature, legal text) while Chinese, which has no
kana, scores 0; a Chinese page quoting a few Japanese kana stays "zh".
"""

from __future__ import annotations

from jpcurate.pipeline import Step, Verdict
from jpcurate.text import features
from jpcurate.text.charclass import C, class_counts


def identify_counts(counts, *, min_kana: float = 0.05) -> tuple[str, float]:
    hira, kata, kanji = int(counts[C["hiragana"]]), int(counts[C["katakana"]]), int(counts[C["kanji"]])
    latin, hangul, other = int(counts[C["latin"]]), int(counts[C["hangul"]]), int(counts[C["other"]])
    cjk = hira + kata + kanji
    letters = cjk + latin + hangul + other
    if letters == 0:
        return "und", 0.0
    if hangul / letters >= 0.3:
        return "ko", hangul / letters
    share = cjk / letters
    if share >= 0.5:
        return ("ja" if (hira + kata) / cjk >= min_kana else "zh"), share
    if latin / letters >= 0.5:
        return "en", latin / letters
    best = max((("ja" if hira + kata else "zh"), share), ("en", latin / letters), ("ko", hangul / letters),
               ("und", other / letters), key=lambda kv: kv[1])
    return best[0], best[1]


def identify(text: str, *, min_kana: float = 0.05) -> tuple[str, float]:
    """(language, score) of `text`, e.g. `("ja", 0.97)`."""

    return identify_counts(class_counts(text), min_kana=min_kana)


class LanguageFilter(Step):
    """Stores `lang` and `lang_score`; rejects (`lang`) unless the language is in `langs` with `min_score`."""

    def __init__(self, langs: tuple[str, ...] | list[str] = ("ja",), *, min_score: float = 0.5,
                 min_kana: float = 0.05, name: str = "lang") -> None:
        self.name, self.langs, self.min_score, self.min_kana = name, tuple(langs), min_score, min_kana

    def apply_batch(self, docs) -> list[Verdict | None]:
        features.prepare_counts(list(docs))  # one vectorised pass for the batch; later rules reuse the counts
        return [self.apply(d) for d in docs]

    def apply(self, doc) -> Verdict | None:
        lang, score = identify_counts(features.count_list(doc), min_kana=self.min_kana)
        doc.values["lang"] = lang
        doc.values["lang_score"] = round(score, 4)
        if lang not in self.langs:
            return (self.name, f"language {lang} (score {score:.2f}), wanted {'/'.join(self.langs)}")
        if score < self.min_score:
            return (self.name, f"{lang} score {score:.2f} < {self.min_score}")
        return None
