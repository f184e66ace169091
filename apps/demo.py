"""`make demo`: raw Japanese web-like text to an evaluated, chatting model on CPU, on the bundled data.

    python apps/demo.py                      # or: make demo (reuses every finished stage whose inputs did not change)
    python apps/demo.py --fresh true         # rebuild every stage
    python apps/demo.py --only chat          # one stage (the stages before it must have finished once)
    python apps/demo.py --start sft          # from a stage on;  --stop pretrain: up to a stage
    python apps/demo.py --steps 100 --out_dir runs/demo-quick

Stages (each the app you would run by hand, printed as it runs; everything lands in runs/demo/):
raw (clean Aozora + UD GSD text with generated web junk; jpmoe.data.raw_mix) -> curate (jpcurate filter ja-web +
dedup, per-reason reports) -> tokenizer -> shards (+ a two-stage curriculum mixture) -> pretrain -> sft -> dpo
(each exports DIR/hf) -> chat (apps/serve.py + the official openai client, two turns) -> eval (apps/evaluate.py:
base vs SFT vs DPO) -> ablate (raw vs curated pretraining, apps/ablate.py) -> report (runs/demo/report.md).
No evaluation set (data/jglue, data/elyza_tasks_100, data/japanese_mt_bench) and no crawled page (data/web_*) is
trained on; data/web_en only measures the tokenizer's English characters per token.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from jpmoe.pipeline_report import chat, loss_line, loss_summary, write_report
from jpmoe.pipeline_stages import Stage, StageFailed, StageRunner
from jpmoe.train import parse_args

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
SOURCES = ("classics", "general")
MARKER = ".jpllm-demo"


@dataclass
class Args:
    config: str = ""
    out_dir: str = "runs/demo"
    fresh: bool = False  # rebuild every stage
    only: str = ""  # comma-separated stage names: run just these
    start: str = ""  # run from this stage on
    stop: str = ""  # run up to and including this stage
    steps: int = 600  # pretraining steps
    vocab_size: int = 4000
    seq_len: int = 128
    micro_batch: int = 16
    lr: float = 1e-2  # a model this small trains best fast
    pref_loss: str = "dpo"  # "dpo" | "orpo" | "simpo" for the preference stage
    eval_limit: int = 20  # items per evaluation suite
    junk_share: float = 0.35  # share of generated junk documents in the raw text
    ablate_config: str = "apps/configs/ablate_demo.toml"
    heartbeat_s: float = 5.0


def mixture_text(tokens: int) -> str:
    """Two curriculum stages that switch at an exact token count: the classics first, then the general text."""
    half = tokens // 2
    return f"""# written by apps/demo.py
[sources]
classics = "shards/classics"
general = "shards/general"

[[stages]]
name = "classics-heavy"
tokens = {half}
weights = {{ classics = 0.7, general = 0.3 }}

[[stages]]
name = "general-heavy"
tokens = {tokens - half}
weights = {{ classics = 0.3, general = 0.7 }}
"""


def write_if_changed(path: Path, text: str) -> Path:
    """Same content, same file: the stage fingerprint (a content hash) stays, and so does reuse."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return path


