"""One markdown report comparing models: a table per suite, generation quality, grounding, contamination and
judge calibration, with PNG plots (matplotlib, Agg backend) of scores per task and category and of the
repetition distributions."""

from __future__ import annotations

import math
from pathlib import Path

from jpalign.eval.summary import GEN_FLAGS


def _fmt(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _table(header: list[str], rows: list[list]) -> list[str]:
    return (["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows] + [""])


def _name(model: str, meta: dict) -> str:
    marks = meta.get(model, {}).get("contaminated") or []
    return f"{model} ⚠ contaminated ({', '.join(marks)})" if marks else model


def _llmjp_section(summary: dict, meta: dict) -> list[str]:
    models = [m for m in summary if "llmjp" in summary[m]]
    if not models:
        return []
    tasks = sorted({t for m in models for t in summary[m]["llmjp"] if t not in ("AVG", "jsts")})
    lines = ["## llm-jp-eval-style JGLUE", "",
             "Generated answers (4-shot, greedy, text before the first blank line, NFKC), scored with llm-jp-eval's "
             "metrics (JCommonsenseQA, JNLI: exact_match; JSQuAD: char_f1). AVG = mean of those tasks; JSTS "
             "(Pearson/Spearman) is outside it. `mc` = accuracy by log-likelihood of each choice (the harness "
             "way), reported beside the generated answer; `fmt fail` = share of answers that were not a valid label "
             "(JSTS: not a number, scored -2 as llm-jp-eval does); `not a span` = JSQuAD answers that are not a "
             "span of the paragraph; `shots` = mean few-shot examples used (as many of the 4 as fit the model's "
             "context); `prompts cut` = largest share of prompts still cut from the left to fit.",
             ""]
    header = ["model", "AVG"] + [f"{t}" for t in tasks] + ["jsts pearson", "jsts spearman"]
    rows = []
    for m in models:
        s = summary[m]["llmjp"]
        rows.append([_name(m, meta), s["AVG"]] + [s.get(t, {}).get("score") for t in tasks]
                    + [s.get("jsts", {}).get("pearson"), s.get("jsts", {}).get("spearman")])
    lines += _table(header, rows)
    cols = [(t, "mc_acc", f"{t} mc") for t in tasks if any("mc_acc" in summary[m]["llmjp"].get(t, {}) for m in models)]
    cols += [(t, "format_fail", f"{t} fmt fail") for t in [*tasks, "jsts"]]
    cols += [("jsquad", "not_span", "jsquad not a span")] + [(t, "shots", f"{t} shots") for t in [*tasks, "jsts"]]
    header = ["model"] + [c[2] for c in cols] + ["prompts cut to fit"]
    rows = []
    for m in models:
        s = summary[m]["llmjp"]
        cut = [v["truncated"] for k, v in s.items() if k != "AVG" and not math.isnan(v.get("truncated", math.nan))]
        rows.append([_name(m, meta)] + [s.get(t, {}).get(k) for t, k, _ in cols] + [max(cut) if cut else None])
    return lines + _table(header, rows) + ["![llm-jp scores](llmjp_scores.png)", ""]


def _suite_section(summary: dict, meta: dict, suite: str, title: str, scale: str) -> list[str]:
    models = [m for m in summary if suite in summary[m]]
    if not models:
        return []
    lines = [f"## {title}", ""]
    judged = [m for m in models if summary[m][suite]["judge"]]
    if judged:
        cats = sorted({c for m in judged for c in summary[m][suite]["judge"]["per_category"]})
        turns = sorted({t for m in judged for t in summary[m][suite]["judge"]["per_turn"]})
        header = ["model", f"mean ({scale})"] + ([f"turn {t}" for t in turns] if len(turns) > 1 else []) + [
            c for c in cats if c != "all"] + ["judged", "unparseable", "out of range", "errors"]
        rows = []
        for m in judged:
            j = summary[m][suite]["judge"]
            rows.append([_name(m, meta), j["mean"]] + ([j["per_turn"].get(t) for t in turns] if len(turns) > 1 else [])
                        + [j["per_category"].get(c) for c in cats if c != "all"]
                        + [j["judged"], j["unparseable"], j["out_of_range"], j["error"]])
        lines += _table(header, rows)
        if suite == "mt_bench":
            lines += ["![MT-Bench per category](mt_bench_categories.png)", ""]
    else:
        lines += ["No judge was configured: answers were generated and only the reference-free metrics below "
                  "are reported.", ""]
    return lines


def _generation_section(summary: dict, meta: dict) -> list[str]:
    rows = []
    for m in summary:
        for suite in ("mt_bench", "elyza"):
            if suite in summary[m]:
                g = summary[m][suite]["generation"]
                rows.append([_name(m, meta), suite, g["n"], g["truncated"]] + [g[f] for f in GEN_FLAGS]
                            + [g[f"char_seq_rep_{n}"] for n in (1, 2, 4)] + [g["tok_seq_rep_4"]]
                            + [g["char_distinct_1"], g["char_distinct_2"], g["tok_distinct_2"]])
    if not rows:
        return []
    header = ["model", "suite", "answers", "prompt cut to fit", "hit max tokens", "echo prompt", "template leak",
              "next-turn leak", "seq-rep-1 (char)", "seq-rep-2 (char)", "seq-rep-4 (char)", "seq-rep-4 (tok)",
              "distinct-1 (char)",
              "distinct-2 (char)", "distinct-2 (tok)"]
    return (["## Generation quality", "",
             "Shares of answers that hit max tokens without EOS, echo the question, contain a template marker "
             "(\"###\", role tags) or write the next user turn; seq-rep-n (Welleck et al. 2019, mean per answer) and "
             "corpus distinct-n (Li et al. 2016, distinct n-grams / generated units) on characters and tokens.", ""]
            + _table(header, rows) + ["![repetition](repetition.png)", ""])


def _contamination_section(contamination: dict) -> list[str]:
    if not contamination:
        return []
    lines = ["## Contamination", ""]
    for corpus, tasks in contamination.items():
        t0 = next(iter(tasks.values()), {})
        lines += [f"Corpus `{corpus}`: share of examples whose character {t0.get('n', 13)}-gram overlap with the "
                  f"corpus is above {t0.get('threshold')}.", ""]
        lines += _table(["task", "examples", "contaminated", "share", "mean overlap"],
                        [[t, v["examples"], v["contaminated"], v["share"], v["mean_overlap"]]
                         for t, v in tasks.items()])
    return lines


def _calibration_section(cal: dict | None) -> list[str]:
    if not cal:
        return []
    return ["## Judge calibration", "",
            f"The configured judge (`{cal.get('judge')}`) re-scored {cal['n']} GPT-4-judged Japanese MT-Bench first "
            f"turns ({cal.get('failed', 0)} judgements unparseable or failed, left out).", ""] + _table(
        ["n", "Spearman vs GPT-4", "Pearson vs GPT-4", "mean |ours - GPT-4|"],
        [[cal["n"], cal["spearman"], cal["pearson"], cal["mean_abs_diff"]]])


def plot_report(out_dir: Path, summary: dict, records: list[dict]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    models = list(summary)
    llm = [m for m in models if "llmjp" in summary[m]]
    if llm:
        tasks = sorted({t for m in llm for t in summary[m]["llmjp"] if t != "AVG"})
        mc_tasks = [t for t in tasks if any("mc_acc" in summary[m]["llmjp"].get(t, {}) for m in llm)]
        fig, axes = plt.subplots(1, 2 if mc_tasks else 1, figsize=(3 + 1.6 * (len(tasks) + len(mc_tasks)), 3.2),
                                 squeeze=False, gridspec_kw={"width_ratios": [len(tasks), len(mc_tasks)]}
                                 if mc_tasks else None)
        w = 0.8 / len(llm)
        panels = [(axes[0][0], tasks, "generated answer (llm-jp metric)")]
        if mc_tasks:
            panels.append((axes[0][1], mc_tasks, "log-likelihood choice accuracy"))
        for ax, ts, title in panels:
            for i, m in enumerate(llm):
                s = summary[m]["llmjp"]
                field = "mc_acc" if "choice" in title else None
                vals = [s.get(t, {}).get(field) if field else s.get(t, {}).get("score", s.get(t, {}).get("pearson"))
                        for t in ts]
                vals = [0 if v is None or math.isnan(v) else v for v in vals]
                ax.bar([k + i * w for k in range(len(ts))], vals, w, label=m)
            labels = [t + (" (pearson)" if t == "jsts" else "") for t in ts]
            ax.set_xticks([k + 0.4 - w / 2 for k in range(len(ts))], labels, fontsize=8)
            ax.set_title(title, fontsize=9)
        axes[0][0].set_ylabel("score")
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out_dir / "llmjp_scores.png", dpi=100)
        plt.close(fig)
        written.append("llmjp_scores.png")
    judged = [m for m in models if (summary[m].get("mt_bench") or {}).get("judge")]
    if judged:
        cats = sorted({c for m in judged for c in summary[m]["mt_bench"]["judge"]["per_category"]})
        fig, ax = plt.subplots(figsize=(1.5 + 1.1 * len(cats), 3.2))
        w = 0.8 / len(judged)
        for i, m in enumerate(judged):
            pc = summary[m]["mt_bench"]["judge"]["per_category"]
            ax.bar([k + i * w for k in range(len(cats))], [pc.get(c, 0) for c in cats], w, label=m)
        ax.set_xticks([k + 0.4 - w / 2 for k in range(len(cats))], cats, rotation=30)
        ax.set_ylabel("judge score (1-10)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out_dir / "mt_bench_categories.png", dpi=100)
        plt.close(fig)
        written.append("mt_bench_categories.png")
    gens = [r for r in records if r["kind"] == "gen"]
    if gens:
        fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
        for ax, key, title in ((axes[0], "char_seq_rep_4", "seq-rep-4 (characters)"),
                               (axes[1], "tok_seq_rep_4", "seq-rep-4 (tokens)")):
            data = [[g["rep"][key] for g in gens if g["model"] == m and key in g["rep"]] for m in models]
            keep = [(m, d) for m, d in zip(models, data) if d]
            if keep:
                ax.boxplot([d for _, d in keep])
                ax.set_xticks(range(1, len(keep) + 1), [m for m, _ in keep], rotation=15, fontsize=7)
            ax.set_title(title, fontsize=9)
            ax.set_ylim(-0.02, 1.02)
        fig.tight_layout()
        fig.savefig(out_dir / "repetition.png", dpi=100)
        plt.close(fig)
        written.append("repetition.png")
    return written


def write_report(out_dir: str | Path, summary: dict, records: list[dict], *, models: dict,
                 contamination: dict | None = None, calibration: dict | None = None,
                 notes: list[str] = ()) -> Path:
    """Write out_dir/report.md and its PNGs; `models` = {name: {"path", "contaminated": [reasons]}}."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = ["# Evaluation report", ""]
    lines += _table(["model", "path", "contaminated"],
                    [[m, f"`{v.get('path')}`", ", ".join(v.get("contaminated") or []) or "no"]
                     for m, v in models.items()])
    lines += [f"- {n}" for n in notes] + ([""] if notes else [])
    lines += _llmjp_section(summary, models)
    lines += _suite_section(summary, models, "mt_bench", "Japanese MT-Bench", "1-10")
    lines += _suite_section(summary, models, "elyza", "ELYZA-tasks-100", "1-5")
    lines += _generation_section(summary, models)
    lines += _contamination_section(contamination or {})
    lines += _calibration_section(calibration)
    plot_report(out_dir, summary, records)
    path = out_dir / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
