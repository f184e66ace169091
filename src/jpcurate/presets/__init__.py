"""Named pipelines. `build_preset(name)` returns a fresh `Pipeline`; `PRESETS` lists the names.

- `ja-web`: ours (see `jpcurate.presets.ja_web`), for natural Japanese prose of every register.
- `swallow`, `llmjp-v1`, `fineweb2-ja`, `hojichar`, `gopher-en`: the peers' rule sets with their published
  thresholds (curation anchors §2-§3), rebuilt on our rule objects; deviations are noted in
  `jpcurate.presets.peers` next to each rule.
"""

from __future__ import annotations

from collections.abc import Callable

from jpcurate.pipeline import Pipeline
from jpcurate.presets import peers
from jpcurate.presets.ja_web import ja_web


def _ja_web(mecab: bool) -> Pipeline:
    return ja_web(mecab=mecab)


def _peer(name: str) -> Callable[[bool], Pipeline]:
    def build(mecab: bool) -> Pipeline:
        return getattr(peers, name.replace("-", "_"))(mecab=mecab)

    return build


PRESETS: dict[str, Callable[[bool], Pipeline]] = {
    "ja-web": _ja_web,
    "swallow": _peer("swallow"),
    "llmjp-v1": _peer("llmjp-v1"),
    "fineweb2-ja": _peer("fineweb2-ja"),
    "hojichar": _peer("hojichar"),
    "gopher-en": _peer("gopher-en"),
}


def build_preset(name: str, *, mecab: bool = False) -> Pipeline:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; available: {sorted(PRESETS)}")
    p = PRESETS[name](mecab)
    p.name = name + ("+mecab" if mecab else "")
    return p
