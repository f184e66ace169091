"""Training runtime shared by pretraining, SFT and DPO: distributed set-up, optimiser and schedules, the
accumulate/clip/spike-skip step, DCP checkpoints, and monitoring. The apps write their loops around these."""

from jpmoe.train.cli import parse_args
from jpmoe.train.dcp_checkpoint import CheckpointManager, ConfigMismatchError, DiskFullError, TrainState
from jpmoe.train.dist import DistInfo, setup_distributed, teardown_distributed
from jpmoe.train.monitor import SAMPLE_PROMPTS, Monitor, read_metrics
from jpmoe.train.samples import greedy_continuations
from jpmoe.train.schedule import build_optimizer, build_scheduler, lr_factor
from jpmoe.train.step import SpikeDetector, expert_load_metrics, train_step

__all__ = [
    "SAMPLE_PROMPTS", "CheckpointManager", "ConfigMismatchError", "DiskFullError", "DistInfo", "Monitor",
    "SpikeDetector", "TrainState", "build_optimizer", "build_scheduler", "expert_load_metrics",
    "greedy_continuations", "lr_factor", "parse_args", "read_metrics", "setup_distributed", "teardown_distributed",
    "train_step",
]
