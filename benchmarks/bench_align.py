"""Fused, token-chunked jpalign losses vs the unfused path vs TRL's chunked log-prob function: peak memory and time.

Same inputs in every variant: last hidden states (N, H) and an lm_head weight (V, H), float32, every token
labelled (the worst case for us: the fused path skips unlabelled prompt tokens, the unfused one cannot).
Tasks, forward + backward (gradients of hidden and weight):
  dpo  per-token log-probs -> per-sequence sums -> DPO sigmoid loss against fixed reference log-probs
  sft  token-mean cross-entropy (jpalign: `fused_linear_cross_entropy`, gradients computed in the forward)
Variants: unfused (full fp32 logits, log_softmax, gather), jpalign (fused_linear_cross_entropy; for DPO
fused_dpo_loss with strategy "recompute" and "accumulate"; an older "jpalign" row is the default "auto"),
trl (`trl.kernels.ChunkedLogProbFunction`, the fused LM head of TRL >= 1.x: 4096-token x 32768-vocab tiles,
online log-sum-exp, backward recomputes), when the installed TRL has it.
Memory: each run is its own subprocess; peak RSS (VmHWM, reset after the inputs are built) minus RSS with the
inputs built = memory above inputs. On CUDA: max allocated minus allocated inputs. Time: each repeat runs every
variant once, round-robin (a warm-up and one timed run per subprocess), and the table gives the median over
--repeats, so load changes on a shared machine hit all variants alike.

    python benchmarks/bench_align.py            # default grid (a few minutes on 2 cores)
    python benchmarks/bench_align.py --full     # hidden 1024, 2048, 4096 x batch 1 and 4 pairs of 2048 tokens
                                                # (unfused at 16,384 tokens peaks near 17 GB: needs >= 24 GB RAM)
    python benchmarks/bench_align.py --points 1024:2 --tasks dpo --repeats 3   # one point (hidden:pairs)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
VOCAB, SEQ = 65_536, 2_048
TRL_PATH = "trl.kernels.ChunkedLogProbFunction"
# fused_dpo_loss strategies: recompute (backward recomputes each chunk's logits: least memory, 4 matmuls) and
# accumulate (per-row gradients built in the forward: 3 matmuls, 2B x V x H fp32 accumulators)
JPALIGN_DPO = ("jpalign-recompute", "jpalign-accumulate")


def _trl_function():
    try:
        from trl.kernels import ChunkedLogProbFunction
    except ImportError:
        return None
    return ChunkedLogProbFunction


def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(field)


def _dpo_from_token_logps(logp, n_seq, ref):
    seq = logp.view(n_seq, -1).sum(-1)  # (2B,) summed log-probs
    b = n_seq // 2
    return -torch.nn.functional.logsigmoid(0.1 * ((seq[:b] - ref[:b]) - (seq[b:] - ref[b:]))).mean()


def _step(task, variant, hidden, weight, labels, n_seq, ref, chunk):
    """One forward + backward; returns the loss value."""
    import jpalign

    if variant == "unfused":
        logits = hidden @ weight.t()  # (N, V) fp32
        if task == "sft":
            loss = torch.nn.functional.cross_entropy(logits, labels)
        else:
            logp = torch.log_softmax(logits, -1).gather(1, labels[:, None]).squeeze(1)
            loss = _dpo_from_token_logps(logp, n_seq, ref)
    elif variant.startswith("jpalign"):
        if task == "sft":
            loss = jpalign.fused_linear_cross_entropy(hidden, weight, labels, chunk_size=chunk)
        else:
            strategy = variant.partition("-")[2] or "auto"
            h = hidden.view(n_seq, -1, hidden.shape[-1])  # (2B, T, H)
            out = jpalign.fused_dpo_loss(h, weight, labels.view(n_seq, -1), ref_chosen_logps=ref[: n_seq // 2],
                                         ref_rejected_logps=ref[n_seq // 2 :], chunk_size=chunk, strategy=strategy)
            loss = out.loss
    else:
        fn = _trl_function()
        logp = fn.apply(hidden, weight, None, labels, 1.0, 32768, None, 1.0, ())[0]
        loss = -logp.mean() if task == "sft" else _dpo_from_token_logps(logp, n_seq, ref)
    loss.backward()
    return float(loss.detach())


def worker(task: str, variant: str, hidden_size: int, n_tokens: int, repeats: int, chunk: int | None) -> dict:
    torch.manual_seed(0)
    cuda = torch.cuda.is_available()
    dev = "cuda" if cuda else "cpu"
    hidden = torch.randn(n_tokens, hidden_size, device=dev).requires_grad_()
    weight = (torch.randn(VOCAB, hidden_size, device=dev) / hidden_size**0.5).requires_grad_()
    labels = torch.randint(0, VOCAB, (n_tokens,), device=dev)
    n_seq = n_tokens // SEQ
    ref = -torch.rand(n_seq, device=dev) * 10 - n_tokens / n_seq * 11
    if cuda:
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        base = _rss_mb("VmRSS")
    times, losses = [], []
    for i in range(repeats + 1):
        hidden.grad = weight.grad = None
        t0 = time.perf_counter()
        losses.append(_step(task, variant, hidden, weight, labels, n_seq, ref, chunk))
        if cuda:
            torch.cuda.synchronize()
        if i:  # the first run is a warm-up
            times.append(time.perf_counter() - t0)
    if cuda:
        peak, base = torch.cuda.max_memory_allocated() / 2**20, base / 2**20
    else:
        peak = _rss_mb("VmHWM")
    return {"base_mb": base, "peak_mb": peak, "above_mb": peak - base, "time_s": statistics.median(times),
            "loss": losses[-1], "grad_norm": float(weight.grad.norm())}


def run_variant(args, task, variant, hidden_size, n_tokens) -> dict | None:
    """One subprocess: a warm-up and one timed forward + backward of `variant`; None when it fails."""
    cmd = [sys.executable, __file__, "--worker", task, variant, str(hidden_size), str(n_tokens),
           "--repeats", "1"] + (["--chunk-size", str(args.chunk_size)] if args.chunk_size else [])
    env = {**os.environ}
    env.pop("TRITON_INTERPRET", None)  # TRL would otherwise run its kernels in the Triton interpreter
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode:
        print(f"  {task}/{variant} H={hidden_size} N={n_tokens} failed: {res.stderr.strip()[-400:]}", flush=True)
        return None
    return json.loads(res.stdout.strip().splitlines()[-1])


def run_point(args, task, variants, hidden_size, n_tokens) -> dict:
    """Round-robin over the variants, one subprocess each per repeat, so load changes on a shared machine hit
    every variant alike; time = median over repeats, memory = the largest peak."""
    runs: dict[str, list[dict]] = {v: [] for v in variants}
    for _ in range(args.repeats):
        for v in variants:
            r = run_variant(args, task, v, hidden_size, n_tokens)
            if r is not None:
                runs[v].append(r)
    out = {}
    for v, rs in runs.items():
        if not rs:
            out[v] = None
            continue
        peak = max(rs, key=lambda r: r["above_mb"])
        out[v] = {**peak, "time_s": statistics.median(r["time_s"] for r in rs), "times_s": [r["time_s"] for r in rs]}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="hidden 1024/2048/4096 x 1 and 4 pairs (long: tens of minutes)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--chunk-size", type=int, default=None)
    ap.add_argument("--tasks", default="dpo,sft")
    ap.add_argument("--note", default="", help="a remark for the table header (e.g. other load on the machine)")
    ap.add_argument("--render", default=None, help="re-render the table of a results JSON, run nothing")
    ap.add_argument("--points", default=None, help="hidden:pairs list, e.g. 1024:2,4096:1 (overrides the grid)")
    argv = sys.argv[1:]
    if argv and argv[0] == "--worker":  # --worker TASK VARIANT H N
        task, variant, h, n = argv[1:5]
        rest = ap.parse_args(argv[5:])
        print(json.dumps(worker(task, variant, int(h), int(n), rest.repeats, rest.chunk_size)))
        return 0
    args = ap.parse_args()
    if args.render:  # re-render a results JSON (e.g. after a table format change) without re-running
        data = json.loads(Path(args.render).read_text())
        args.repeats, args.note = data.get("repeats", args.repeats), data.get("note", args.note)
        args.round_robin = data.get("round_robin", False)
        write(data["rows"], args, machine=data["machine"], out=Path(args.render).with_suffix(""))
        return 0
    grid = [(h, p) for h in (1024, 2048, 4096) for p in (1, 4)] if args.full else [(1024, 1)]
    if args.points:
        grid = [tuple(int(x) for x in point.split(":")) for point in args.points.split(",")]
    trl = ["trl"] if _trl_function() else []
    rows = []
    for task in args.tasks.split(","):
        variants = ["unfused", "jpalign"] + trl if task == "sft" else ["unfused", *JPALIGN_DPO, *trl]
        for h, pairs in grid:
            n = 2 * pairs * SEQ
            results = run_point(args, task, variants, h, n)
            print(f"  done {task} H={h} pairs={pairs}: " + ", ".join(
                f"{v} {r['above_mb']:.0f} MB {r['time_s']:.1f} s" for v, r in results.items() if r), flush=True)
            rows.append({"task": task, "hidden": h, "pairs": pairs, "tokens": n, "results": results})
    write(rows, args)
    return 0


def _fmt(r, ref):
    if r is None:
        return "failed", "", ""
    mem = f"{r['above_mb'] / 1024:.2f} GB ({r['above_mb'] / ref['above_mb']:.0%})" if ref else "-"
    t = f"{r['time_s']:.2f} s ({r['time_s'] / ref['time_s']:.2f}x)" if ref else "-"
    return f"{r['peak_mb'] / 1024:.2f} GB", mem, t


def _machine() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name().replace(" ", "-").lower()
    cpu = platform.processor() or platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            cpu = "xeon" if "Xeon" in line else line.split(":", 1)[1].strip().split()[0].lower()
            break
    return f"{cpu}-{os.cpu_count()}vcpu"


def _beyond_grads(r, ref, row) -> str:
    """Memory above inputs minus the fp32 gradients of weight and hidden that every variant must return."""
    if r is None or ref is None:
        return ""
    grads = (VOCAB + row["tokens"]) * row["hidden"] * 4 / 2**20
    mine, base = r["above_mb"] - grads, ref["above_mb"] - grads
    return f"{mine / 1024:.2f} GB ({mine / base:.0%})"


def write(rows, args, machine: str | None = None, out: Path | None = None):
    machine = machine or _machine()
    trl = _trl_function()
    trl_note = f"TRL {__import__('trl').__version__} `{TRL_PATH}`" if trl else f"TRL: `{TRL_PATH}` not importable"
    lines = [
        f"Machine {machine}{' (' + args.note + ')' if args.note else ''}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, float32, V={VOCAB}, "
        f"sequence {SEQ}, every token labelled; {trl_note}. Median of {args.repeats} "
        f"{'round-robin runs, each' if getattr(args, 'round_robin', True) else 'runs'} after a warm-up; "
        "memory = peak RSS of the variant's subprocess; 'above inputs' excludes the inputs and the runtime "
        "(percent and time ratio relative to unfused); 'above inputs and grads' also excludes the fp32 gradients "
        "of weight and hidden that every variant returns ((V + N) x H x 4 bytes).",
        "",
        "| task | hidden | pairs | tokens | variant | peak | above inputs | above inputs and grads | time fwd+bwd "
        "| loss |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ref = row["results"].get("unfused")
        for v in ("unfused", "jpalign", *JPALIGN_DPO, "trl"):
            if v == "trl" and v not in row["results"]:
                lines.append(f"| {row['task']} | {row['hidden']} | {row['pairs']} | {row['tokens']} | trl | n/a: "
                             f"`{TRL_PATH}` absent | | | | |")
                continue
            if v not in row["results"]:
                continue
            r = row["results"][v]
            peak, mem, t = _fmt(r, ref)
            loss = f"{r['loss']:.6g}" if r else ""
            lines.append(f"| {row['task']} | {row['hidden']} | {row['pairs']} | {row['tokens']} | {v} | {peak} | "
                         f"{mem} | {_beyond_grads(r, ref, row)} | {t} | {loss} |")
    table = "\n".join(lines)
    print(table)
    name = "" if not (args.points or args.full) else "-full" if args.full else "-" + args.points.replace(":", "x")
    out = out or HERE / "results" / f"align-{datetime.date.today()}-{machine}{name.replace(',', '_')}"
    out.parent.mkdir(exist_ok=True)
    out.with_suffix(".md").write_text("# bench_align\n\n" + table + "\n")
    meta = {"machine": machine, "repeats": args.repeats, "note": args.note,
            "round_robin": getattr(args, "round_robin", True)}
    out.with_suffix(".json").write_text(json.dumps({**meta, "rows": rows}, indent=1))


if __name__ == "__main__":
    raise SystemExit(main())
