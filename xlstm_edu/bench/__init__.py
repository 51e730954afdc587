"""Benchmarks: scripts that print side-by-side timings measured in one run (never tests)."""
