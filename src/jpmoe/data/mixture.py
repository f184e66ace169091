"""The data mixture: named token sources and training stages, each with source weights and a token budget.

```toml
[sources]                      # name = token-shard directory (relative to this file)
aozora = "shards/aozora"
wiki = "shards/jsquad"

[[stages]]
name = "ja-heavy"
tokens = 2_000_000             # this stage's token budget
weights = { aozora = 0.7, wiki = 0.3 }
```

Sampling is deterministic given the seed and needs no state beyond the global sample index: samples are grouped
in chunks of CHUNK; in each chunk every source gets its weight's share (largest remainder), shuffled by an RNG
seeded with (seed, stage, chunk). A source is read sequentially, continuing across stages, so a resumed run
draws exactly the same sequences. Stage boundaries fall at exact token counts (the budget in samples).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jpmoe.data.shards import TokenSource

CHUNK = 4096
WEIGHT_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Stage:
    name: str
    tokens: int
    weights: dict[str, float]


@dataclass(frozen=True)
class Mixture:
    sources: dict[str, Path]
    stages: tuple[Stage, ...]

    def open(self) -> dict[str, TokenSource]:
        return {name: TokenSource(path) for name, path in self.sources.items()}


def _stage(i: int, raw: dict, sources: dict[str, Path], where: str) -> Stage:
    unknown = set(raw) - {"name", "tokens", "weights"}
    if unknown:
        raise ValueError(f"{where}: stage {i} has unknown keys {sorted(unknown)}; allowed: name, tokens, weights")
    name = str(raw.get("name", f"stage{i}"))
    tokens, weights = raw.get("tokens"), raw.get("weights")
    if not isinstance(tokens, int) or tokens <= 0:
        raise ValueError(f"{where}: stage {name!r} needs a positive integer `tokens` budget, got {tokens!r}")
    if not isinstance(weights, dict) or not weights:
        raise ValueError(f"{where}: stage {name!r} needs a `weights` table naming its sources")
    missing = sorted(set(weights) - set(sources))
    if missing:
        raise ValueError(f"{where}: stage {name!r} names source(s) {missing} not listed in [sources] "
                         f"(known: {sorted(sources)})")
    for src, w in weights.items():
        if not isinstance(w, int | float) or isinstance(w, bool) or not math.isfinite(w) or w < 0:  # nan passed
            raise ValueError(f"{where}: stage {name!r} weight of {src!r} must be a number >= 0, got {w!r}")
    total = sum(weights.values())
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        raise ValueError(f"{where}: stage {name!r} weights add up to {total:.6g}, not 1 ({weights})")
    return Stage(name=name, tokens=tokens, weights={k: float(v) for k, v in weights.items()})


def parse_mixture(spec: dict, *, base_dir: Path, where: str = "mixture") -> Mixture:
    """Validate a mixture dict (as read from TOML); paths are relative to `base_dir`."""
    unknown = set(spec) - {"sources", "stages"}
    if unknown:
        raise ValueError(f"{where}: unknown top-level keys {sorted(unknown)}; allowed: sources, stages")
    if not spec.get("sources"):
        raise ValueError(f"{where}: no [sources] table")
    if not isinstance(spec["sources"], dict) or not all(isinstance(v, str) for v in spec["sources"].values()):
        raise ValueError(f"{where}: [sources] must map names to shard directories (strings), got {spec['sources']!r}")
    sources = {name: (base_dir / path).resolve() for name, path in spec["sources"].items()}
    if not spec.get("stages"):
        raise ValueError(f"{where}: no [[stages]]")
    if not isinstance(spec["stages"], list) or not all(isinstance(st, dict) for st in spec["stages"]):
        raise ValueError(f"{where}: [[stages]] must be an array of tables, got {spec['stages']!r}")
    stages = tuple(_stage(i, raw, sources, where) for i, raw in enumerate(spec["stages"]))
    for name in sorted(sources):
        if not (sources[name] / "meta.json").is_file():
            raise FileNotFoundError(f"{where}: source {name!r} -> {sources[name]} has no token shards (meta.json)")
    return Mixture(sources=sources, stages=stages)


def load_mixture(path: str | Path) -> Mixture:
    path = Path(path)
    with path.open("rb") as f:
        spec = tomllib.load(f)
    return parse_mixture(spec, base_dir=path.parent, where=str(path))


def _chunk_counts(weights: np.ndarray, n: int) -> np.ndarray:
    """Split n samples by weight with the largest-remainder method (ties to the earlier source)."""
    exact = weights * n
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return counts


class MixtureStream:
    """Global sample index -> (stage index, tokens of length seq_len + 1). Stateless: the index is the position."""

    def __init__(self, mixture: Mixture, *, seq_len: int, seed: int) -> None:
        self.mixture, self.seq_len, self.seed = mixture, seq_len, seed
        self.sources = mixture.open()
        self.names = sorted(self.sources)
        vocab = {s.vocab_size for s in self.sources.values()}
        if len(vocab) > 1:
            raise ValueError(f"token sources were made with different vocabularies: {sorted(vocab)}")
        self.vocab_size = vocab.pop()
        short = [f"{st.name!r} ({st.tokens})" for st in mixture.stages if st.tokens < seq_len]
        if short:  # it would get one whole sequence: more tokens than its budget
            raise ValueError(f"stage token budgets shorter than one sequence of seq_len {seq_len}: {', '.join(short)}")
        self.stage_samples = [st.tokens // seq_len for st in mixture.stages]
        self.stage_starts = np.cumsum([0] + self.stage_samples)
        self._cache: tuple[tuple[int, int], np.ndarray, np.ndarray] | None = None

    @property
    def total_samples(self) -> int:
        return int(self.stage_starts[-1])

    def stage_of(self, index: int) -> int:
        """The stage a global sample index falls in (the last stage continues past its budget)."""
        return min(int(np.searchsorted(self.stage_starts, index, side="right") - 1), len(self.stage_samples) - 1)

    def _weights(self, stage: int) -> np.ndarray:
        w = self.mixture.stages[stage].weights
        return np.array([w.get(n, 0.0) for n in self.names])

    def _consumed(self, stage: int, samples: int) -> np.ndarray:
        """Samples taken from each source by the first `samples` samples of `stage`."""
        w = self._weights(stage)
        full, rest = divmod(samples, CHUNK)
        out = _chunk_counts(w, CHUNK) * full
        return out + (_chunk_counts(w, rest) if rest else 0)

    def _source_base(self, stage: int) -> np.ndarray:
        """Samples each source gave to all earlier stages (a source is read on, never repeated early)."""
        return sum((self._consumed(s, self.stage_samples[s]) for s in range(stage)), np.zeros(len(self.names), int))

    def _chunk(self, stage: int, chunk: int) -> tuple[np.ndarray, np.ndarray]:
        if self._cache and self._cache[0] == (stage, chunk):
            return self._cache[1], self._cache[2]
        # The last stage runs on past its budget, so its chunks are always full.
        last = stage == len(self.stage_samples) - 1
        n = CHUNK if last else min(CHUNK, self.stage_samples[stage] - chunk * CHUNK)
        counts = _chunk_counts(self._weights(stage), n)
        labels = np.repeat(np.arange(len(self.names)), counts)
        np.random.default_rng([self.seed, stage, chunk]).shuffle(labels)
        within = np.zeros(n, dtype=np.int64)
        base = self._source_base(stage) + self._consumed(stage, chunk * CHUNK)
        for k in range(len(self.names)):
            mask = labels == k
            within[mask] = base[k] + np.arange(mask.sum())
        self._cache = ((stage, chunk), labels, within)
        return labels, within

    def source_of(self, index: int) -> tuple[str, int]:
        """(source name, sample number within that source) for a global sample index."""
        stage = self.stage_of(index)
        local = index - int(self.stage_starts[stage])
        labels, within = self._chunk(stage, local // CHUNK)
        return self.names[labels[local % CHUNK]], int(within[local % CHUNK])

    def sample(self, index: int) -> np.ndarray:
        """seq_len + 1 tokens (inputs and shifted labels) for a global sample index."""
        name, j = self.source_of(index)
        return self.sources[name].read(j * self.seq_len, self.seq_len + 1)

    def batch(self, start: int, size: int) -> np.ndarray:
        """Samples [start, start + size) stacked: (size, seq_len + 1) int64."""
        return np.stack([self.sample(i) for i in range(start, start + size)])

    def epochs(self) -> dict[str, float]:
        """How many times each source is read over the whole stage plan (> 1 means repetition)."""
        used = self._source_base(len(self.stage_samples))
        return {n: float(used[k] * self.seq_len / len(self.sources[n])) for k, n in enumerate(self.names)}


def steps_for(total_samples: int, global_batch: int) -> int:
    return math.ceil(total_samples / global_batch)
