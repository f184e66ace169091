"""jpcurate: Japanese pretraining-text curation that keeps only natural, human-quality language.

Never imports torch: it runs on CPU-only data-processing nodes.

    from jpcurate import build_preset, run_pipeline, read_documents
    kept, rejected, stats = run_pipeline(build_preset("ja-web"), read_documents("web.jsonl"))
"""

from jpcurate.document import Document, Malformed
from jpcurate.engines.local import RunOptions, run_local
from jpcurate.io.readers import read_documents
from jpcurate.io.writers import ShardWriter
from jpcurate.pipeline import Pipeline, Step, run_pipeline
from jpcurate.presets import PRESETS, build_preset
from jpcurate.stats import Stats
from jpcurate.text.charclass import script_ratios

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "Document",
    "Malformed",
    "Pipeline",
    "RunOptions",
    "ShardWriter",
    "Stats",
    "Step",
    "__version__",
    "build_preset",
    "read_documents",
    "run_local",
    "run_pipeline",
    "script_ratios",
]
