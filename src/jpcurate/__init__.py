"""jpcurate: Japanese pretraining-text curation that keeps only natural, human-quality language.

Never imports torch: it runs on CPU-only data-processing nodes.
"""

from jpcurate.charclass import script_ratios

__version__ = "0.1.0"

__all__ = ["__version__", "script_ratios"]
