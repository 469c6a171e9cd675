"""Benchmark metrics with the published definitions (Matbench Discovery)."""
