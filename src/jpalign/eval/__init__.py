"""Torch-free Japanese evaluation: llm-jp-eval metrics and prompts, MT-Bench / ELYZA judge prompts and rating
parsing, repetition and grounding metrics, contamination overlap, and the comparison report.

Imports nothing from torch, jpmoe or jpcurate (tests/align/eval/test_eval_imports.py checks it); generation lives
in the apps.
"""

from jpalign.eval.metrics import char_f1, exact_match, normalize, pearson, set_f1, spearman

__all__ = ["char_f1", "exact_match", "normalize", "pearson", "set_f1", "spearman"]