def build_stages(args: Args, out: Path, py: str = sys.executable) -> list[Stage]:
    """The demo's stage graph, in run order. Paths are relative to the repository root where the apps expect it."""
    o = os.path.relpath(out, ROOT)
    raw, cur, ded = f"{o}/raw", f"{o}/curated", f"{o}/deduped"
    tok, pre, sft, dpo = f"{o}/tokenizer", f"{o}/pretrain", f"{o}/sft", f"{o}/dpo"
    app = lambda name: [py, f"apps/{name}.py"]  # noqa: E731
    curate = []
    for s in SOURCES:
        curate += [[py, "-m", "jpcurate", "filter", "--preset", "ja-web", "--input", f"{raw}/{s}.jsonl",
                    "--output", f"{cur}/{s}", "--quiet"],
                   [py, "-m", "jpcurate", "dedup", "--input", f"{cur}/{s}/kept", "--output", f"{ded}/{s}", "--quiet"]]
    mixture = write_if_changed(out / "mixture.toml", mixture_text(args.steps * args.micro_batch * args.seq_len))
    models = [f"{pre}/hf", f"{sft}/hf", f"{dpo}/hf"]
    src = ROOT / "src"
    return [
        Stage("raw", [[py, "-m", "jpmoe.data.raw_mix", "--out_dir", raw, "--junk_share", str(args.junk_share)]],
              inputs=[DATA / "aozora/works.jsonl", DATA / "aozora_more/works.jsonl",
                      DATA / "ud_japanese_gsd/sentences.jsonl", src / "jpmoe/data/raw_mix.py"],
              outputs=[out / "raw"], summary=lambda: raw_summary(out)),
        Stage("curate", curate, inputs=[src / "jpcurate/presets/ja_web.py"], after=["raw"],
              outputs=[out / "curated", out / "deduped"], summary=lambda: curate_summary(out)),
        Stage("tokenizer", [app("train_tokenizer") + [
            "--input", ",".join(f"{ded}/{s}/kept" for s in SOURCES), "--out_dir", tok, "--vocab_size",
            str(args.vocab_size), "--held_out_docs", "20", "--held_out_en", "data/web_en/dolma_test_cc_en.jsonl"]],
              inputs=[ROOT / "apps/train_tokenizer.py"], after=["curate"], outputs=[out / "tokenizer"],
              summary=lambda: tokenizer_summary(out)),
        Stage("shards", [app("prepare_data") + ["--input", f"{ded}/{s}/kept", "--tokenizer", tok,
                                                "--out_dir", f"{o}/shards/{s}"] for s in SOURCES],
              inputs=[ROOT / "apps/prepare_data.py"], after=["tokenizer"], outputs=[out / "shards"],
              summary=lambda: shards_summary(out)),
        Stage("pretrain", [app("pretrain") + [
            "--config", "apps/configs/pretrain_demo.toml", "--tokenizer", tok, "--mixture", f"{o}/mixture.toml",
            "--out_dir", pre, "--max_steps", str(args.steps), "--seq_len", str(args.seq_len),
            "--micro_batch", str(args.micro_batch), "--lr", str(args.lr)]],
              inputs=[ROOT / "apps/pretrain.py", ROOT / "apps/configs/pretrain_demo.toml", mixture],
              after=["shards"], outputs=[out / "pretrain"], summary=lambda: loss_summary(out / "pretrain")),
        Stage("sft", [app("sft") + ["--base", pre, "--data", "data/posttrain/sft.jsonl", "--out_dir", sft,
                                    "--config", "apps/configs/sft_demo.toml"]],
              inputs=[ROOT / "apps/sft.py", ROOT / "apps/configs/sft_demo.toml", DATA / "posttrain/sft.jsonl"],
              after=["pretrain"], outputs=[out / "sft/hf"], summary=lambda: loss_line(out / "sft")),
        Stage("dpo", [app("dpo") + ["--base", f"{sft}/hf", "--data", "data/posttrain/dpo.jsonl", "--loss",
                                    args.pref_loss, "--out_dir", dpo, "--config", "apps/configs/dpo_demo.toml"]],
              inputs=[ROOT / "apps/dpo.py", ROOT / "apps/configs/dpo_demo.toml", DATA / "posttrain/dpo.jsonl"],
              after=["sft"], outputs=[out / "dpo/hf"], summary=lambda: loss_line(out / "dpo")),
        Stage("chat", action=lambda: chat(py, ROOT, f"{dpo}/hf", out / "chat"), inputs=[ROOT / "apps/serve.py"],
              after=["dpo"], outputs=[out / "chat/transcript.md"], rerun=f"{py} apps/demo.py --only chat"),
        Stage("eval", [app("evaluate") + [x for m in models for x in ("--model", m)] + [
            "--out_dir", f"{o}/eval", "--limit", str(args.eval_limit)] + [  # overlap with every training input
            x for c in [*(f"{ded}/{s}/kept" for s in SOURCES), "data/posttrain/sft.jsonl", "data/posttrain/dpo.jsonl"]
            for x in ("--contamination", c)]],
              inputs=[ROOT / "apps/evaluate.py"], after=["pretrain", "sft", "dpo"],
              outputs=[out / "eval/results.json", out / "eval/report.md"], summary=lambda: eval_summary(out)),
        Stage("ablate", [app("ablate") + [
            "--config", args.ablate_config, "--raw", ",".join(f"{raw}/{s}.jsonl" for s in SOURCES),
            "--curated", ",".join(f"{ded}/{s}/kept" for s in SOURCES), "--heldout", f"{raw}/heldout.jsonl",
            "--tokenizer", tok, "--out_dir", f"{o}/ablate"]],
              inputs=[ROOT / "apps/ablate.py", ROOT / args.ablate_config], after=["curate", "tokenizer"],
              outputs=[out / "ablate"], summary=lambda: ablate_summary(out)),
    ]


def raw_summary(out: Path) -> str:
    summary = json.loads((out / "raw/summary.json").read_text())
    parts = [f"{s}: {v['docs']} docs ({v['kinds'].get('clean', 0)} clean)" for s, v in summary["sources"].items()]
    return "; ".join(parts) + f"; held out: {summary['heldout_docs']} docs"


def shards_summary(out: Path) -> str:
    metas = {s: json.loads((out / "shards" / s / "meta.json").read_text()) for s in SOURCES}
    return "; ".join(f"{s}: {m['num_tokens']:,} tokens in {m['num_docs']} docs" for s, m in metas.items())


def tokenizer_summary(out: Path) -> str:
    report = json.loads((out / "tokenizer/report.json").read_text())
    return f"chars/token {report['chars_per_token']}"


