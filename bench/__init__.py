"""Benchmark scripts, run as `python bench/<name>.py` (see the README's performance section)."""
