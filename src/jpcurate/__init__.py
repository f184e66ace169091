"""jpcurate: Japanese pretraining-text curation that keeps only natural, human-quality language.

Never imports torch: it runs on CPU-only data-processing nodes.

    from jpcurate import build_preset, run_pipeline, read_documents
    kept, rejected, stats = run_pipeline(build_preset("ja-web"), read_documents("web.jsonl"))

The public names below are resolved on first use (PEP 562): `import jpcurate` and a command such as `jpcurate dedup`
do not load every step, the language model and the engines at start-up.
"""

from importlib import import_module

__version__ = "0.1.0"

_PUBLIC = {  # name -> module that defines it
    "script_ratios": "jpcurate.text.charclass",
    "Document": "jpcurate.document",
    "Malformed": "jpcurate.document",
    "Pipeline": "jpcurate.pipeline",
    "Step": "jpcurate.pipeline",
    "run_pipeline": "jpcurate.pipeline",
    "PRESETS": "jpcurate.presets",
    "build_preset": "jpcurate.presets",
    "read_documents": "jpcurate.io.readers",
    "RunOptions": "jpcurate.engines.local",
    "run_local": "jpcurate.engines.local",
    "Stats": "jpcurate.stats",
    "ShardWriter": "jpcurate.io.writers",
}

__all__ = sorted([*_PUBLIC, "__version__"])


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(import_module(_PUBLIC[name]), name)
        globals()[name] = value  # resolved once
        return value
    raise AttributeError(f"module 'jpcurate' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
