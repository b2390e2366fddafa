"""Accuracy benchmark: labelled near-duplicate dataset, evaluator and threshold sweep.

Run the modules from the repository root, e.g. ``python -m benchmarks.accuracy.generate``;
see ``benchmarks/accuracy/README.md``.
"""
