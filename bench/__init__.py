"""Benchmarks that print numbers: ``python bench/bench.py --help``. Never run by the test suite."""
