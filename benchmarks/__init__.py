"""Reproducible performance measurements (not tests); run e.g. python -m benchmarks.augment_bench."""
