"""PNG plots of a finished run, linked from its report.md (optional: matplotlib, the `plots` extra).

    jpcurate report out/ --plots          # or --plots on filter / run / dedup
    write_plots(stats, "out")             # -> ["plots/removals.png", "plots/values.png", ...] or None

- `removals.png`: documents and megabytes kept and removed per reason;
- `values.png`: the histogram of every measured value that has a bound (length, kana fraction, repetition,
  perplexity, ...), with the bound drawn, from the fixed bins of `stats.json` (0.05 wide in [0, 1], powers of two
  above 1);
- `cluster_sizes.png` (dedup): how many clusters have each size.

`write_plots` returns None when matplotlib is not installed; the report then says how to get the plots.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

PLOTS_HINT = ('Plots: `jpcurate report DIR --plots` draws them (needs matplotlib: `pip install "jpcurate[plots]"`).')


def bin_edges(key: str) -> tuple[float, float] | None:
    """(left, right) of a `stats.histogram_bin` key; None for "<0", "nan", "inf"."""
    if key.startswith("2^"):
        k = int(key[2:])
        return 2.0**k, 2.0 ** (k + 1)
    try:
        lo = float(key)
    except ValueError:
        return None
    return lo, lo + 0.05


def write_plots(stats: dict[str, Any], out_dir: str | Path) -> list[str] | None:
    """Draw the run's plots into `out_dir/plots/`; the paths written, relative to `out_dir` (None: no matplotlib)."""
    try:
        import matplotlib  # optional dependency: the `plots` extra
    except ModuleNotFoundError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # optional, as above

    d = Path(out_dir) / "plots"
    d.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in (("removals.png", _removals), ("values.png", _values), ("cluster_sizes.png", _clusters)):
        fig = draw(plt, stats)
        if fig is None:
            continue
        tmp = d / f".{name}.tmp.png"
        fig.savefig(tmp, dpi=90, bbox_inches="tight", metadata={"Software": None})
        plt.close(fig)
        tmp.replace(d / name)
        written.append(f"plots/{name}")
    return written


def _removals(plt, stats: dict[str, Any]):
    reasons = stats.get("reasons", {})
    rbytes = stats.get("reason_bytes", {})
    labels = ["kept", *reasons]
    docs = [stats["documents"]["kept"], *reasons.values()]
    mb = [stats["bytes"]["kept"] / 1e6, *(rbytes.get(r, 0) / 1e6 for r in reasons)]
    colors = ["#4c9a5e"] + ["#c8553d"] * len(reasons)
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.8 + 0.32 * len(labels)), sharey=True)
    for ax, vals, title in ((axes[0], docs, "documents"), (axes[1], mb, "MB of text")):
        ax.barh(range(len(labels)), vals, color=colors)
        ax.set_title(title)
        ax.set_xscale("symlog" if max(vals, default=0) > 50 * max(min(v for v in vals if v) if any(vals) else 1, 1)
                      else "linear")
        for i, v in enumerate(vals):
            ax.text(v, i, f" {v:,.0f}" if title == "documents" else f" {v:.2f}", va="center", fontsize=8)
    axes[0].set_yticks(range(len(labels)), labels)
    axes[0].invert_yaxis()
    fig.suptitle("kept and removed, per reason")
    return fig


def _values(plt, stats: dict[str, Any]):
    bounds = stats.get("thresholds", {})
    names = [n for n in stats.get("histograms", {}) if n in bounds]
    if not names:
        return None
    cols = 3
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(12, 2.6 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        bins = [(e, n) for k, n in stats["histograms"][name].items() if (e := bin_edges(k)) is not None]
        logx = any(r > 1.0 for (_, r), _ in bins) and all(lo > 0 for (lo, _), _ in bins)
        ax.bar([lo for (lo, _), _ in bins], [n for _, n in bins], width=[r - lo for (lo, r), _ in bins],
               align="edge", color="#5b7db1")
        for side, v in bounds[name].items():
            ax.axvline(v, color="#c8553d", linestyle="--", label=f"{side} {v:g}")
        if logx:
            ax.set_xscale("log", base=2)
        ax.set_title(name, fontsize=10)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle("measured values (documents per bin) and the bounds of the kept range")
    fig.tight_layout()
    return fig


def _clusters(plt, stats: dict[str, Any]):
    sizes = stats.get("dedup", {}).get("cluster_sizes")
    if not sizes:
        return None
    xs = sorted(int(k) for k in sizes)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.bar([str(x) for x in xs], [sizes[str(x)] for x in xs], color="#5b7db1")
    ax.set_yscale("log")
    ax.set_xlabel("cluster size (documents)")
    ax.set_ylabel("clusters")
    ax.set_title("duplicate clusters by size (size 1: a document with no duplicate)")
    return fig