def curate_summary(out: Path) -> str:
    parts = []
    for s in SOURCES:
        stats = json.loads((out / "curated" / s / "stats.json").read_text())
        f, d = stats["documents"], json.loads((out / "deduped" / s / "stats.json").read_text())["documents"]
        top = ", ".join(f"{k} {v}" for k, v in sorted(stats["reasons"].items(), key=lambda kv: -kv[1])[:3])
        parts.append(f"{s}: {f['input']} docs -> {f['kept']} after filters ({top}, ...) -> {d['kept']} after dedup")
    return "; ".join(parts)


def eval_summary(out: Path) -> str:
    summary = json.loads((out / "eval/results.json").read_text())["summary"]
    avg = ", ".join(f"{m} {s['llmjp']['AVG']:.3f}" for m, s in summary.items())
    cut = ", ".join(f"{m} {s['elyza']['generation']['hit_max_tokens']:.2f}" for m, s in summary.items())
    return f"llm-jp AVG: {avg}; ELYZA answers hitting max tokens: {cut}"


def ablate_summary(out: Path) -> str:
    r = json.loads((out / "ablate/results.json").read_text())
    return "; ".join(f"{a}: held-out ppl {r[a]['heldout_ppl']:.1f}, seq-rep-4 {r[a]['seq_rep_4']:.3f}"
                     for a in ("raw", "curated"))


def select(names: list[str], args: Args) -> set[str] | None:
    """The stages this run executes (None: all), from --only / --start / --stop."""
    for flag in ("start", "stop"):
        if getattr(args, flag) and getattr(args, flag) not in names:
            raise ValueError(f"--{flag} {getattr(args, flag)!r}: no such stage; stages: {', '.join(names)}")
    only = [s for s in args.only.split(",") if s]
    if unknown := [s for s in only if s not in names]:
        raise ValueError(f"--only {unknown}: no such stage; stages: {', '.join(names)}")
    if only:
        return set(only)
    if not (args.start or args.stop):
        return None
    lo = names.index(args.start) if args.start else 0
    hi = names.index(args.stop) if args.stop else len(names) - 1
    return set(names[lo:hi + 1])


def check_inputs(stages: list[Stage], selected: set[str] | None) -> None:
    """A missing app, config or data file of a stage that will run is named now, not after minutes of training."""
    missing = [f"{s.name}: {os.path.relpath(p, ROOT)}" for s in stages if selected is None or s.name in selected
               for p in s.inputs if not p.exists()]
    if missing:
        raise FileNotFoundError("inputs missing for these stages (use --stop/--only to run the others):\n    "
                                + "\n    ".join(missing))


def claim(out: Path) -> Path:
    """Stages remove their own outputs before a changed rerun: only a directory a demo made (MARKER) is used."""
    if out.exists() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise ValueError(f"{out} exists and was not made by apps/demo.py; choose another --out_dir")
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("made by apps/demo.py; its stages replace their own outputs\n")
    return out


def check_args(args: Args) -> None:
    """Bad values stop here, not after minutes of curation and training."""
    if args.steps < 20:  # loss_summary compares the mean of the first 10 steps with that of the last 10
        raise ValueError(f"--steps must be >= 20, got {args.steps}")
    for name in ("micro_batch", "seq_len", "vocab_size", "eval_limit"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.pref_loss not in ("dpo", "orpo", "simpo"):
        raise ValueError(f"--pref_loss must be dpo, orpo or simpo, got {args.pref_loss!r}")
    if not 0 <= args.junk_share < 1 or args.heartbeat_s <= 0:
        raise ValueError(f"--junk_share must be in [0, 1) and --heartbeat_s > 0, got {args.junk_share}, "
                         f"{args.heartbeat_s}")


def main(args: Args) -> Path:
    check_args(args)
    t0 = time.perf_counter()
    out = claim((ROOT / args.out_dir).resolve())
    stages = build_stages(args, out)
    names = [s.name for s in stages] + ["report"]
    selected = select(names, args)
    check_inputs(stages, selected)
    # Passive OpenMP waiting: on a busy 2-core machine spinning threads slow torch down tenfold.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    runner = StageRunner(ROOT, out / "stages", heartbeat_s=args.heartbeat_s)
    try:
        results = runner.run(stages, fresh=args.fresh, selected=None if selected is None else selected - {"report"})
    except StageFailed as e:
        print(f"\n!! {e}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    if selected is None or "report" in selected:
        report = write_report(out, results, time.perf_counter() - t0, names[:-1])
        print(f"\n== report: {report}", flush=True)
    ran, reused = (sum(r.status == s for r in results) for s in ("ran", "reused"))
    print(f"== demo finished in {time.perf_counter() - t0:.0f} s ({ran} stages ran, {reused} reused)", flush=True)
    return out


if __name__ == "__main__":
    try:
        main(parse_args(Args))
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
