"""Training monitor: metrics to JSONL and TensorBoard (and wandb when installed and asked for), a progress line,
sample generations from fixed Japanese prompts, and a loss-curve PNG at the end. Only rank 0 writes.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
import time
import warnings
from pathlib import Path

from jpmoe.train.disk import stops_when_disk_full

SAMPLE_PROMPTS = ("吾輩は猫である。名前は", "日本の首都は", "昔々、ある村に", "富士山は", "メロスは激怒した。")

# Dense bf16 peak FLOP/s per GPU, for MFU (vendor datasheets, no sparsity).
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 125e12}


def peak_flops(device_name: str) -> float | None:
    return next((v for k, v in PEAK_FLOPS.items() if k in device_name), None)


def _jsonl(path: Path) -> list[tuple[str, dict]]:
    """(line, record) of a JSONL log; a torn last line (a kill or full disk mid-write) is dropped with a warning,
    an unreadable line elsewhere is an error naming it."""
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()] if path.is_file() else []
    out = []
    for i, line in enumerate(lines):
        try:
            out.append((line, json.loads(line)))
        except ValueError as e:
            if i < len(lines) - 1:
                raise ValueError(f"{path}: record {i + 1} is not JSON ({e})") from e
            warnings.warn(f"{path}: dropping a torn last line (the run was stopped mid-write)", stacklevel=3)
    return out


def read_metrics(path: str | Path) -> list[dict]:
    """Metrics records of a run, one per step (a step re-run after a resume keeps its latest record)."""
    by_step = {rec["step"]: rec for _, rec in _jsonl(Path(path))}
    return [by_step[s] for s in sorted(by_step)]


class Monitor:
    def __init__(self, run_dir: str | Path, *, enabled: bool, total_steps: int, tensorboard: bool = True,
                 wandb_project: str = "", config: dict | None = None, resume_step: int = 0) -> None:
        self.dir, self.enabled, self.total = Path(run_dir), enabled, total_steps
        self.metrics_path, self.samples_path = self.dir / "metrics.jsonl", self.dir / "samples.jsonl"
        self.tb = self.wandb = None
        self.t0, self.step0 = time.perf_counter(), resume_step
        if not enabled:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        self._truncate(resume_step)
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(self.dir / "tensorboard"), purge_step=resume_step + 1)
        if wandb_project:
            if importlib.util.find_spec("wandb") is None:
                warnings.warn("wandb asked for but not installed: logging to JSONL and TensorBoard only", stacklevel=2)
            else:
                import wandb

                self.wandb = wandb.init(project=wandb_project, config=config or {}, dir=str(self.dir), resume="allow")

    def _truncate(self, step: int) -> None:
        """After a resume from `step`, drop records of later steps (they will be logged again)."""
        for path in (self.metrics_path, self.samples_path):
            if path.is_file():
                keep = [ln for ln, rec in _jsonl(path) if rec["step"] <= step]
                tmp = path.with_name(path.name + ".tmp")  # a kill while rewriting must not lose the log
                tmp.write_text("".join(ln + "\n" for ln in keep))
                tmp.replace(path)

    def log(self, step: int, metrics: dict) -> None:
        if not self.enabled:
            return
        rec = {"step": step, **metrics}  # full float precision: resumed runs are compared exactly
        with stops_when_disk_full(str(self.metrics_path), self.dir), self.metrics_path.open("a") as f:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        for k, v in metrics.items():
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
                if self.tb:
                    self.tb.add_scalar(k, v, step)
        if self.wandb:
            self.wandb.log(metrics, step=step)

    def progress(self, step: int, metrics: dict) -> None:
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.t0
        done = max(1, step - self.step0)
        eta = elapsed / done * (self.total - step)
        parts = [f"step {step}/{self.total}", f"stage {metrics.get('stage_name', '')}",
                 f"loss {metrics['loss']:.4f}", f"lr {metrics['lr']:.2e}", f"gnorm {metrics['grad_norm']:.3f}",
                 f"{metrics['tokens_per_s'] / 1e3:.1f}k tok/s"]
        if "mfu" in metrics:
            parts.append(f"mfu {metrics['mfu']:.1%}")
        if metrics.get("skipped"):
            parts.append("SKIPPED (loss spike)")
        parts.append(f"eta {int(eta // 60)}m{int(eta % 60):02d}s")
        print(" | ".join(parts), file=sys.stderr, flush=True)

    def samples(self, step: int, outs: list[str]) -> None:
        """Append the continuations of SAMPLE_PROMPTS to samples.jsonl (beside metrics.jsonl)."""
        self.append_samples(step, [{"prompt": p, "completion": o} for p, o in zip(SAMPLE_PROMPTS, outs)])

    def append_samples(self, step: int, records: list[dict]) -> None:
        """Append {"prompt", "completion", ...} records of `step` to samples.jsonl (and TensorBoard's text tab)."""
        if not self.enabled:
            return
        with stops_when_disk_full(str(self.samples_path), self.dir), self.samples_path.open("a") as f:
            for rec in records:
                f.write(json.dumps({"step": step, **rec}, ensure_ascii=False) + "\n")
        if self.tb:
            self.tb.add_text("samples", "\n\n".join(f"**{r['prompt']}** {r['completion']}" for r in records), step)

    def plot(self) -> Path | None:
        """loss_curve.png from metrics.jsonl (all steps of the run, resumes included)."""
        if not self.enabled:
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        recs = read_metrics(self.metrics_path)
        if not recs:
            return None
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot([r["step"] for r in recs], [r["loss"] for r in recs], lw=1)
        for prev, rec in zip(recs, recs[1:]):  # mark the stage switches
            if rec.get("stage") != prev.get("stage"):
                ax.axvline(rec["step"], color="grey", ls="--", lw=0.8)
                ax.text(rec["step"], ax.get_ylim()[1], f" {rec.get('stage_name', '')}", va="top", fontsize=8)
        ax.set_xlabel("step")
        ax.set_ylabel("training loss")
        ax.set_title(self.dir.name)
        ax.grid(alpha=0.3)
        out = self.dir / "loss_curve.png"
        fig.tight_layout()
        fig.savefig(out, dpi=120)
        plt.close(fig)
        return out

    def close(self) -> None:
        if self.tb:
            self.tb.close()
        if self.wandb:
            self.wandb.finish()
