"""Benchmarks: ``make bench-intake``."""
